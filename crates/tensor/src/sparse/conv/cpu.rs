//! CPU neighbour map (a hash map) and submanifold conv.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;

use super::NO_NEIGHBOR;
use crate::cpu::gemm::{Mat, MatMut, Par, matmul};
use crate::cpu::{f32_data, tensor_from_f32};
use crate::sparse::SparseCoords;
use crate::{DType, Device, Error, Result, Tensor};

pub(super) fn neighbor_map(coords: &SparseCoords) -> Result<Tensor> {
    let host = coords.host();
    let index: HashMap<[i32; 4], u32, BuildHasherDefault<CoordHasher>> = host
        .iter()
        .enumerate()
        .map(|(i, c)| (*c, i as u32))
        .collect();
    let mut nbr = vec![NO_NEIGHBOR; host.len() * 27];
    // Lookups are independent: one rayon task per chunk of voxels reading the shared map.
    nbr.par_chunks_mut(27)
        .with_min_len(1024)
        .zip(host.par_iter())
        .for_each(|(row, c)| {
            for (v, slot) in row.iter_mut().enumerate() {
                let (ix, iy, iz) = (
                    (v / 9) as i32 - 1,
                    ((v / 3) % 3) as i32 - 1,
                    (v % 3) as i32 - 1,
                );
                if let Some(&j) = index.get(&[c[0], c[1] + ix, c[2] + iy, c[3] + iz]) {
                    *slot = j;
                }
            }
        });
    Tensor::from_vec(nbr, &[host.len(), 27], &Device::Cpu)
}

/// A multiply-rotate hash for coordinate keys (the FxHash recipe). The default SipHash
/// protects against adversarial keys, which voxel coords are not, at several times the cost.
#[derive(Default)]
struct CoordHasher(u64);

impl Hasher for CoordHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 =
                (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn finish(&self) -> u64 {
        // The multiply only carries bits upward, and the map indexes buckets with the low
        // bits: rotate the well-mixed high half down (otherwise z, in the high word, would
        // never reach the bucket index).
        self.0.rotate_left(26)
    }
}

/// Rows per block. Blocks are formed after sorting rows by neighbour mask, so a block's union
/// of present offsets stays small; smaller blocks are tighter (on a voxel shell with 17.8 of 27
/// neighbours, 64-row blocks multiply 1.23× the useful products, 256-row blocks 1.36×, unsorted
/// rows 1.51×) but re-stream the weight panel more often. Measured with `t2-cpu-bench
/// --cpu-time` (14.6k-voxel shell, 64 and 256 channels): 256 rows beat 64 by 1.2–1.35× and
/// per-offset gather-GEMM-scatter by 1.0–1.2×.
const BLOCK_ROWS: usize = 256;

/// `feats [N, Ci]`, `nbr` U32 `[N, 27]`, `w [Co, 3, 3, 3, Ci]`, `b [Co]` → `[N, Co]`.
///
/// Gather-GEMM over row blocks, after FlexGEMM's masked implicit GEMM: rows are sorted by their
/// 27-bit neighbour mask so that rows with the same neighbours share a block; per block (in
/// parallel) the present offsets' neighbour rows are gathered into a compact im2col buffer
/// `G [rows, |U|·Ci]` (U = the offsets any row of the block has; absent ones stay zero), and
/// for each run of consecutive offsets in U one GEMM adds `G_run · W_runᵀ`, `W` viewed as
/// `[Co, 27·Ci]`. f32 accumulation starting from the bias; one rounding at the end.
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
    if n * co == 0 {
        return tensor_from_f32(vec![0f32; n * co], &[n, co], feats.dtype());
    }

    // Row order: by neighbour mask, ties by voxel index (deterministic).
    let mask = |i: usize| -> u32 {
        (0..27).fold(0, |m, v| {
            m | (((nbr[i * 27 + v] != NO_NEIGHBOR) as u32) << v)
        })
    };
    let mut order: Vec<(u32, u32)> = (0..n).map(|i| (mask(i), i as u32)).collect();
    order.sort_unstable();

    let k_all = 27 * ci;
    let mut blocks = vec![0f32; n * co];
    blocks
        .par_chunks_mut(BLOCK_ROWS * co)
        .zip(order.par_chunks(BLOCK_ROWS))
        .for_each_init(
            || vec![0f32; BLOCK_ROWS * k_all],
            |g, (ob, rows)| {
                let union = rows.iter().fold(0u32, |u, &(m, _)| u | m);
                let offsets: Vec<usize> = (0..27).filter(|v| union >> v & 1 == 1).collect();
                let k = offsets.len() * ci;
                let g = &mut g[..rows.len() * k];
                for (grow, &(_, i)) in g.chunks_exact_mut(k.max(1)).zip(rows) {
                    let nb = &nbr[i as usize * 27..][..27];
                    for (dst, &v) in grow.chunks_exact_mut(ci.max(1)).zip(&offsets) {
                        match nb[v] {
                            NO_NEIGHBOR => dst.fill(0.0),
                            j => dst.copy_from_slice(&xs[j as usize * ci..][..ci]),
                        }
                    }
                }
                match &bs {
                    Some(bs) => ob.chunks_exact_mut(co).for_each(|r| r.copy_from_slice(bs)),
                    None => ob.fill(0.0),
                }
                // One GEMM per run of consecutive offsets: the weight columns of a run are
                // contiguous in [Co, 27·Ci], so no weight copy is needed.
                let mut at = 0;
                for run in runs(&offsets) {
                    let (v0, len) = (offsets[run.start], run.len());
                    matmul(
                        MatMut::row_major(ob, rows.len(), co),
                        Mat::strided(&g[at * ci..], rows.len(), len * ci, k, 1),
                        Mat::strided(&ws[v0 * ci..], co, len * ci, k_all, 1).t(),
                        true,
                        Par::Serial,
                    );
                    at += len;
                }
            },
        );

    // Scatter the blocks' rows back to voxel order.
    let mut pos = vec![0usize; n];
    for (p, &(_, i)) in order.iter().enumerate() {
        pos[i as usize] = p;
    }
    let mut out = vec![0f32; n * co];
    out.par_chunks_mut(co)
        .zip(pos.par_iter())
        .for_each(|(o, &p)| o.copy_from_slice(&blocks[p * co..(p + 1) * co]));
    tensor_from_f32(out, &[n, co], feats.dtype())
}

/// Index ranges of maximal runs of consecutive values in the sorted `offsets`.
fn runs(offsets: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=offsets.len() {
        if i == offsets.len() || offsets[i] != offsets[i - 1] + 1 {
            if i > start {
                out.push(start..i);
            }
            start = i;
        }
    }
    out
}
