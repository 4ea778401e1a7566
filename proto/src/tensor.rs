//! Building and checking [`DenseTensor`] payloads (little-endian bytes of `dtype`, row-major).

use bytes::Bytes;

use crate::common::v1::{DenseTensor, Dtype};

/// Why a tensor payload does not match its declared dtype and shape.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TensorError {
    #[error("tensor has unspecified or unknown dtype {0}")]
    UnknownDtype(i32),
    #[error("tensor expected dtype {expected:?}, got {got:?}")]
    WrongDtype { expected: Dtype, got: Dtype },
    #[error("tensor of shape {shape:?} and {elem} bytes/element needs {needed} bytes, has {got}")]
    SizeMismatch {
        shape: Vec<u64>,
        elem: usize,
        needed: u64,
        got: usize,
    },
    #[error("tensor shape {0:?} overflows")]
    ShapeOverflow(Vec<u64>),
    #[error("tensor expected rank {expected}, got shape {shape:?}")]
    WrongRank { expected: usize, shape: Vec<u64> },
}

/// Bytes per element of `dtype`.
pub fn elem_size(dtype: Dtype) -> Option<usize> {
    match dtype {
        Dtype::F32 | Dtype::I32 => Some(4),
        Dtype::F16 | Dtype::Bf16 => Some(2),
        Dtype::Unspecified => None,
    }
}

/// Checks that the payload length matches dtype × shape; returns the dtype.
pub fn validate(t: &DenseTensor) -> Result<Dtype, TensorError> {
    let dtype = Dtype::try_from(t.dtype).map_err(|_| TensorError::UnknownDtype(t.dtype))?;
    let elem = elem_size(dtype).ok_or(TensorError::UnknownDtype(t.dtype))?;
    let count = t
        .shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| TensorError::ShapeOverflow(t.shape.clone()))?;
    let needed = count
        .checked_mul(elem as u64)
        .ok_or_else(|| TensorError::ShapeOverflow(t.shape.clone()))?;
    if needed != t.data.len() as u64 {
        return Err(TensorError::SizeMismatch {
            shape: t.shape.clone(),
            elem,
            needed,
            got: t.data.len(),
        });
    }
    Ok(dtype)
}

/// Validates `t` as an f32 tensor of the given rank and returns its values.
pub fn to_f32(t: &DenseTensor, rank: usize) -> Result<Vec<f32>, TensorError> {
    expect(t, Dtype::F32, rank)?;
    Ok(t.data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Validates `t` as an i32 tensor of the given rank and returns its values.
pub fn to_i32(t: &DenseTensor, rank: usize) -> Result<Vec<i32>, TensorError> {
    expect(t, Dtype::I32, rank)?;
    Ok(t.data
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn expect(t: &DenseTensor, dtype: Dtype, rank: usize) -> Result<(), TensorError> {
    let got = validate(t)?;
    if got != dtype {
        return Err(TensorError::WrongDtype {
            expected: dtype,
            got,
        });
    }
    if t.shape.len() != rank {
        return Err(TensorError::WrongRank {
            expected: rank,
            shape: t.shape.clone(),
        });
    }
    Ok(())
}

/// An f32 tensor from values (little-endian).
pub fn dense_f32(shape: &[u64], values: &[f32]) -> DenseTensor {
    DenseTensor {
        dtype: Dtype::F32 as i32,
        shape: shape.to_vec(),
        data: values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Bytes>(),
    }
}

/// An i32 tensor from values (little-endian).
pub fn dense_i32(shape: &[u64], values: &[i32]) -> DenseTensor {
    DenseTensor {
        dtype: Dtype::I32 as i32,
        shape: shape.to_vec(),
        data: values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Bytes>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_sizes_and_round_trips_values() {
        let t = dense_f32(&[2, 2], &[1.0, 2.0, 3.0, -4.5]);
        assert_eq!(validate(&t), Ok(Dtype::F32));
        assert_eq!(to_f32(&t, 2).unwrap(), vec![1.0, 2.0, 3.0, -4.5]);
        assert!(matches!(to_i32(&t, 2), Err(TensorError::WrongDtype { .. })));
        assert!(matches!(to_f32(&t, 3), Err(TensorError::WrongRank { .. })));
        let mut bad = t.clone();
        bad.shape = vec![3, 2];
        assert!(matches!(
            validate(&bad),
            Err(TensorError::SizeMismatch { .. })
        ));
        bad.shape = vec![u64::MAX, 3];
        assert!(matches!(validate(&bad), Err(TensorError::ShapeOverflow(_))));
        bad.dtype = 99;
        assert_eq!(validate(&bad), Err(TensorError::UnknownDtype(99)));
    }
}
