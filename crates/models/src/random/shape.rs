//! Voxelised analytic shapes for benchmarks: random weights decode no meaningful structure (the
//! SS decoder's occupancy and every subdivision decision are noise), so the benchmark mode fixes
//! them from a surface instead, which gives realistic token and fine-voxel counts (a surface
//! covers ~4× more voxels per 2× finer grid).
//!
//! The surface lives in the pipeline's unit cube `[-0.5, 0.5]³`: a sphere of radius 0.4, plus,
//! for larger counts, gyroid sheets inside it (`cells` periods across the cube). A voxel belongs
//! to the surface when its centre is within `SURFACE_BAND` voxel sizes of it (≈ the voxel's
//! half-diagonal, i.e. the voxel touches the surface). The sphere alone gives ~2.5 k / ~10 k /
//! ~22 k voxels on the 32³ / 64³ / 96³ latent grids: the counts of spec §6.1 for the 512,
//! 1024 and 1536 stages.

use rayon::prelude::*;

use crate::decoders::Subdivision;
use crate::error::{ModelError, Result};

/// Half-diagonal of a unit voxel (√3 / 2): a voxel whose centre is this close touches the surface.
pub const SURFACE_BAND: f64 = 0.866;
/// Sphere radius in the unit cube.
pub const RADIUS: f64 = 0.4;

/// A sphere of radius [`RADIUS`] with gyroid sheets of `cells` periods inside it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SurfaceShape {
    pub cells: f64,
}

impl SurfaceShape {
    /// The sphere alone.
    pub fn sphere() -> SurfaceShape {
        SurfaceShape { cells: 0.0 }
    }

    /// Approximate unsigned distance from `p` (unit-cube coordinates) to the surface.
    pub fn distance(&self, p: [f64; 3]) -> f64 {
        let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
        let sphere = (r - RADIUS).abs();
        if self.cells <= 0.0 || r > RADIUS {
            return sphere;
        }
        // Gyroid g(q) = sin x cos y + sin y cos z + sin z cos x at q = 2π·cells·p; distance
        // ≈ |g| / |∇ₚg| (first-order), the gradient clamped away from zero.
        let k = 2.0 * std::f64::consts::PI * self.cells;
        let [x, y, z] = p.map(|v| v * k);
        let (sx, cx, sy, cy, sz, cz) = (x.sin(), x.cos(), y.sin(), y.cos(), z.sin(), z.cos());
        let g = sx * cy + sy * cz + sz * cx;
        let grad = [cx * cy - sz * sx, -sx * sy + cy * cz, -sy * sz + cz * cx];
        let norm = (grad[0] * grad[0] + grad[1] * grad[1] + grad[2] * grad[2])
            .sqrt()
            .max(0.3);
        sphere.min(g.abs() / (k * norm))
    }

    /// Distance from voxel `c` of a `grid³` grid (centre `(c + 0.5)/grid − 0.5`), in voxels.
    pub fn voxel_distance(&self, c: [i32; 3], grid: usize) -> f64 {
        let g = grid as f64;
        let p = c.map(|v| (v as f64 + 0.5) / g - 0.5);
        self.distance(p) * g
    }

    /// The surface voxels of a `grid³` grid, `(0, x, y, z)` sorted.
    pub fn voxels(&self, grid: usize) -> Vec<[i32; 4]> {
        self.scan(grid)
            .into_iter()
            .filter(|(d, _)| *d < SURFACE_BAND)
            .map(|(_, c)| c)
            .collect()
    }

    /// Exactly `n` voxels of a `grid³` grid, the `n` closest to the surface (a surface
    /// thickened or thinned to that count), sorted.
    pub fn nearest_voxels(&self, grid: usize, n: usize) -> Result<Vec<[i32; 4]>> {
        let mut all = self.scan(grid);
        if n > all.len() {
            return Err(ModelError::invalid(format!(
                "{n} voxels asked of a {grid}³ grid"
            )));
        }
        if n < all.len() {
            all.select_nth_unstable_by(n, |a, b| a.0.total_cmp(&b.0));
            all.truncate(n);
        }
        let mut c: Vec<[i32; 4]> = all.into_iter().map(|(_, c)| c).collect();
        c.sort_unstable();
        Ok(c)
    }

    /// `(distance in voxels, coords)` of every voxel, in sorted coordinate order.
    fn scan(&self, grid: usize) -> Vec<(f64, [i32; 4])> {
        (0..grid)
            .into_par_iter()
            .flat_map_iter(|x| {
                (0..grid).flat_map(move |y| {
                    (0..grid).map(move |z| {
                        let c = [x as i32, y as i32, z as i32];
                        (self.voxel_distance(c, grid), [0, c[0], c[1], c[2]])
                    })
                })
            })
            .collect()
    }

    /// The shape whose surface covers about `target` voxels of a `grid³` grid (bisection on the
    /// gyroid's period count; the sphere when even it covers more).
    pub fn with_surface_voxels(grid: usize, target: usize) -> SurfaceShape {
        let count = |cells: f64| SurfaceShape { cells }.voxels(grid).len();
        if count(0.0) >= target {
            return SurfaceShape::sphere();
        }
        // The gyroid starts to add area from about one period; its area grows ~linearly.
        let (mut lo, mut hi) = (0.5, 1.0);
        while count(hi) < target && hi < 64.0 {
            lo = hi;
            hi *= 2.0;
        }
        for _ in 0..20 {
            let mid = 0.5 * (lo + hi);
            if count(mid) < target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        SurfaceShape { cells: hi }
    }

    /// The decoder's subdivision decisions for this surface, from latent voxels `coords` on a
    /// `grid³` grid through `levels` Channel→Spatial ×2 levels: at each level the parents are
    /// the previous level's children in C2S emission order (parent order, then child index
    /// `s = dx + 2dy + 4dz`), and child `s` is kept (logit +1, else −1) when it touches the
    /// surface on the 2× finer grid.
    pub fn subdivisions(
        &self,
        coords: &[[i32; 4]],
        grid: usize,
        levels: usize,
    ) -> Vec<Subdivision> {
        let mut parents = coords.to_vec();
        let mut g = grid;
        let mut out = Vec::with_capacity(levels);
        for _ in 0..levels {
            let child_grid = 2 * g;
            let logits: Vec<f32> = parents
                .par_iter()
                .flat_map_iter(|c| {
                    (0..8).map(move |s| {
                        let child = [
                            2 * c[1] + (s & 1),
                            2 * c[2] + ((s >> 1) & 1),
                            2 * c[3] + ((s >> 2) & 1),
                        ];
                        if self.voxel_distance(child, child_grid) < SURFACE_BAND {
                            1.0
                        } else {
                            -1.0
                        }
                    })
                })
                .collect();
            let children: Vec<[i32; 4]> = parents
                .iter()
                .zip(logits.chunks_exact(8))
                .flat_map(|(c, l)| {
                    (0..8).filter(|&s| l[s as usize] > 0.0).map(move |s| {
                        [
                            c[0],
                            2 * c[1] + (s & 1),
                            2 * c[2] + ((s >> 1) & 1),
                            2 * c[3] + ((s >> 2) & 1),
                        ]
                    })
                })
                .collect();
            out.push(Subdivision { parents, logits });
            parents = children;
            g = child_grid;
        }
        out
    }
}

/// The cascade's HR structure for `shape` at target `resolution`: the surface voxels on the
/// `res/16` grid, stepping `res` down by 128 while they reach `max_tokens` (never below 1024),
/// as `cascade_coords` does for decoded coords. Returns the coords and the resolution.
pub fn cascade_structure(
    shape: &SurfaceShape,
    resolution: u32,
    max_tokens: usize,
) -> (Vec<[i32; 4]>, u32) {
    let mut res = resolution;
    loop {
        let coords = shape.voxels((res / 16) as usize);
        if coords.len() < max_tokens || res <= 1024 {
            return (coords, res);
        }
        res -= 128;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sphere_counts_follow_the_surface_and_children_refine_it() {
        let s = SurfaceShape::sphere();
        let (a, b) = (s.voxels(32).len(), s.voxels(64).len());
        // Surface scaling: ~4× per 2× grid; §6.1's ~2.4 k at 32³ and ~9.6 k at 64³.
        assert!((1500..4000).contains(&a), "32³: {a}");
        assert!((3.3..4.7).contains(&(b as f64 / a as f64)), "{a} → {b}");
        let subs = s.subdivisions(&s.voxels(16), 16, 2);
        assert_eq!(subs.len(), 2);
        for (l, sub) in subs.iter().enumerate() {
            assert_eq!(sub.logits.len(), 8 * sub.parents.len());
            let kept = sub.mask().iter().filter(|&&k| k).count() as f64;
            let per_parent = kept / sub.parents.len() as f64;
            assert!((2.5..6.0).contains(&per_parent), "level {l}: {per_parent}");
        }
        // Level 1's parents are level 0's kept children, in emission order.
        let kept0 = subs[0].mask().iter().filter(|&&k| k).count();
        assert_eq!(subs[1].parents.len(), kept0);
        assert!(
            subs[1]
                .parents
                .iter()
                .all(|c| c[1..].iter().all(|&v| v < 64))
        );
    }

    #[test]
    fn token_targets_are_met_exactly_or_closely() {
        let s = SurfaceShape::sphere();
        let n = s.nearest_voxels(32, 3000).unwrap();
        assert_eq!(n.len(), 3000);
        assert!(n.windows(2).all(|w| w[0] < w[1]));
        assert!(s.nearest_voxels(8, 1000).is_err());
        let g = SurfaceShape::with_surface_voxels(32, 6000);
        let got = g.voxels(32).len() as f64;
        assert!(
            g.cells > 0.0 && (got / 6000.0 - 1.0).abs() < 0.05,
            "{g:?}: {got}"
        );
        let (c, r) = cascade_structure(&g, 1536, 1000);
        assert_eq!(r, 1024);
        assert_eq!(c, g.voxels(64));
    }
}
