//! The CUDA kernels' logic checked without a GPU: `closest.cu` and `lbvh.cu` compiled as plain
//! C++ (the CUDA built-ins they use stand-ins in `host_check/shim.h`), their kernels run as
//! loops over the same inputs as the CPU path, and the outputs compared bit for bit (the
//! device-built tree: its distances, and its structure). This catches traversal,
//! arithmetic-order, hashing and quantisation mistakes in CI (which has no GPU) — not NVRTC
//! code generation or launch-argument mistakes, which the parity tests (`tests/gpu_parity.rs`)
//! check on a GPU. A C++ compiler is always present where t2-mesh builds (meshopt needs one);
//! `$CXX` overrides `c++`.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::bvh::Bvh;
use crate::sample::VoxelField;
use crate::synth::{Attributes, NoisyTorus, triangle_soup, voxelise};
use crate::types::TriMesh;

/// The kernel sources every driver includes.
const SOURCES: [(&str, &str); 4] = [
    ("exact.cuh", include_str!("exact.cuh")),
    ("closest.cu", include_str!("closest.cu")),
    ("lbvh.cu", include_str!("lbvh.cu")),
    ("shim.h", include_str!("host_check/shim.h")),
];

/// Writes the sources and `driver` (name, text) into `dir` and compiles them; returns the
/// executable.
fn compile_driver(dir: &Path, (name, text): (&str, &str)) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (file, code) in SOURCES.into_iter().chain([(name, text)]) {
        std::fs::write(dir.join(file), code).unwrap();
    }
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let exe = dir.join(name.trim_end_matches(".cpp"));
    let built = Command::new(&cxx)
        .args(["-std=c++17", "-O1", "-ffp-contract=off", "-o"])
        .arg(&exe)
        .arg(dir.join(name))
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C++ compiler `{cxx}`: {e}"));
    assert!(
        built.status.success(),
        "{cxx} failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    exe
}

/// Runs `exe` on `dir`; a driver still running after two minutes (a malformed tree can send a
/// query or the box climb round a cycle) is killed and fails the test.
fn run_driver(exe: &Path, dir: &Path) {
    let mut child = Command::new(exe).arg(dir).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("host driver {} timed out", exe.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "host driver {} failed: {status}",
        exe.display()
    );
}

fn write<T: bytemuck::Pod>(dir: &Path, name: &str, v: &[T]) {
    std::fs::write(dir.join(name), bytemuck::cast_slice::<T, u8>(v)).unwrap();
}
fn read<T: bytemuck::Pod>(dir: &Path, name: &str) -> Vec<T> {
    bytemuck::pod_collect_to_vec(&std::fs::read(dir.join(name)).unwrap())
}

#[test]
fn kernels_on_the_host_match_the_cpu_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("t2-mesh-host-check-{}", std::process::id()));
    let exe = compile_driver(&dir, ("driver.cpp", include_str!("host_check/driver.cpp")));

    // A real extracted surface plus random, degenerate (repeated / collinear corners) triangles.
    let res = 32u32;
    let shape = NoisyTorus {
        major: 0.25,
        minor: 0.1,
        amp: 0.01,
        freq: 30.0,
    };
    let input = voxelise(&shape, res, Attributes::Pattern).unwrap();
    let mut rng = StdRng::seed_from_u64(0x686f_7374);
    let (mut verts, mut faces) = (input.mesh.vertices.clone(), input.mesh.faces.clone());
    for i in 0..300u32 {
        let a: [f32; 3] = std::array::from_fn(|_| rng.random::<f32>() - 0.5);
        let mut b: [f32; 3] = std::array::from_fn(|k| a[k] + 0.05 * (rng.random::<f32>() - 0.5));
        let mut c: [f32; 3] = std::array::from_fn(|k| a[k] + 0.05 * (rng.random::<f32>() - 0.5));
        match i % 7 {
            0 => b = a,
            1 => c = std::array::from_fn(|k| a[k] + 2.0 * (b[k] - a[k])),
            2 => (b, c) = (a, a),
            _ => {}
        }
        let n = verts.len() as u32;
        verts.extend([a, b, c]);
        faces.push([n, n + 1, n + 2]);
    }
    let bvh = Bvh::new(&verts, &faces).unwrap();
    let (nodes, tris) = bvh.flattened();
    // Queries: uniform in and around the domain, near the surface, and non-finite.
    let mut q: Vec<[f32; 3]> = (0..30_000)
        .map(|_| std::array::from_fn(|_| rng.random::<f32>() * 1.2 - 0.6))
        .collect();
    for k in 0..30_000 {
        let v = verts[k % verts.len()];
        q.push(std::array::from_fn(|a| {
            v[a] + 0.02 * (rng.random::<f32>() - 0.5)
        }));
    }
    q.extend([[f32::NAN, 0.0, 0.0], [f32::INFINITY, 0.0, 0.0]]);
    let radius = 0.03f32;

    // The remesh frame (res 32, band 1) over every voxel/corner of the grid.
    let scale = (res as f32 + 3.0) / res as f32;
    let center = [0.01f32, -0.02, 0.0];
    let cell = scale / res as f32;
    let (eps, tol) = (cell, 0.87 * cell);
    let reach = eps + 1.75 * cell;
    let to_world = |g: [f32; 3]| -> [f32; 3] {
        std::array::from_fn(|a| (g[a] / res as f32 - 0.5) * scale + center[a])
    };
    let coords: Vec<[i32; 3]> = (0..=res as i32)
        .flat_map(|x| (0..=res as i32).flat_map(move |y| (0..=res as i32).map(move |z| [x, y, z])))
        .collect();

    let field = VoxelField::new(&input).unwrap();
    let (keys, vals, mask, size) = field.hash().raw();
    let snap = 4.0 * input.voxel_size();
    write(&dir, "nodes", &nodes);
    write(&dir, "tris", &tris);
    write(&dir, "queries", &q);
    write(&dir, "coords", &coords);
    write(&dir, "keys", keys);
    write(&dir, "vals", vals);
    write(&dir, "attrs", field.attrs());
    let scalars = [radius, res as f32, scale, center[0], center[1], center[2]];
    write(
        &dir,
        "scalars",
        &[&scalars[..], &[eps, tol, reach, snap, field.voxel_size()]].concat(),
    );
    write(&dir, "ints", &[mask as i64, size[0], size[1], size[2]]);

    run_driver(&exe, &dir);

    // Closest points (bitwise: point, distance, uvw, face).
    let pd: Vec<[f32; 4]> = read(&dir, "out_pd");
    let uf: Vec<[f32; 4]> = read(&dir, "out_uf");
    assert_eq!(pd.len(), q.len());
    for (i, &p) in q.iter().enumerate() {
        let got = (uf[i][3].to_bits() != u32::MAX).then(|| {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            (bits(&pd[i]), bits(&uf[i][..3]), uf[i][3].to_bits())
        });
        let want = bvh.closest_within(p, radius).map(|c| {
            let mut pdist = c.point.to_vec();
            pdist.push(c.distance);
            (
                pdist.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                c.uvw.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                c.face,
            )
        });
        assert_eq!(got, want, "closest_within query {i} {p:?}");
    }

    // Remesh band test and corner UDF, as remesh.rs computes them.
    let keep: Vec<u8> = read(&dir, "out_keep");
    let udf: Vec<f32> = read(&dir, "out_udf");
    let mut kept = 0;
    for (i, c) in coords.iter().enumerate() {
        let centre = to_world(std::array::from_fn(|a| c[a] as f32 + 0.5));
        let want_keep = bvh
            .closest_within(centre, eps + tol)
            .is_some_and(|h| (h.distance - eps).abs() < tol);
        assert_eq!(keep[i] != 0, want_keep, "band test at {c:?}");
        kept += want_keep as usize;
        let corner = to_world(c.map(|v| v as f32));
        let want = bvh
            .closest_within(corner, reach)
            .map_or(reach, |h| h.distance)
            - eps;
        assert_eq!(udf[i].to_bits(), want.to_bits(), "corner UDF at {c:?}");
    }
    assert!(
        kept > 1000,
        "only {kept} band voxels: the band test is not exercised"
    );

    // Bake: snap (bounded, then unbounded), trilinear sample, quantise.
    let texels: Vec<[u8; 6]> = read(&dir, "out_texels");
    let mut coloured = 0;
    for (i, &p) in q.iter().enumerate() {
        let snapped = bvh
            .closest_within(p, snap)
            .unwrap_or_else(|| bvh.closest(p))
            .point;
        let want = field.sample(snapped).map(crate::bake::quantise);
        assert_eq!(texels[i], want, "bake texel for query {i} {p:?}");
        coloured += (want != [0; 6]) as usize;
    }
    assert!(coloured > 10_000, "only {coloured} texels sampled a voxel");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Vertices and faces.
type Soup = (Vec<[f32; 3]>, Vec<[u32; 3]>);

/// `synth::triangle_soup` plus triangles sharing a centroid with an earlier one: exact copies
/// and corners rotated (equal Morton codes, equal or different shapes).
fn soup(rng: &mut StdRng, n: usize) -> Soup {
    let TriMesh {
        vertices: v,
        faces: mut f,
    } = triangle_soup(n, || rng.random::<f32>());
    for i in 0..n / 8 {
        let [a, b, c] = f[(5 * i) % n];
        f.push([a, b, c]);
        f.push([b, c, a]);
    }
    (v, f)
}

/// `lbvh.cu`'s build, run on the host as `lbvh.rs` launches it, gives a well-formed tree in
/// the CPU's Morton order whose queries (`closest.cu`) return the CPU `Bvh`'s distances bit
/// for bit, and its face, point and uvw unless another face is exactly as near.
#[test]
fn lbvh_built_on_the_host_answers_as_the_cpu_tree() {
    use super::lbvh::{check_tree, cpu_morton_order};
    use crate::bvh::closest_on_triangle;
    use crate::geom::{dot, sub};

    let dir = std::env::temp_dir().join(format!("t2-mesh-host-lbvh-{}", std::process::id()));
    let exe = compile_driver(
        &dir,
        (
            "lbvh_driver.cpp",
            include_str!("host_check/lbvh_driver.cpp"),
        ),
    );
    let mut rng = StdRng::seed_from_u64(0x6c62_7668);
    let mut cases: Vec<(String, Soup)> = Vec::new();
    // Up to a few leaves: a root that is a leaf, a partial leaf, two leaves.
    for n in 1..=9 {
        cases.push((format!("soup {n}"), soup(&mut rng, n)));
    }
    cases.push(("soup 20000".into(), soup(&mut rng, 20_000)));
    // Every code equal: the hierarchy splits by leaf index alone.
    let tri = vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    cases.push(("one triangle ×1000".into(), (tri, vec![[0, 1, 2]; 1000])));
    // Centroids on a line: two axes of zero extent.
    let v: Vec<[f32; 3]> = (0..3000)
        .map(|i| [i as f32 / 3000.0, 0.5, if i % 3 == 0 { 0.25 } else { 0.75 }])
        .collect();
    let f = (0..1000u32)
        .map(|i| [3 * i, 3 * i + 1, 3 * i + 2])
        .collect();
    cases.push(("collinear centroids".into(), (v, f)));
    let shape = NoisyTorus {
        major: 0.25,
        minor: 0.1,
        amp: 0.01,
        freq: 30.0,
    };
    let m = voxelise(&shape, 64, Attributes::Pattern).unwrap().mesh;
    cases.push((format!("torus {}", m.faces.len()), (m.vertices, m.faces)));

    let radii = [f32::INFINITY, 0.02];
    for (name, (v, f)) in &cases {
        let mut q: Vec<[f32; 3]> = (0..5000)
            .map(|_| std::array::from_fn(|_| rng.random::<f32>() * 1.4 - 0.2))
            .collect();
        for _ in 0..5000 {
            let c = v[rng.random_range(0..v.len())];
            q.push(std::array::from_fn(|a| {
                c[a] + 0.01 * (rng.random::<f32>() - 0.5)
            }));
        }
        q.extend([[f32::NAN, 0.5, 0.5], [f32::INFINITY, 0.5, 0.5]]);
        write(&dir, "verts", v);
        write(&dir, "faces", f);
        write(&dir, "queries", &q);
        write(&dir, "radii", &radii);
        run_driver(&exe, &dir);

        let nodes: Vec<[u32; 8]> = read(&dir, "nodes");
        let tris: Vec<[f32; 4]> = read(&dir, "tris");
        assert_eq!(nodes.len(), 2 * f.len().div_ceil(4) - 1, "{name}");
        check_tree(&nodes, &tris, v, f).unwrap_or_else(|e| panic!("{name}: {e}"));
        let order: Vec<u32> = tris.chunks_exact(3).map(|t| t[0][3].to_bits()).collect();
        assert!(
            order == cpu_morton_order(v, f),
            "{name}: leaf order is not the CPU's Morton order"
        );

        let bvh = Bvh::new(v, f).unwrap();
        let pd: Vec<[f32; 4]> = read(&dir, "out_pd");
        let uf: Vec<[f32; 4]> = read(&dir, "out_uf");
        assert_eq!(pd.len(), radii.len() * q.len());
        let mut ties = 0;
        for (r, &radius) in radii.iter().enumerate() {
            for (i, &p) in q.iter().enumerate() {
                let (pd, uf) = (pd[r * q.len() + i], uf[r * q.len() + i]);
                let face = uf[3].to_bits();
                let Some(want) = bvh.closest_within(p, radius) else {
                    assert_eq!(face, u32::MAX, "{name} r {radius} query {i} {p:?}: a hit");
                    continue;
                };
                assert_eq!(
                    pd[3].to_bits(),
                    want.distance.to_bits(),
                    "{name} r {radius} query {i} {p:?}: distance {} vs CPU {want:?}",
                    pd[3]
                );
                if face == want.face {
                    let got = [pd[0], pd[1], pd[2], uf[0], uf[1], uf[2]];
                    let cpu = [want.point, want.uvw].concat();
                    assert_eq!(
                        got.map(f32::to_bits).to_vec(),
                        cpu.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                        "{name} r {radius} query {i} {p:?}"
                    );
                } else {
                    let t = f[face as usize].map(|k| v[k as usize]);
                    let (c, _) = closest_on_triangle(p, &t);
                    let d = dot(sub(c, p), sub(c, p)).sqrt();
                    assert_eq!(
                        d.to_bits(),
                        want.distance.to_bits(),
                        "{name} r {radius} query {i} {p:?}: face {face} at {d} is no tie with {want:?}"
                    );
                    ties += 1;
                }
            }
        }
        eprintln!(
            "{name}: {} queries × {} radii, {ties} ties",
            q.len(),
            radii.len()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
