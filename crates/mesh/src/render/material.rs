//! Input validation and per-sample material lookup: bilinear texture sampling of the base colour
//! (RGBA) and metallic-roughness (G = roughness, B = metallic) maps.

use super::RenderError;
use super::camera::{cross, normalize, sub};
use crate::types::{Texture, TexturedMesh};

/// What a textureless mesh is drawn with: a light grey dielectric "clay".
const CLAY: Material = Material {
    base_color: [0.8, 0.8, 0.8],
    alpha: 1.0,
    metallic: 0.0,
    roughness: 0.6,
};

/// PBR parameters at one surface sample, as stored (base colour not yet linearised).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Material {
    pub base_color: [f32; 3],
    pub alpha: f32,
    pub metallic: f32,
    pub roughness: f32,
}

/// A mesh checked once and enriched with per-face geometric normals, reused across frames.
pub(crate) struct PreparedMesh<'a> {
    pub mesh: &'a TexturedMesh,
    /// Unit geometric normal per face (zero for degenerate faces, which never rasterise).
    pub face_normals: Vec<[f32; 3]>,
    pub has_normals: bool,
    /// UVs and both textures present: sample them; else the clay material.
    pub textured: bool,
}

impl<'a> PreparedMesh<'a> {
    pub fn new(mesh: &'a TexturedMesh) -> Result<Self, RenderError> {
        let n = mesh.positions.len();
        if mesh.faces.is_empty() || n == 0 {
            return Err(RenderError::InvalidMesh("mesh has no faces".into()));
        }
        if n > u32::MAX as usize {
            return Err(RenderError::InvalidMesh(format!(
                "{n} vertices exceed u32 indexing"
            )));
        }
        if let Some((i, f)) = mesh
            .faces
            .iter()
            .enumerate()
            .find(|(_, f)| f.iter().any(|&v| v as usize >= n))
        {
            return Err(RenderError::InvalidMesh(format!(
                "face {i} = {f:?} indexes past the {n} vertices"
            )));
        }
        if let Some(i) = mesh
            .positions
            .iter()
            .position(|p| !p.iter().all(|c| c.is_finite()))
        {
            return Err(RenderError::InvalidMesh(format!(
                "vertex {i} has a non-finite position"
            )));
        }
        let has_normals = !mesh.normals.is_empty();
        if has_normals && mesh.normals.len() != n {
            return Err(RenderError::InvalidMesh(format!(
                "{} normals for {n} vertices",
                mesh.normals.len()
            )));
        }
        if !mesh.uvs.is_empty() && mesh.uvs.len() != n {
            return Err(RenderError::InvalidMesh(format!(
                "{} uvs for {n} vertices",
                mesh.uvs.len()
            )));
        }
        check_texture("base_color", &mesh.base_color, &[3, 4])?;
        check_texture("metallic_roughness", &mesh.metallic_roughness, &[3, 4])?;
        let textured = !mesh.uvs.is_empty()
            && !is_empty(&mesh.base_color)
            && !is_empty(&mesh.metallic_roughness);
        let face_normals = mesh
            .faces
            .iter()
            .map(|f| {
                let [a, b, c] = f.map(|v| mesh.positions[v as usize]);
                normalize(cross(sub(b, a), sub(c, a))).unwrap_or([0.0; 3])
            })
            .collect();
        Ok(Self {
            mesh,
            face_normals,
            has_normals,
            textured,
        })
    }

    /// Material at barycentrics `(b0, b1, b2)` of `face`.
    #[inline]
    pub fn material(&self, face: usize, b: [f32; 3]) -> Material {
        if !self.textured {
            return CLAY;
        }
        let f = self.mesh.faces[face];
        let uv = |k: usize| self.mesh.uvs[f[k] as usize];
        let (t0, t1, t2) = (uv(0), uv(1), uv(2));
        let u = b[0] * t0[0] + b[1] * t1[0] + b[2] * t2[0];
        let v = b[0] * t0[1] + b[1] * t1[1] + b[2] * t2[1];
        let bc = bilinear(&self.mesh.base_color, u, v);
        let mr = bilinear(&self.mesh.metallic_roughness, u, v);
        Material {
            base_color: [bc[0], bc[1], bc[2]],
            alpha: if self.mesh.base_color.channels == 4 {
                bc[3]
            } else {
                1.0
            },
            roughness: mr[1],
            metallic: mr[2],
        }
    }
}

fn is_empty(t: &Texture) -> bool {
    t.width == 0 || t.height == 0
}

fn check_texture(name: &str, t: &Texture, channels: &[u8]) -> Result<(), RenderError> {
    if is_empty(t) && t.data.is_empty() {
        return Ok(());
    }
    if !channels.contains(&t.channels) {
        return Err(RenderError::InvalidTexture(format!(
            "{name}: {} channels, expected one of {channels:?}",
            t.channels
        )));
    }
    let want = t.width as usize * t.height as usize * t.channels as usize;
    if t.data.len() != want || want == 0 {
        return Err(RenderError::InvalidTexture(format!(
            "{name}: {} bytes for {}x{}x{}",
            t.data.len(),
            t.width,
            t.height,
            t.channels
        )));
    }
    Ok(())
}

/// Bilinear lookup with clamp-to-edge. UV (0, 0) is the top-left corner of texel row 0 (the
/// baked layout of [`TexturedMesh`]), texel centres at `(i + ½) / size`. Returns values in
/// `[0, 1]`, channels past the texture's count set to 1.
#[inline]
pub(crate) fn bilinear(t: &Texture, u: f32, v: f32) -> [f32; 4] {
    let (w, h, c) = (t.width as usize, t.height as usize, t.channels as usize);
    // NaN UVs (degenerate input) fall back to the first texel instead of propagating.
    let x = if u.is_finite() {
        u * w as f32 - 0.5
    } else {
        0.0
    };
    let y = if v.is_finite() {
        v * h as f32 - 0.5
    } else {
        0.0
    };
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x as usize, y as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let corner = [
        (y0 * w + x0) * c,
        (y0 * w + x1) * c,
        (y1 * w + x0) * c,
        (y1 * w + x1) * c,
    ];
    let weight = [
        (1.0 - fx) * (1.0 - fy),
        fx * (1.0 - fy),
        (1.0 - fx) * fy,
        fx * fy,
    ];
    let mut out = [255.0f32; 4];
    for (k, o) in out.iter_mut().enumerate().take(c.min(4)) {
        *o = (0..4)
            .map(|j| t.data[corner[j] + k] as f32 * weight[j])
            .sum();
    }
    out.map(|v| v * (1.0 / 255.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_hits_texel_centres_and_blends_between() {
        // 2×1 RGB: black | white.
        let t = Texture {
            width: 2,
            height: 1,
            channels: 3,
            data: vec![0, 0, 0, 255, 255, 255],
        };
        assert_eq!(bilinear(&t, 0.25, 0.5)[0], 0.0);
        assert_eq!(bilinear(&t, 0.75, 0.5)[0], 1.0);
        assert!((bilinear(&t, 0.5, 0.5)[0] - 0.5).abs() < 1e-6);
        // Clamp to edge outside [0, 1].
        assert_eq!(bilinear(&t, -3.0, 7.0)[0], 0.0);
        assert_eq!(bilinear(&t, 3.0, 0.5)[2], 1.0);
        assert_eq!(bilinear(&t, 0.3, 0.5)[3], 1.0);
    }

    #[test]
    fn v_runs_down_the_rows() {
        // 1×2 grey: row 0 = 0, row 1 = 255.
        let t = Texture {
            width: 1,
            height: 2,
            channels: 3,
            data: vec![0, 0, 0, 255, 255, 255],
        };
        assert_eq!(bilinear(&t, 0.5, 0.25)[0], 0.0);
        assert_eq!(bilinear(&t, 0.5, 0.75)[0], 1.0);
    }
}
