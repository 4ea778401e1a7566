//! CPU neighbour map (a hash map) and submanifold conv.

use rayon::prelude::*;

use super::NO_NEIGHBOR;
use crate::cpu::gemm::{Mat, MatMut, Par, matmul};
use crate::cpu::{f32_data, tensor_from_f32};
use crate::sparse::SparseCoords;
use crate::{DType, Device, Error, Result, Tensor};

pub(super) fn neighbor_map(coords: &SparseCoords) -> Result<Tensor> {
    use std::collections::HashMap;
    let host = coords.host();
    let index: HashMap<[i32; 4], u32> = host
        .iter()
        .enumerate()
        .map(|(i, c)| (*c, i as u32))
        .collect();
    let mut nbr = vec![NO_NEIGHBOR; host.len() * 27];
    for (i, c) in host.iter().enumerate() {
        for v in 0..27 {
            let (ix, iy, iz) = (
                (v / 9) as i32 - 1,
                ((v / 3) % 3) as i32 - 1,
                (v % 3) as i32 - 1,
            );
            if let Some(&j) = index.get(&[c[0], c[1] + ix, c[2] + iy, c[3] + iz]) {
                nbr[i * 27 + v] = j;
            }
        }
    }
    Tensor::from_vec(nbr, &[host.len(), 27], &Device::Cpu)
}

/// Floats in one row block's im2col buffer (4 MiB): large enough for an efficient GEMM, small
/// enough to stay in cache-friendly territory with one buffer per thread.
const BLOCK_FLOATS: usize = 1 << 20;
/// Row-block bounds: at least a GEMM micro-panel's worth of rows, at most what pays off.
const MIN_ROWS: usize = 16;
const MAX_ROWS: usize = 256;

/// `feats [N, Ci]`, `nbr` U32 `[N, 27]`, `w [Co, 3, 3, 3, Ci]`, `b [Co]` → `[N, Co]`.
///
/// Per block of rows (in parallel): gather the 27 neighbour rows of each voxel into an im2col
/// buffer `G [rows, 27·Ci]` (zeros for missing neighbours), then one GEMM
/// `out = G · Wᵀ` with `W` viewed as `[Co, 27·Ci]`, whose column order `(v, ci)` is exactly the
/// buffer's. f32 accumulation; the bias is the GEMM's starting value; one rounding at the end.
pub(super) fn submanifold_conv3d(
    feats: &Tensor,
    nbr: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> Result<Tensor> {
    const OP: &str = "submanifold_conv3d";
    let (n, ci, co) = (feats.dim(0), feats.dim(1), w.dim(0));
    if nbr.shape() != [n, 27] || nbr.dtype() != DType::U32 {
        return Err(Error::shape(
            OP,
            format!(
                "neighbour map {:?} {:?} for {n} voxels",
                nbr.shape(),
                nbr.dtype()
            ),
        ));
    }
    let nbr = nbr.to_vec::<u32>()?;
    if let Some(&bad) = nbr.iter().find(|&&j| j != NO_NEIGHBOR && j as usize >= n) {
        return Err(Error::shape(
            OP,
            format!("neighbour row {bad} out of range for {n} voxels"),
        ));
    }
    let xs = f32_data(feats, OP)?;
    let ws = f32_data(w, OP)?;
    let bs = b.map(|t| f32_data(t, OP)).transpose()?;
    let k = 27 * ci;
    let mut out = vec![0f32; n * co];
    if out.is_empty() {
        return tensor_from_f32(out, &[n, co], feats.dtype());
    }
    let rows = (BLOCK_FLOATS / k.max(1)).clamp(MIN_ROWS, MAX_ROWS);
    let wt = Mat::row_major(&ws, co, k).t();
    out.par_chunks_mut(rows * co).enumerate().for_each_init(
        || vec![0f32; rows * k],
        |g, (blk, ob)| {
            let r0 = blk * rows;
            let nr = ob.len() / co;
            let g = &mut g[..nr * k];
            for (r, grow) in g.chunks_exact_mut(k.max(1)).enumerate().take(nr) {
                let nb = &nbr[(r0 + r) * 27..][..27];
                for (v, dst) in grow.chunks_exact_mut(ci.max(1)).enumerate().take(27) {
                    match nb[v] {
                        NO_NEIGHBOR => dst.fill(0.0),
                        j => dst.copy_from_slice(&xs[j as usize * ci..][..ci]),
                    }
                }
            }
            if let Some(bs) = &bs {
                ob.chunks_exact_mut(co)
                    .for_each(|row| row.copy_from_slice(bs));
            }
            matmul(
                MatMut::row_major(ob, nr, co),
                Mat::row_major(g, nr, k),
                wt,
                bs.is_some(),
                Par::Serial,
            );
        },
    );
    tensor_from_f32(out, &[n, co], feats.dtype())
}
