//! The CUDA kernels' logic checked without a GPU: `closest.cu` compiled as plain C++ (the
//! CUDA built-ins it uses stand-ins in `host_check/shim.h`), its kernels run as loops over the
//! same inputs as the CPU path, and the outputs compared bit for bit. This catches traversal,
//! arithmetic-order, hashing and quantisation mistakes in CI (which has no GPU) — not NVRTC
//! code generation or launch-argument mistakes, which the parity tests (`tests/gpu_parity.rs`)
//! check on a GPU. A C++ compiler is always present where t2-mesh builds (meshopt needs one);
//! `$CXX` overrides `c++`.

use std::path::Path;
use std::process::Command;

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::bvh::Bvh;
use crate::sample::VoxelField;
use crate::synth::{Attributes, NoisyTorus, voxelise};

fn write<T: bytemuck::Pod>(dir: &Path, name: &str, v: &[T]) {
    std::fs::write(dir.join(name), bytemuck::cast_slice::<T, u8>(v)).unwrap();
}
fn read<T: bytemuck::Pod>(dir: &Path, name: &str) -> Vec<T> {
    bytemuck::pod_collect_to_vec(&std::fs::read(dir.join(name)).unwrap())
}

#[test]
fn kernels_on_the_host_match_the_cpu_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("t2-mesh-host-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [
        ("closest.cu", include_str!("closest.cu")),
        ("shim.h", include_str!("host_check/shim.h")),
        ("driver.cpp", include_str!("host_check/driver.cpp")),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }

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

    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let exe = dir.join("driver");
    let built = Command::new(&cxx)
        .args(["-std=c++17", "-O1", "-ffp-contract=off", "-o"])
        .arg(&exe)
        .arg(dir.join("driver.cpp"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C++ compiler `{cxx}`: {e}"));
    assert!(
        built.status.success(),
        "{cxx} failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let ran = Command::new(&exe).arg(&dir).status().unwrap();
    assert!(ran.success(), "host driver failed: {ran}");

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
