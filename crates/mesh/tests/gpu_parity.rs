//! CUDA vs CPU parity of the mesh stage's GPU path (`t2_mesh::gpu`): closest-point queries
//! (on the CPU tree uploaded, and on the tree built on the device), the narrow-band remesh,
//! the parallel edge collapse, and the bake inside the whole `to_textured_mesh` flow.
//!
//! Each test skips (with a note) when no CUDA device can be opened, unless
//! `TRELLIS2_REQUIRE_CUDA=1`, which turns a missing GPU into a failure (set it on a GPU host so
//! a skip cannot pass for a result). The kernels' NVRTC compile check runs everywhere (CI
//! included): `gpu::tests::mesh_kernels_compile_with_nvrtc_for_sm90`.
//!
//! Tolerances. The kernels repeat the CPU's f32 operations in the same order with no FMA
//! contraction, and IEEE division/sqrt, and walk the tree exactly as `Bvh::closest_within`
//! does, so the results are expected to be the CPU's bit for bit; every test prints how many
//! results are bit-identical. What the tests allow beyond that, and why:
//! - closest point, on the CPU tree uploaded and on the tree built on the device
//!   (`GpuBvh::build`): the distance bit for bit (the boxes are exact, so no tree shape can
//!   change which distance is the least), and the CPU's face, point and uvw bit for bit, or
//!   else another face at exactly the same distance (a tie the traversal broke otherwise);
//! - edge collapse: the same mesh, bit for bit (no distance ties involved: every step's
//!   choice is an atomic min of exactly computed keys, the same on both sides);
//! - remesh: the same output mesh (so the same band voxel set): the band test and corner values
//!   depend only on distances, which ties do not change;
//! - bake (same UV mesh, same raster): texel bytes differing by more than one 8-bit level ≤ 1e-4 of all bytes: a tie
//!   between two faces can move the snap point to another, equally near surface point whose
//!   trilinear sample differs, which is the only sanctioned difference.

use rand::{Rng, SeedableRng, rngs::StdRng};
use t2_mesh::bake::{bake, bake_on};
use t2_mesh::bvh::{Bvh, Closest, closest_on_triangle};
use t2_mesh::collapse::{CollapseParams, collapse_cpu};
use t2_mesh::decimate::decimate;
use t2_mesh::geom::{dot, sub};
use t2_mesh::gpu::GpuBvh;
use t2_mesh::gpu::collapse::collapse_gpu;
use t2_mesh::remesh::{RemeshParams, remesh_narrow_band_dc, remesh_narrow_band_dc_on};
use t2_mesh::surface::Surface;
use t2_mesh::synth::{Attributes, NoisyTorus, triangle_soup, voxelise};
use t2_mesh::uv::unwrap;
use t2_mesh::{GlbParams, MeshWithVoxel, to_textured_mesh_on};
use t2_tensor::Device;
use t2_tensor::cuda::CudaDevice;

fn cuda() -> Option<CudaDevice> {
    t2_tensor::testing::cuda_or_skip()
}

fn torus(res: u32) -> MeshWithVoxel {
    let shape = NoisyTorus {
        major: 0.25,
        minor: 0.1,
        amp: 0.01,
        freq: 30.0,
    };
    voxelise(&shape, res, Attributes::Pattern).unwrap()
}

fn soup(rng: &mut StdRng, faces: usize) -> (Vec<[f32; 3]>, Vec<[u32; 3]>) {
    let m = triangle_soup(faces, || rng.random::<f32>());
    (m.vertices, m.faces)
}

/// The CPU tree, uploaded.
fn uploaded(dev: &CudaDevice, verts: &[[f32; 3]], faces: &[[u32; 3]]) -> GpuBvh {
    GpuBvh::upload(dev, &Bvh::new(verts, faces).unwrap()).unwrap()
}

#[test]
fn closest_points_match_cpu_on_random_soups_and_a_real_mesh() {
    let Some(dev) = cuda() else { return };
    let mut rng = StdRng::seed_from_u64(0x6d65_7368);
    for (faces, radius) in [
        (1, f32::INFINITY),
        (300, f32::INFINITY),
        (5000, 0.05),
        (5000, f32::INFINITY),
    ] {
        let (v, f) = soup(&mut rng, faces);
        let q: Vec<[f32; 3]> = (0..20_000)
            .map(|_| std::array::from_fn(|_| rng.random::<f32>() * 1.4 - 0.2))
            .collect();
        let (exact, ties) = check_against_cpu(&uploaded(&dev, &v, &f), &v, &f, &q, radius);
        eprintln!(
            "soup {faces} faces, radius {radius}: {exact}/{} bit-identical, {ties} ties",
            q.len()
        );
    }
    // A real extracted surface: grid-aligned geometry, many equidistant faces.
    let m = torus(64).mesh;
    for radius in [f32::INFINITY, 2.0 / 64.0] {
        let q: Vec<[f32; 3]> = (0..50_000)
            .map(|_| std::array::from_fn(|_| rng.random::<f32>() - 0.5))
            .collect();
        let (exact, ties) = check_against_cpu(
            &uploaded(&dev, &m.vertices, &m.faces),
            &m.vertices,
            &m.faces,
            &q,
            radius,
        );
        eprintln!(
            "torus {} faces, radius {radius}: {exact}/{} bit-identical, {ties} ties",
            m.faces.len(),
            q.len()
        );
    }
}

/// Compares the closest points found on `gpu` (an uploaded or a device-built tree) with the
/// CPU `Bvh`'s for `queries` within `radius`: the same distance bit for bit, and the same face,
/// point and uvw, or else another face exactly as near. Returns (identical, ties).
fn check_against_cpu(
    gpu: &GpuBvh,
    verts: &[[f32; 3]],
    faces: &[[u32; 3]],
    queries: &[[f32; 3]],
    radius: f32,
) -> (usize, usize) {
    let bvh = Bvh::new(verts, faces).unwrap();
    let got = gpu.closest_within(queries, radius).unwrap();
    assert_eq!(got.len(), queries.len());
    let bits = |c: &Closest| {
        let mut v: Vec<u32> = c.point.iter().chain(&c.uvw).map(|x| x.to_bits()).collect();
        v.extend([c.distance.to_bits(), c.face]);
        v
    };
    let (mut exact, mut ties) = (0, 0);
    for (i, (&p, g)) in queries.iter().zip(&got).enumerate() {
        let (c, g) = match (bvh.closest_within(p, radius), g) {
            (None, None) => {
                exact += 1;
                continue;
            }
            (Some(c), Some(g)) => (c, *g),
            (c, g) => panic!("query {i} {p:?} radius {radius}: CPU {c:?} vs GPU {g:?}"),
        };
        assert_eq!(
            c.distance.to_bits(),
            g.distance.to_bits(),
            "query {i} {p:?}: distance CPU {} GPU {}",
            c.distance,
            g.distance
        );
        if c.face == g.face {
            assert_eq!(bits(&c), bits(&g), "query {i} {p:?}: CPU {c:?} GPU {g:?}");
            exact += 1;
        } else {
            let t = faces[g.face as usize].map(|v| verts[v as usize]);
            let (q, _) = closest_on_triangle(p, &t);
            let d = dot(sub(q, p), sub(q, p)).sqrt();
            assert_eq!(
                d.to_bits(),
                c.distance.to_bits(),
                "query {i} {p:?}: GPU face {} at {d} is no tie with CPU face {} at {}",
                g.face,
                c.face,
                c.distance
            );
            ties += 1;
        }
    }
    (exact, ties)
}

/// `soup` plus triangles sharing centroids: exact copies (equal Morton codes, equal distances)
/// and corners rotated about the same centroid (equal codes, different shapes).
fn soup_with_shared_centroids(rng: &mut StdRng, faces: usize) -> (Vec<[f32; 3]>, Vec<[u32; 3]>) {
    let (mut v, mut f) = soup(rng, faces);
    for i in 0..faces / 4 {
        let [a, b, c] = f[(7 * i) % faces];
        f.push([a, b, c]);
        let [pa, pb, pc] = [a, b, c].map(|k| v[k as usize]);
        let n = v.len() as u32;
        v.extend([pb, pc, pa]);
        f.push([n, n + 1, n + 2]);
    }
    (v, f)
}

#[test]
fn gpu_built_tree_answers_as_the_cpu_tree() {
    let Some(dev) = cuda() else { return };
    let mut rng = StdRng::seed_from_u64(0x6c62_7668);
    let queries = |rng: &mut StdRng, n: usize, verts: &[[f32; 3]]| -> Vec<[f32; 3]> {
        let mut q: Vec<[f32; 3]> = (0..n)
            .map(|_| std::array::from_fn(|_| rng.random::<f32>() * 1.4 - 0.2))
            .collect();
        // Near the surface too, where the candidates are many and close.
        for _ in 0..n {
            let v = verts[rng.random_range(0..verts.len())];
            q.push(std::array::from_fn(|a| {
                v[a] + 0.01 * (rng.random::<f32>() - 0.5)
            }));
        }
        q.extend([[f32::NAN, 0.5, 0.5], [f32::INFINITY, 0.5, 0.5]]);
        q
    };
    let mut cases = Vec::new();
    // Fewer triangles than one leaf, one leaf, and just over one leaf.
    for n in 1..=5 {
        cases.push((format!("soup {n}"), soup(&mut rng, n)));
    }
    for n in [300, 20_000] {
        cases.push((format!("soup {n}"), soup(&mut rng, n)));
        cases.push((
            format!("shared centroids {n}"),
            soup_with_shared_centroids(&mut rng, n),
        ));
    }
    let m = torus(128).mesh;
    cases.push((format!("torus {}", m.faces.len()), (m.vertices, m.faces)));
    cases.push(("soup 1.2 M".into(), soup(&mut rng, 1_200_000)));
    for (name, (v, f)) in &cases {
        let q = queries(&mut rng, 20_000, v);
        for radius in [f32::INFINITY, 0.02] {
            let (exact, ties) =
                check_against_cpu(&GpuBvh::build(&dev, v, f).unwrap(), v, f, &q, radius);
            eprintln!(
                "{name}, radius {radius}: {exact}/{} identical, {ties} ties",
                q.len()
            );
        }
    }
}

#[test]
fn remesh_on_cuda_equals_cpu() {
    let Some(dev) = cuda() else { return };
    for (res, project) in [(64, 0.0), (128, 0.0), (128, 0.9), (256, 0.0)] {
        let m = torus(res).mesh;
        let bvh = Bvh::new(&m.vertices, &m.faces).unwrap();
        let gpu = GpuBvh::upload(&dev, &bvh).unwrap();
        let params = RemeshParams::for_grid(res, 1.0, project);
        let cpu = remesh_narrow_band_dc(&bvh, &params).unwrap();
        let cuda = remesh_narrow_band_dc_on(Surface::Cuda(&gpu), &params).unwrap();
        eprintln!(
            "remesh res {res} project {project}: CPU {} / CUDA {} vertices, {} / {} faces",
            cpu.vertices.len(),
            cuda.vertices.len(),
            cpu.faces.len(),
            cuda.faces.len()
        );
        assert_eq!(cpu.faces, cuda.faces, "res {res}: faces differ");
        if project == 0.0 {
            assert_eq!(cpu.vertices, cuda.vertices, "res {res}: vertices differ");
        } else {
            // Projection moves vertices to closest points, where a tie may pick another,
            // equally near point; count and bound those.
            let moved = cpu
                .vertices
                .iter()
                .zip(&cuda.vertices)
                .filter(|(a, b)| a != b)
                .count();
            eprintln!(
                "  projected vertices differing: {moved}/{}",
                cpu.vertices.len()
            );
            assert!(moved as f64 <= 1e-4 * cpu.vertices.len() as f64 + 1.0);
        }
    }
}

#[test]
fn edge_collapse_on_cuda_equals_cpu() {
    let Some(dev) = cuda() else { return };
    for (res, target) in [(64, 2_000), (128, 20_000)] {
        let input = torus(res);
        let bvh = Bvh::new(&input.mesh.vertices, &input.mesh.faces).unwrap();
        let remeshed = remesh_narrow_band_dc(&bvh, &RemeshParams::for_grid(res, 1.0, 0.0)).unwrap();
        let params = CollapseParams::default();
        let (cpu, rc) = collapse_cpu(&remeshed, target, &params).unwrap();
        let (gpu, rg) = collapse_gpu(&dev, &remeshed, target, &params).unwrap();
        eprintln!(
            "collapse res {res}: {} → {} faces in {} steps (CPU), {} faces in {} steps (CUDA)",
            remeshed.faces.len(),
            cpu.faces.len(),
            rc.steps,
            gpu.faces.len(),
            rg.steps
        );
        assert_eq!(rc, rg);
        assert_eq!(cpu.faces, gpu.faces);
        let bits = |m: &t2_mesh::TriMesh| -> Vec<u32> {
            m.vertices.iter().flatten().map(|x| x.to_bits()).collect()
        };
        assert_eq!(bits(&cpu), bits(&gpu));
    }
}

#[test]
fn bake_on_cuda_matches_cpu() {
    let Some(dev) = cuda() else { return };
    let input = torus(128);
    let bvh = Bvh::new(&input.mesh.vertices, &input.mesh.faces).unwrap();
    let gpu = GpuBvh::upload(&dev, &bvh).unwrap();
    let remeshed = remesh_narrow_band_dc(&bvh, &RemeshParams::for_grid(128, 1.0, 0.0)).unwrap();
    let (mesh, _) = decimate(&remeshed, 20_000).unwrap();
    let uv_mesh = unwrap(&mesh, 1024).unwrap();
    let cpu = bake(&uv_mesh, &bvh, &input, 1024).unwrap();
    let cuda = bake_on(&uv_mesh, Surface::Cuda(&gpu), &input, 1024).unwrap();
    assert_eq!(cpu.covered, cuda.covered, "same raster, same coverage");
    assert!(cpu.covered > 100_000, "only {} texels covered", cpu.covered);
    for (name, a, b) in [
        ("base colour", &cpu.base_color, &cuda.base_color),
        (
            "metallic-roughness",
            &cpu.metallic_roughness,
            &cuda.metallic_roughness,
        ),
    ] {
        assert_eq!(a.data.len(), b.data.len());
        let (differ, over_one) = a.byte_differences(b);
        eprintln!(
            "bake {name}: {differ} of {} bytes differ, {over_one} by more than one level",
            a.data.len()
        );
        assert!(
            over_one as f64 <= 1e-4 * a.data.len() as f64,
            "{name}: {over_one} bytes differ by more than one level"
        );
    }
}

#[test]
fn whole_flow_runs_on_cuda() {
    let Some(dev) = cuda() else { return };
    let input = torus(64);
    let params = GlbParams {
        decimation_target: 5_000,
        texture_size: 512,
        ..GlbParams::default()
    };
    let (tm, report) = to_textured_mesh_on(&input, &params, &Device::Cuda(dev), None).unwrap();
    assert!(report.steps.iter().any(|s| s.name == "bvh"));
    assert!(!report.steps.iter().any(|s| s.name == "bvh_upload"));
    assert!(!tm.faces.is_empty() && tm.faces.len() <= 5_000);
    assert_eq!(tm.base_color.data.len(), 512 * 512 * 4);
    assert!(report.covered_texels > 10_000);
}
