//! CPU submanifold 3×3×3 convolution: against a float64 gather reference, and against the
//! dense `conv3d` on a zero-filled grid holding the same voxels (compared at the active
//! sites). Tolerances: see `common`; each output is a sum of ≤ 27·Ci products plus the bias,
//! so the f32 bound is `(27·Ci + 2)·u·Σ|terms|`.

mod common;

use std::sync::Arc;

use common::*;
use t2_tensor::sparse::{NO_NEIGHBOR, SparseCoords, SparseTensor, submanifold_conv3d};
use t2_tensor::testing::random_vec;
use t2_tensor::{DType, Device, ops};

/// Grid extents (x, y, z) and batch items of the test volume.
const GRID: [usize; 3] = [9, 10, 11];
const BATCH: usize = 2;

/// About a third of the grid's voxels in each of two batch items, in a scrambled order (the
/// conv must not depend on coords being sorted).
fn voxels() -> Vec<[i32; 4]> {
    let [gx, gy, gz] = GRID;
    let r = random_vec(BATCH * gx * gy * gz, 7);
    let mut v: Vec<[i32; 4]> = (0..BATCH * gx * gy * gz)
        .filter(|&i| r[i] < -0.33)
        .map(|i| {
            let (b, rest) = (i / (gx * gy * gz), i % (gx * gy * gz));
            let (x, y, z) = (rest / (gy * gz), rest / gz % gy, rest % gz);
            [b as i32, x as i32, y as i32, z as i32]
        })
        .collect();
    let keys = random_vec(v.len(), 8);
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    v = order.iter().map(|&i| v[i]).collect();
    v
}

/// f64 submanifold conv (values and Σ|terms|) by direct coordinate lookup.
fn reference(
    coords: &[[i32; 4]],
    f: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    ci: usize,
    co: usize,
) -> (Vec<f64>, Vec<f64>) {
    let index: std::collections::HashMap<[i32; 4], usize> =
        coords.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let mut out = Vec::new();
    let mut mag = Vec::new();
    for c in coords {
        for o in 0..co {
            let bias = b.map_or(0.0, |b| b[o] as f64);
            let (mut s, mut m) = (bias, bias.abs());
            for v in 0..27 {
                let (dx, dy, dz) = (v as i32 / 9 - 1, v as i32 / 3 % 3 - 1, v as i32 % 3 - 1);
                if let Some(&j) = index.get(&[c[0], c[1] + dx, c[2] + dy, c[3] + dz]) {
                    for k in 0..ci {
                        let t = w[(o * 27 + v) * ci + k] as f64 * f[j * ci + k] as f64;
                        s += t;
                        m += t.abs();
                    }
                }
            }
            out.push(s);
            mag.push(m);
        }
    }
    (out, mag)
}

#[test]
fn neighbor_map_follows_the_offset_convention() {
    let coords = vec![[0, 1, 1, 1], [0, 2, 1, 1], [0, 1, 1, 0], [1, 1, 1, 2]];
    let sc = SparseCoords::new(coords, &Device::Cpu);
    let nbr = sc.neighbor_map().unwrap().to_vec::<u32>().unwrap();
    // Voxel 0: itself at v = 13, +x (voxel 1) at v = 2·9 + 1·3 + 1 = 22, −z (voxel 2) at
    // v = 9 + 3 + 0 = 12; voxel 3 sits in batch 1 and is not a neighbour.
    for (v, &got) in nbr[..27].iter().enumerate() {
        let want = match v {
            13 => 0,
            22 => 1,
            12 => 2,
            _ => NO_NEIGHBOR,
        };
        assert_eq!(got, want, "offset {v}");
    }
}

#[test]
fn submanifold_conv_matches_f64_and_dense_conv3d() {
    let coords = voxels();
    let n = coords.len();
    let (ci, co) = (13, 19);
    let sc = Arc::new(SparseCoords::new(coords.clone(), &Device::Cpu));
    for dt in FLOATS {
        let (f, fv) = rand(&[n, ci], dt, 200, 1.0);
        let (w, wv) = rand(&[co, 3, 3, 3, ci], dt, 201, 0.3);
        let (b, bv) = rand(&[co], dt, 202, 1.0);
        let x = SparseTensor::new(f, sc.clone()).unwrap();
        for bias in [true, false] {
            let y = submanifold_conv3d(&x, &w, bias.then_some(&b)).unwrap();
            assert_eq!(y.feats.shape(), [n, co]);
            assert_eq!(y.feats.dtype(), dt);
            let (want, mag) = reference(&coords, &fv, &wv, bias.then_some(&bv[..]), ci, co);
            let bound = |i: usize| (27 * ci + 2) as f64 * U * mag[i];
            check("submanifold_conv3d", &y.feats, &want, bound);

            // Dense twin: scatter into a zero grid [B, Ci, X, Y, Z], conv3d with the weight
            // permuted [Co, 3, 3, 3, Ci] → [Co, Ci, 3, 3, 3], read back at the active sites.
            let [gx, gy, gz] = GRID;
            let mut grid = vec![0f32; BATCH * ci * gx * gy * gz];
            for (i, c) in coords.iter().enumerate() {
                for k in 0..ci {
                    let at = (((c[0] as usize * ci + k) * gx + c[1] as usize) * gy + c[2] as usize)
                        * gz
                        + c[3] as usize;
                    grid[at] = fv[i * ci + k];
                }
            }
            let (dense, _) = tensor(&grid, &[BATCH, ci, gx, gy, gz], dt);
            let wd = ops::permute(&w, &[0, 4, 1, 2, 3]).unwrap();
            let yd = ops::conv3d(&dense, &wd, bias.then_some(&b)).unwrap();
            let yd = yd.to_vec_f32().unwrap();
            let ys = y.feats.to_vec_f32().unwrap();
            for (i, c) in coords.iter().enumerate() {
                for o in 0..co {
                    let at = (((c[0] as usize * co + o) * gx + c[1] as usize) * gy + c[2] as usize)
                        * gz
                        + c[3] as usize;
                    let (s, d) = (ys[i * co + o] as f64, yd[at] as f64);
                    // Each is within bound + 1 ulp of the f64 value, so they are within twice
                    // that of each other.
                    let r = want[i * co + o];
                    let tol = 2.0 * (bound(i * co + o) + ulp(dt, r));
                    assert!(
                        (s - d).abs() <= tol,
                        "{dt:?}: voxel {c:?} channel {o}: sparse {s}, dense {d}"
                    );
                }
            }
        }
    }
}

#[test]
fn sparse_conv_rejects_bad_weights() {
    let sc = Arc::new(SparseCoords::new(vec![[0, 0, 0, 0]], &Device::Cpu));
    let (f, _) = rand(&[1, 4], DType::F32, 1, 1.0);
    let x = SparseTensor::new(f, sc).unwrap();
    let (w, _) = rand(&[2, 3, 3, 3, 5], DType::F32, 2, 1.0);
    assert!(submanifold_conv3d(&x, &w, None).is_err(), "Ci mismatch");
    let (w, _) = rand(&[2, 3, 3, 3, 4], DType::F32, 2, 1.0);
    let (b, _) = rand(&[3], DType::F32, 3, 1.0);
    assert!(submanifold_conv3d(&x, &w, Some(&b)).is_err(), "bias length");
    let (w, _) = rand(&[2, 27, 4], DType::F32, 2, 1.0);
    assert!(
        submanifold_conv3d(&x, &w, None).is_err(),
        "flattened weight"
    );
}
