//! CUDA neighbour map (GPU hash table) and submanifold conv; kernels in sparse_conv.cu.

use crate::cuda::{CudaDevice, Dims, args, empty, implicit_gemm_conv, kernels, ptr};
use crate::sparse::SparseCoords;
use crate::{DType, Error, Result, Tensor};

/// Largest coordinate the 16-bit key fields hold (x + 1 of the +1 neighbour must fit).
const MAX_COORD: i32 = 65_533;

pub(super) fn neighbor_map(d: &CudaDevice, coords: &SparseCoords) -> Result<Tensor> {
    let n = coords.len();
    if let Some(c) = coords.host().iter().find(|c| {
        !(0..=65_535).contains(&c[0]) || c[1..].iter().any(|&v| !(0..=MAX_COORD).contains(&v))
    }) {
        return Err(Error::shape(
            "neighbor_map_3x3x3",
            format!("coordinate {c:?} outside [0, {MAX_COORD}] (batch [0, 65535])"),
        ));
    }
    let nbr = empty(d, &[n, 27], DType::U32)?;
    if n == 0 {
        return Ok(nbr);
    }
    let cap = (2 * n).max(1024).next_power_of_two();
    let keys = d.alloc(cap * 8)?;
    let vals = d.alloc(cap * 4)?;
    d.memset(keys.ptr(), 0xff, cap * 8)?;
    d.memset(vals.ptr(), 0, cap * 4)?;
    let ct = coords.tensor()?;
    let mask = (cap - 1) as u64;
    let mut a = args![keys.ptr(), vals.ptr(), ptr(ct)?, n as i64, mask];
    d.launch(
        &kernels::SPARSE_CONV,
        "hash_insert",
        Dims::elementwise(n),
        &mut a,
    )?;
    let mut a = args![ptr(&nbr)?, keys.ptr(), vals.ptr(), ptr(ct)?, n as i64, mask];
    d.launch(
        &kernels::SPARSE_CONV,
        "hash_neighbors",
        Dims::elementwise(n * 27),
        &mut a,
    )?;
    Ok(nbr)
}

pub(super) fn submanifold_conv3d(
    d: &CudaDevice,
    feats: &Tensor,
    nbr: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> Result<Tensor> {
    implicit_gemm_conv(d, feats, nbr, w, b)
}
