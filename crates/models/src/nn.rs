//! Small building blocks shared by the networks: checkpoint-backed Linear and LayerNorm, the
//! precision policy, and the probe that exposes intermediates under the reference's module
//! paths (what the goldens' forward hooks recorded).

use t2_tensor::{DType, Device, Tensor, Weights, ops};

use crate::error::{ModelError, Result};

/// Which number formats the networks run in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// The reference's mixed precision (spec Appendix B): DiT blocks in the checkpoint config's
    /// `dtype` (bf16 for the real models), decoder bodies in f16 when `use_fp16`, with the
    /// f32 islands (norms, embedders, input/output layers) where the reference keeps them.
    #[default]
    Reference,
    /// Everything in f32 (weights up-cast exactly).
    F32,
}

impl Precision {
    /// The dtype of a network body whose reference dtype is `reference`.
    pub fn body_dtype(self, reference: DType) -> DType {
        match self {
            Precision::Reference => reference,
            Precision::F32 => DType::F32,
        }
    }
}

/// Receives intermediates by module path (e.g. `blocks.0.self_attn.to_qkv`); `pre:` marks a
/// module's input (a forward pre-hook), everything else its output.
pub type Probe<'a> = Option<&'a mut dyn FnMut(&str, &Tensor)>;

/// Sends `t` to the probe, if any.
pub(crate) fn tap(probe: &mut Probe<'_>, name: &str, t: &Tensor) {
    if let Some(p) = probe.as_deref_mut() {
        p(name, t);
    }
}

/// `nn.Linear` (`weight [out, in]`, optional `bias [out]`) loaded in `dtype`.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn load(
        ws: &Weights,
        prefix: &str,
        in_features: usize,
        out_features: usize,
        bias: bool,
        dtype: DType,
        device: &Device,
    ) -> Result<Linear> {
        let weight = ws.get(
            &format!("{prefix}.weight"),
            &[out_features, in_features],
            dtype,
            device,
        )?;
        let bias = if bias {
            Some(ws.get(&format!("{prefix}.bias"), &[out_features], dtype, device)?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    pub fn out_features(&self) -> usize {
        self.weight.dim(0)
    }

    /// `x [..., in]` → `[..., out]` in x's dtype (f32 accumulation).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(ops::linear(x, &self.weight, self.bias.as_ref())?)
    }
}

/// LayerNorm over the last dim, computed in f32 and rounded to the input dtype (the reference's
/// `LayerNorm32` / `F.layer_norm`), with optional f32 affine parameters.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub weight: Option<Tensor>,
    pub bias: Option<Tensor>,
    pub eps: f32,
}

impl LayerNorm {
    pub fn plain(eps: f32) -> LayerNorm {
        LayerNorm {
            weight: None,
            bias: None,
            eps,
        }
    }

    pub fn load_affine(
        ws: &Weights,
        prefix: &str,
        channels: usize,
        eps: f32,
        device: &Device,
    ) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: Some(ws.get(&format!("{prefix}.weight"), &[channels], DType::F32, device)?),
            bias: Some(ws.get(&format!("{prefix}.bias"), &[channels], DType::F32, device)?),
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(ops::layer_norm(
            x,
            self.weight.as_ref(),
            self.bias.as_ref(),
            self.eps,
        )?)
    }
}

/// The dtype a config string names (`"float32"`, `"bfloat16"`, …).
pub(crate) fn parse_dtype(s: &str) -> Result<DType> {
    match DType::parse(s) {
        Some(d) if d.is_float() => Ok(d),
        _ => Err(ModelError::Unsupported(format!("model dtype `{s}`"))),
    }
}

/// A `[rows, cols]` slice `start..start+len` of the last dim (copy).
pub(crate) fn cols(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    let last = x.rank() - 1;
    Ok(ops::narrow(x, last, start, len)?)
}

/// Element-wise SiLU.
pub(crate) fn silu(x: &Tensor) -> Result<Tensor> {
    Ok(ops::unary(x, ops::Unary::Silu)?)
}
