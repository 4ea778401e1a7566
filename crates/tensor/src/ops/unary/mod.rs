//! Element-wise functions of one tensor, f32 math, rounded once to the input dtype.

mod cpu;
mod cuda;

use super::float_only;
use crate::{Device, Result, Tensor};

/// The element-wise functions, with PyTorch's formulas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    /// `x · sigmoid(x)`
    Silu,
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (`approximate="tanh"`)
    GeluTanh,
    /// `0.5·x·(1 + erf(x/√2))` (exact GELU)
    GeluErf,
    /// `1 / (1 + exp(−x))`
    Sigmoid,
    /// `log1p(exp(x))`, or `x` when `x > 20` (PyTorch's threshold)
    Softplus,
}

impl Unary {
    /// The scalar function on f32, shared by the CPU backend and tests.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Unary::Silu => x / (1.0 + (-x).exp()),
            Unary::GeluTanh => {
                const K: f32 = 0.797_884_6; // sqrt(2/pi)
                0.5 * x * (1.0 + (K * (x + 0.044715 * x * x * x)).tanh())
            }
            Unary::GeluErf => 0.5 * x * (1.0 + libm_erf(x * std::f32::consts::FRAC_1_SQRT_2)),
            Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Unary::Softplus => {
                if x > 20.0 {
                    x
                } else {
                    x.exp().ln_1p()
                }
            }
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Unary::Silu => "silu",
            Unary::GeluTanh => "gelu_tanh",
            Unary::GeluErf => "gelu_erf",
            Unary::Sigmoid => "sigmoid",
            Unary::Softplus => "softplus",
        }
    }
}

/// erf in f32, computed through f64 so that it is correctly rounded in practice.
#[inline]
fn libm_erf(x: f32) -> f32 {
    erf64(x as f64) as f32
}

/// erf(x) for f64 (Abramowitz–Stegun 7.1.26 is too coarse; this uses the W. J. Cody rational
/// approximations as in most libms, accurate to ~1e-16).
pub fn erf64(x: f64) -> f64 {
    cpu::erf64(x)
}

/// Applies `f` element-wise.
pub fn unary(x: &Tensor, f: Unary) -> Result<Tensor> {
    float_only(f.name(), x)?;
    match x.device() {
        Device::Cpu => cpu::unary(x, f),
        Device::Cuda(d) => cuda::unary(d, x, f),
    }
}

/// `x·mul + add` element-wise (one f32 fused step, rounded once).
pub fn affine(x: &Tensor, mul: f32, add: f32) -> Result<Tensor> {
    float_only("affine", x)?;
    match x.device() {
        Device::Cpu => cpu::affine(x, mul, add),
        Device::Cuda(d) => cuda::affine(d, x, mul, add),
    }
}
