//! The DiTs' 3-D rotary phases (`RotaryPositionEmbedder` / `SparseRotaryPositionEmbedder`),
//! computed on the host in f32 exactly as the reference builds its complex64 table:
//! `freqs[k] = 1 / theta^(k / freq_dim)` (f32), `phase = coord · freqs[k]` (f32), then
//! `cos`/`sin` of the phase; per token `[x·freqs, y·freqs, z·freqs, identity pads]`.

/// Phase tables for head dim `head_dim` and `rope_freq = (base, theta)`.
#[derive(Clone, Debug)]
pub struct RopeFreqs {
    head_dim: usize,
    freqs: Vec<f32>,
}

impl RopeFreqs {
    pub fn new(head_dim: usize, rope_freq: [f64; 2]) -> RopeFreqs {
        let freq_dim = head_dim / 2 / 3;
        let freqs = (0..freq_dim)
            .map(|k| {
                let e = k as f32 / freq_dim as f32;
                // torch.pow(theta, e) in f32, then base / that (f32 division).
                let p = (rope_freq[1] as f32 as f64).powf(e as f64) as f32;
                rope_freq[0] as f32 / p
            })
            .collect();
        RopeFreqs { head_dim, freqs }
    }

    /// `(cos, sin)`, each f32 `[N, head_dim / 2]`, for integer coords `(x, y, z)`.
    pub fn tables(&self, coords: impl ExactSizeIterator<Item = [i32; 3]>) -> (Vec<f32>, Vec<f32>) {
        let half = self.head_dim / 2;
        let fd = self.freqs.len();
        let n = coords.len();
        let mut cos = vec![1.0f32; n * half];
        let mut sin = vec![0.0f32; n * half];
        for (i, c) in coords.enumerate() {
            for (axis, &v) in c.iter().enumerate() {
                for (k, &f) in self.freqs.iter().enumerate() {
                    let phase = v as f32 * f;
                    cos[i * half + axis * fd + k] = phase.cos();
                    sin[i * half + axis * fd + k] = phase.sin();
                }
            }
        }
        (cos, sin)
    }
}

/// Dense `res³` grid coords in token order `x·R² + y·R + z`.
pub fn dense_grid(res: usize) -> impl ExactSizeIterator<Item = [i32; 3]> {
    (0..res * res * res).map(move |i| {
        [
            (i / (res * res)) as i32,
            ((i / res) % res) as i32,
            (i % res) as i32,
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn identity_pads_fill_the_tail() {
        // head_dim 32: freq_dim 5, 15 phases + 1 identity pair.
        let r = RopeFreqs::new(32, [1.0, 10000.0]);
        let (c, s) = r.tables([[1, 2, 3]].into_iter());
        assert_eq!(c.len(), 16);
        assert_eq!((c[15], s[15]), (1.0, 0.0));
        assert_eq!((c[0], s[0]), (1f32.cos(), 1f32.sin()));
        assert_eq!(s[5], 2f32.sin());
    }
}

/// Device copies of a phase table, as `rope_interleaved` takes them.
#[derive(Clone, Debug)]
pub struct RopeTables {
    pub cos: t2_tensor::Tensor,
    pub sin: t2_tensor::Tensor,
}

impl RopeTables {
    pub fn new(
        freqs: &RopeFreqs,
        coords: impl ExactSizeIterator<Item = [i32; 3]>,
        device: &t2_tensor::Device,
    ) -> t2_tensor::Result<RopeTables> {
        let n = coords.len();
        let half = freqs.head_dim / 2;
        let (cos, sin) = freqs.tables(coords);
        Ok(RopeTables {
            cos: t2_tensor::Tensor::from_vec(cos, &[n, half], device)?,
            sin: t2_tensor::Tensor::from_vec(sin, &[n, half], device)?,
        })
    }
}
