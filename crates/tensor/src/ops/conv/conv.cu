// conv.cu — the dense image/volume helpers (see conv/mod.rs). The convolutions themselves are
// GEMMs: patch_embed2d = im2col + cuBLASLt, conv3d = the sparse implicit-GEMM conv over a dense
// neighbour map (sparse/conv/sparse_conv.cu). Grid: 1-D grid-stride over output elements.

#define NO_NEIGHBOR 0xffffffffu

#define MOVE_CONV_KERNELS(S, U)                                                             \
    /* x [B, C, H, W] -> cols [B·Hp·Wp, C·P·P]; column c·P·P + i·P + j (the weight order) */ \
    extern "C" __global__ void patch_im2col_##S(U* cols, const U* x, int b, int c, int h,   \
                                                int w, int p) {                             \
        int hp = h / p, wp = w / p;                                                         \
        i64 k = (i64)c * p * p;                                                             \
        GRID_STRIDE(e, (i64)b * hp * wp * k) {                                              \
            i64 col = e % k, row = e / k;                                                   \
            int ci = (int)(col / (p * p)), i = (int)(col / p % p), j = (int)(col % p);      \
            int xw = (int)(row % wp), yh = (int)(row / wp % hp), bb = (int)(row / wp / hp); \
            cols[e] = x[(((i64)bb * c + ci) * h + (i64)yh * p + i) * w + (i64)xw * p + j];  \
        }                                                                                   \
    }                                                                                       \
    /* [B, 8C, D, H, W] -> [B, C, 2D, 2H, 2W]; out (c, 2d+i, 2h+j, 2w+k) <- in c·8+i·4+j·2+k */ \
    extern "C" __global__ void pixel_shuffle_3d_##S(U* out, const U* x, int b, int c, int d, \
                                                    int h, int w) {                         \
        GRID_STRIDE(e, (i64)b * c * 8 * d * h * w) {                                        \
            int ox = (int)(e % (2 * w));                                                    \
            i64 r = e / (2 * w);                                                            \
            int oy = (int)(r % (2 * h));                                                    \
            r /= 2 * h;                                                                     \
            int oz = (int)(r % (2 * d));                                                    \
            r /= 2 * d;                                                                     \
            int cc = (int)(r % c), bb = (int)(r / c);                                       \
            int ch = cc * 8 + (oz & 1) * 4 + (oy & 1) * 2 + (ox & 1);                       \
            out[e] = x[((((i64)bb * c * 8 + ch) * d + (oz >> 1)) * h + (oy >> 1)) * w + (ox >> 1)]; \
        }                                                                                   \
    }
MOVE_CONV_KERNELS(1, u8)
MOVE_CONV_KERNELS(2, u16)
MOVE_CONV_KERNELS(4, u32)

// max over each 2x2x2 cell, NaN-propagating like PyTorch; floor on odd sizes.
#define POOL_KERNELS(S, T)                                                                  \
    extern "C" __global__ void max_pool3d_2_##S(T* out, const T* x, int bc, int d, int h,   \
                                                int w) {                                    \
        int od = d / 2, oh = h / 2, ow = w / 2;                                             \
        GRID_STRIDE(e, (i64)bc * od * oh * ow) {                                            \
            int ox = (int)(e % ow);                                                         \
            i64 r = e / ow;                                                                 \
            int oy = (int)(r % oh);                                                         \
            r /= oh;                                                                        \
            int oz = (int)(r % od);                                                         \
            i64 n = r / od;                                                                 \
            float m = -__int_as_float(0x7f800000);                                          \
            bool nan = false;                                                               \
            for (int q = 0; q < 8; ++q) {                                                   \
                float v = to_f32(x[((n * d + 2 * oz + (q >> 2)) * h + 2 * oy + ((q >> 1) & 1)) * w + \
                                   2 * ox + (q & 1)]);                                      \
                nan |= v != v;                                                              \
                m = fmaxf(m, v);                                                            \
            }                                                                               \
            out[e] = from_f32<T>(nan ? __int_as_float(0x7fc00000) : m);                     \
        }                                                                                   \
    }
FOR_FLOATS(POOL_KERNELS)

// The 3x3x3 neighbour map of a dense [B, D, H, W] grid in row-major voxel order, with the
// sparse map's convention: v = ix·9 + iy·3 + iz over offsets (ix-1, iy-1, iz-1) on (D, H, W);
// out-of-grid neighbours are NO_NEIGHBOR (zero padding).
extern "C" __global__ void dense_neighbor_map(u32* nbr, int b, int d, int h, int w) {
    GRID_STRIDE(e, (i64)b * d * h * w * 27) {
        int v = (int)(e % 27);
        i64 i = e / 27;
        int x = (int)(i % w), y = (int)(i / w % h), z = (int)(i / w / h % d);
        int nz = z + v / 9 - 1, ny = y + v / 3 % 3 - 1, nx = x + v % 3 - 1;
        bool in = nz >= 0 && nz < d && ny >= 0 && ny < h && nx >= 0 && nx < w;
        nbr[e] = in ? (u32)(i + ((i64)(v / 9 - 1) * h + (v / 3 % 3 - 1)) * w + (v % 3 - 1))
                    : NO_NEIGHBOR;
    }
}
