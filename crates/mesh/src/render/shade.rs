//! Physically based shading of one sample and the reference's display transform.
//!
//! The reference lights with split-sum image-based lighting from an HDR environment map (nvdiffrec)
//! plus SSAO. Without an environment map here, the same metallic-roughness model is lit by two
//! world-fixed directional lights (Cook–Torrance: GGX distribution, Smith–Schlick visibility,
//! Schlick Fresnel) and a sky/ground hemisphere standing in for the environment, whose specular
//! part uses Karis' analytic approximation of the split-sum BRDF integral. Lights are fixed in the
//! world (Z up) like the reference's environment, so highlights move across the turntable.

use super::camera::{dot, normalize};
use super::material::Material;

/// A directional light: unit direction *towards* the light (world, Z up) and its irradiance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DirectionalLight {
    pub direction: [f32; 3],
    pub irradiance: [f32; 3],
}

/// The light rig. Irradiances are linear; a white Lambertian surface facing a light of
/// irradiance `E` reflects `E / π`.
#[derive(Clone, Debug, PartialEq)]
pub struct Lighting {
    pub lights: Vec<DirectionalLight>,
    /// Hemisphere radiance seen looking up (+Z) and down (−Z); blended by the normal's Z.
    pub sky: [f32; 3],
    pub ground: [f32; 3],
}

impl Default for Lighting {
    /// A key light from above-front-right, a dimmer fill from the opposite side, and a soft sky:
    /// every side of the turntable stays readable, tuned so that a white diffuse surface facing
    /// the key ends up near 0.9 after tone mapping.
    fn default() -> Self {
        let dir = |d: [f32; 3]| normalize(d).unwrap_or([0.0, 0.0, 1.0]);
        Self {
            lights: vec![
                DirectionalLight {
                    direction: dir([0.6, -0.5, 0.8]),
                    irradiance: [2.6; 3],
                },
                DirectionalLight {
                    direction: dir([-0.7, 0.6, 0.3]),
                    irradiance: [0.9; 3],
                },
            ],
            sky: [0.45, 0.47, 0.5],
            ground: [0.12, 0.11, 0.1],
        }
    }
}

impl Lighting {
    /// Outgoing linear radiance at a surface point. `n` is the unit shading normal facing the
    /// viewer, `v` the unit direction from the point to the eye (both world space).
    #[inline]
    pub(crate) fn shade(&self, m: &Material, n: [f32; 3], v: [f32; 3]) -> [f32; 3] {
        // The reference raises the stored (sRGB-ish) base colour to 2.2 before shading.
        let base = m.base_color.map(|c| c.clamp(0.0, 1.0).powf(2.2));
        let metallic = m.metallic.clamp(0.0, 1.0);
        // GGX misbehaves at zero roughness (a delta lobe); 0.03 keeps highlights finite.
        let rough = m.roughness.clamp(0.03, 1.0);
        let alpha = rough * rough;
        let a2 = alpha * alpha;
        let f0 = [0, 1, 2].map(|k| 0.04 + (base[k] - 0.04) * metallic);
        let n_dot_v = dot(n, v).max(1e-4);

        let mut out = [0.0f32; 3];
        for light in &self.lights {
            let l = light.direction;
            let n_dot_l = dot(n, l);
            if n_dot_l <= 0.0 {
                continue;
            }
            let Some(h) = normalize([l[0] + v[0], l[1] + v[1], l[2] + v[2]]) else {
                continue;
            };
            let n_dot_h = dot(n, h).max(0.0);
            let v_dot_h = dot(v, h).max(0.0);
            let d = a2 / (std::f32::consts::PI * (n_dot_h * n_dot_h * (a2 - 1.0) + 1.0).powi(2));
            // Smith–Schlick with k = (r + 1)² / 8 for analytic lights (Karis 2013).
            let k = (rough + 1.0) * (rough + 1.0) / 8.0;
            let g = (n_dot_v / (n_dot_v * (1.0 - k) + k)) * (n_dot_l / (n_dot_l * (1.0 - k) + k));
            let fw = (1.0 - v_dot_h).powi(5);
            for c in 0..3 {
                let f = f0[c] + (1.0 - f0[c]) * fw;
                let spec = d * g * f / (4.0 * n_dot_v * n_dot_l);
                let diffuse = (1.0 - f) * (1.0 - metallic) * base[c] / std::f32::consts::PI;
                out[c] += (diffuse + spec) * light.irradiance[c] * n_dot_l;
            }
        }

        // Hemisphere "environment": irradiance around n for diffuse, radiance around the
        // reflection vector (blurred towards the irradiance as roughness grows) for specular.
        let hemi = |z: f32| {
            let t = 0.5 * (z + 1.0);
            [0, 1, 2].map(|c| self.ground[c] + (self.sky[c] - self.ground[c]) * t)
        };
        let irr = hemi(n[2]);
        let r_z = 2.0 * n_dot_v * n[2] - v[2];
        let refl = hemi(r_z);
        let (ea, eb) = env_brdf_approx(rough, n_dot_v);
        for c in 0..3 {
            let spec_env = refl[c] + (irr[c] - refl[c]) * rough;
            let spec_w = f0[c] * ea + eb;
            out[c] += (1.0 - spec_w) * (1.0 - metallic) * base[c] * irr[c] + spec_env * spec_w;
        }
        out
    }
}

/// Karis' fit of the split-sum environment BRDF: specular = F0·a + b.
#[inline]
fn env_brdf_approx(roughness: f32, n_dot_v: f32) -> (f32, f32) {
    let c0 = [-1.0, -0.0275, -0.572, 0.022];
    let c1 = [1.0, 0.0425, 1.04, -0.04];
    let r = [0, 1, 2, 3].map(|i| roughness * c0[i] + c1[i]);
    let a004 = (r[0] * r[0]).min((-9.28 * n_dot_v).exp2()) * r[0] + r[1];
    (a004 * -1.04 + r[2], a004 * 1.04 + r[3])
}

/// The reference's ACES filmic fit (Narkowicz), clamped to `[0, 1]`.
#[inline]
pub(crate) fn aces(x: f32) -> f32 {
    let x = x.max(0.0);
    ((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14)).clamp(0.0, 1.0)
}

/// The reference's display gamma: `x^(1/2.2)`, clamped.
#[inline]
pub(crate) fn gamma(x: f32) -> f32 {
    x.max(0.0).powf(1.0 / 2.2).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn white(metallic: f32, roughness: f32) -> Material {
        Material {
            base_color: [1.0; 3],
            alpha: 1.0,
            metallic,
            roughness,
        }
    }

    #[test]
    fn aces_and_gamma_match_the_reference_curves() {
        assert_eq!(aces(0.0), 0.0);
        // (2.51 + 0.03) / (2.43 + 0.59 + 0.14) at x = 1.
        assert!((aces(1.0) - 2.54 / 3.16).abs() < 1e-6);
        assert_eq!(aces(1e6), 1.0);
        assert!((gamma(0.5) - 0.5f32.powf(1.0 / 2.2)).abs() < 1e-7);
    }

    #[test]
    fn lit_side_is_brighter_and_black_base_colour_keeps_only_specular() {
        let rig = Lighting::default();
        let key = rig.lights[0].direction;
        let lit = rig.shade(&white(0.0, 0.6), key, key);
        let away = [-key[0], -key[1], -key[2]];
        let unlit = rig.shade(&white(0.0, 0.6), away, away);
        assert!(lit[0] > 2.0 * unlit[0], "{lit:?} vs {unlit:?}");
        let black = Material {
            base_color: [0.0; 3],
            alpha: 1.0,
            metallic: 0.0,
            roughness: 0.6,
        };
        let s = rig.shade(&black, key, key);
        // Only the 4 % dielectric reflection is left.
        assert!(s[0] > 0.0 && s[0] < 0.2 * lit[0], "{s:?}");
    }

    #[test]
    fn metal_tints_its_reflection_by_base_colour() {
        let rig = Lighting::default();
        let key = rig.lights[0].direction;
        let red_metal = Material {
            base_color: [1.0, 0.0, 0.0],
            alpha: 1.0,
            metallic: 1.0,
            roughness: 0.3,
        };
        let s = rig.shade(&red_metal, key, key);
        assert!(s[0] > 10.0 * s[1], "{s:?}");
    }
}
