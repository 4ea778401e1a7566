//! Synthetic decoded assets for tests and benches: a flexible dual grid built from a signed
//! distance function the way the `mesh/` goldens' sphere case is (a voxel is active when its
//! corner signs differ; flags mark sign changes on its max-corner edges; the dual vertex is the
//! mean of its edge crossings), extracted with [`flexible_dual_grid_to_mesh`], plus per-voxel
//! PBR attributes. Only voxels near the surface are visited (coarse-to-fine band search), so
//! resolution 1024 is cheap.

use rayon::prelude::*;

use crate::error::MeshError;
use crate::fdg::flexible_dual_grid_to_mesh;
use crate::types::{MeshWithVoxel, TriMesh};

/// A shape to voxelise: a signed distance (negative inside) in world units on `[-0.5, 0.5]³`,
/// with a bound on its gradient norm (used to prune the band search safely).
pub trait Sdf: Sync {
    fn eval(&self, p: [f32; 3]) -> f32;
    fn lipschitz(&self) -> f32;
}

/// A torus around the z axis with a bumpy surface: `amp · sin(freq·x) sin(freq·y) sin(freq·z)`.
#[derive(Clone, Copy, Debug)]
pub struct NoisyTorus {
    pub major: f32,
    pub minor: f32,
    pub amp: f32,
    pub freq: f32,
}

impl Sdf for NoisyTorus {
    fn eval(&self, p: [f32; 3]) -> f32 {
        let q = ((p[0] * p[0] + p[1] * p[1]).sqrt() - self.major).hypot(p[2]) - self.minor;
        let f = self.freq;
        q + self.amp * (f * p[0]).sin() * (f * p[1]).sin() * (f * p[2]).sin()
    }
    fn lipschitz(&self) -> f32 {
        1.0 + self.amp * self.freq * 3f32.sqrt()
    }
}

/// A sphere of `radius` around `center`.
#[derive(Clone, Copy, Debug)]
pub struct Sphere {
    pub center: [f32; 3],
    pub radius: f32,
}

impl Sdf for Sphere {
    fn eval(&self, p: [f32; 3]) -> f32 {
        let d: [f32; 3] = std::array::from_fn(|a| p[a] - self.center[a]);
        (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt() - self.radius
    }
    fn lipschitz(&self) -> f32 {
        1.0
    }
}

/// How voxel attributes are assigned.
#[derive(Clone, Copy, Debug)]
pub enum Attributes {
    /// Every voxel gets the same 6 values.
    Constant([f32; 6]),
    /// Smooth colour bands over space, varying metallic and roughness, alpha 1.
    Pattern,
}

fn pattern(p: [f32; 3]) -> [f32; 6] {
    [
        0.5 + 0.4 * (9.0 * p[0]).sin(),
        0.5 + 0.4 * (7.0 * p[1] + 1.0).sin(),
        0.5 + 0.4 * (5.0 * p[2] + 2.0).sin(),
        0.5 + 0.5 * (4.0 * (p[0] + p[1])).sin(),
        0.3 + 0.2 * (6.0 * p[2]).cos(),
        1.0,
    ]
}

const BASE_RES: u32 = 32;

/// The flexible-dual-grid arguments (as the shape decoder hands them over).
#[derive(Clone, Debug, Default)]
pub struct DualGrid {
    pub coords: Vec<[i32; 3]>,
    pub dual_vertices: Vec<[f32; 3]>,
    pub intersected: Vec<[bool; 3]>,
    pub split_weight: Vec<f32>,
    pub resolution: u32,
}

impl DualGrid {
    /// The grid's flexible-dual-grid mesh.
    pub fn mesh(&self) -> Result<TriMesh, MeshError> {
        flexible_dual_grid_to_mesh(
            &self.coords,
            &self.dual_vertices,
            &self.intersected,
            &self.split_weight,
            self.resolution,
        )
    }
}

/// The flexible-dual-grid mesh of a sphere of `radius` around the origin at `resolution`: the
/// surface that benchmark runs on random weights put in place of the shape decoder's
/// (`t2_models::BenchStructure`; t2-bench and the mesh service).
pub fn sphere_surface(radius: f32, resolution: u32) -> Result<TriMesh, MeshError> {
    let sphere = Sphere {
        center: [0.0; 3],
        radius,
    };
    dual_grid(&sphere, resolution)?.mesh()
}

/// Voxelises `sdf` on a `resolution³` grid (a power of two ≥ 32) into a flexible dual grid.
pub fn dual_grid(sdf: &dyn Sdf, resolution: u32) -> Result<DualGrid, MeshError> {
    if resolution < BASE_RES || !resolution.is_power_of_two() {
        return Err(MeshError::InvalidParameter {
            name: "resolution",
            reason: format!("{resolution} is not a power of two ≥ {BASE_RES}"),
        });
    }
    let world = |g: [f32; 3], r: u32| -> [f32; 3] { g.map(|x| x / r as f32 - 0.5) };
    let mut res = BASE_RES;
    let mut cells: Vec<[i32; 3]> = (0..res as i32)
        .flat_map(|x| (0..res as i32).flat_map(move |y| (0..res as i32).map(move |z| [x, y, z])))
        .collect();
    // Keep cells that may contain the zero set: |sdf(centre)| ≤ L · half-diagonal.
    loop {
        let reach = sdf.lipschitz() * 0.87 / res as f32;
        cells = cells
            .into_par_iter()
            .filter(|c| sdf.eval(world(c.map(|v| v as f32 + 0.5), res)).abs() <= reach)
            .collect();
        if res == resolution {
            break;
        }
        res *= 2;
        cells = cells
            .into_par_iter()
            .flat_map_iter(|c| {
                (0..8).map(move |k| {
                    [
                        2 * c[0] + (k & 1),
                        2 * c[1] + ((k >> 1) & 1),
                        2 * c[2] + (k >> 2),
                    ]
                })
            })
            .collect();
    }
    // Corner values per cell; active when the signs differ.
    type Voxel = ([i32; 3], [f32; 3], [bool; 3]);
    let voxels: Vec<Voxel> = cells
        .par_iter()
        .filter_map(|&c| {
            let val: [f32; 8] = std::array::from_fn(|k| {
                let k = k as i32;
                let g = [c[0] + (k & 1), c[1] + ((k >> 1) & 1), c[2] + (k >> 2)];
                sdf.eval(world(g.map(|v| v as f32), res))
            });
            let inside = |k: usize| val[k] < 0.0;
            if (0..8).all(inside) || !(0..8).any(inside) {
                return None;
            }
            // The 12 edges as corner pairs (corner index = x + 2y + 4z).
            let mut sum = [0.0f32; 3];
            let mut n = 0.0f32;
            for (a, b) in [
                (0, 1),
                (2, 3),
                (4, 5),
                (6, 7),
                (0, 2),
                (1, 3),
                (4, 6),
                (5, 7),
                (0, 4),
                (1, 5),
                (2, 6),
                (3, 7),
            ] {
                if inside(a) != inside(b) {
                    let t = val[a] / (val[a] - val[b]);
                    let pa = [(a & 1) as f32, ((a >> 1) & 1) as f32, (a >> 2) as f32];
                    let pb = [(b & 1) as f32, ((b >> 1) & 1) as f32, (b >> 2) as f32];
                    for k in 0..3 {
                        sum[k] += pa[k] + t * (pb[k] - pa[k]);
                    }
                    n += 1.0;
                }
            }
            // Max-corner edges: x from corner 6 (0,1,1) to 7; y from 5 (1,0,1) to 7; z from 3 to 7.
            let flags = [
                inside(6) != inside(7),
                inside(5) != inside(7),
                inside(3) != inside(7),
            ];
            Some((c, sum.map(|s| s / n), flags))
        })
        .collect();
    if voxels.is_empty() {
        return Err(MeshError::Empty("the shape does not cross the grid"));
    }
    Ok(DualGrid {
        coords: voxels.iter().map(|v| v.0).collect(),
        dual_vertices: voxels.iter().map(|v| v.1).collect(),
        intersected: voxels.iter().map(|v| v.2).collect(),
        split_weight: vec![1.0f32; voxels.len()],
        resolution,
    })
}

/// Voxelises `sdf`, extracts its mesh and assigns voxel attributes.
pub fn voxelise(
    sdf: &dyn Sdf,
    resolution: u32,
    attributes: Attributes,
) -> Result<MeshWithVoxel, MeshError> {
    let g = dual_grid(sdf, resolution)?;
    let mesh = g.mesh()?;
    Ok(with_attributes(mesh, g.coords, resolution, attributes))
}

/// Attaches attributes to an extracted mesh and its voxels.
pub fn with_attributes(
    mesh: TriMesh,
    coords: Vec<[i32; 3]>,
    resolution: u32,
    attributes: Attributes,
) -> MeshWithVoxel {
    let centre = |c: &[i32; 3]| c.map(|v| (v as f32 + 0.5) / resolution as f32 - 0.5);
    let attrs = match attributes {
        Attributes::Constant(a) => vec![a; coords.len()],
        Attributes::Pattern => coords.par_iter().map(|c| pattern(centre(c))).collect(),
    };
    MeshWithVoxel {
        mesh,
        coords,
        attrs,
        resolution,
    }
}

/// Random triangles in the unit cube (test fixture; `uniform` draws from [0, 1)), every 17th
/// with repeated or collinear corners so every branch of `bvh::closest_on_triangle` is taken.
pub fn triangle_soup(faces: usize, mut uniform: impl FnMut() -> f32) -> TriMesh {
    let mut vertices = Vec::with_capacity(3 * faces);
    for i in 0..faces {
        let a: [f32; 3] = std::array::from_fn(|_| uniform());
        let mut b: [f32; 3] = std::array::from_fn(|k| a[k] + 0.1 * (uniform() - 0.5));
        let mut c: [f32; 3] = std::array::from_fn(|k| a[k] + 0.1 * (uniform() - 0.5));
        match i % 17 {
            0 => b = a,
            1 => c = std::array::from_fn(|k| a[k] + 2.0 * (b[k] - a[k])),
            2 => (b, c) = (a, a),
            _ => {}
        }
        vertices.extend([a, b, c]);
    }
    let faces = (0..faces as u32)
        .map(|i| [3 * i, 3 * i + 1, 3 * i + 2])
        .collect();
    TriMesh { vertices, faces }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark surface is the sphere at the grid's resolution: a closed mesh whose
    /// vertices lie within one voxel of the radius, and a resolution the grid cannot take is
    /// an error rather than a panic (the mesh service then keeps the decoder's surface).
    #[test]
    fn sphere_surface_lies_on_the_sphere() {
        let res = 64;
        let m = sphere_surface(0.4, res).unwrap();
        assert!(m.faces.len() > 1000, "{} faces", m.faces.len());
        let voxel = 1.0 / res as f32;
        for v in &m.vertices {
            let r = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
            assert!((r - 0.4).abs() < voxel, "vertex at radius {r}");
        }
        assert!(sphere_surface(0.4, 1536).is_err());
    }
}
