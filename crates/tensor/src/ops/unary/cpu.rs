use super::Unary;
use crate::{Result, Tensor};

pub(super) fn unary(x: &Tensor, _f: Unary) -> Result<Tensor> {
    Err(crate::ops::pending("unary", x.device()))
}

pub(super) fn affine(x: &Tensor, _mul: f32, _add: f32) -> Result<Tensor> {
    Err(crate::ops::pending("affine", x.device()))
}

pub(super) fn erf64(_x: f64) -> f64 {
    f64::NAN
}
