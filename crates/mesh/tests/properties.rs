//! Property tests over seeded random inputs (hand-rolled with `rand`, fixed seeds so failures
//! reproduce): remesh output is watertight, cleanup leaves no degenerate faces, UV charts lie in
//! [0, 1]² without overlapping, and baking a constant field gives that constant everywhere.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use t2_mesh::bvh::Bvh;
use t2_mesh::cleanup::{cleanup, is_degenerate};
use t2_mesh::decimate::decimate;
use t2_mesh::holes::{DEFAULT_MAX_HOLE_PERIMETER, fill_holes};
use t2_mesh::remesh::{RemeshParams, remesh_narrow_band_dc};
use t2_mesh::synth::{Attributes, NoisyTorus, Sphere, voxelise};
use t2_mesh::topology::{edge_stats, is_closed_and_oriented};
use t2_mesh::{GlbParams, TriMesh, to_textured_mesh, uv};

fn random_soup(rng: &mut StdRng, tris: usize) -> TriMesh {
    let mut vertices = Vec::new();
    let mut faces = Vec::new();
    for t in 0..tris as u32 {
        let c: [f32; 3] = std::array::from_fn(|_| rng.random_range(-0.3..0.3));
        for _ in 0..3 {
            vertices.push(std::array::from_fn(|a| c[a] + rng.random_range(-0.1..0.1)));
        }
        faces.push([3 * t, 3 * t + 1, 3 * t + 2]);
    }
    TriMesh { vertices, faces }
}

/// Watertight = no boundary edge and every directed edge matched by its reverse.
#[test]
fn remesh_is_watertight() {
    let mut rng = StdRng::seed_from_u64(11);
    for case in 0..6 {
        let input = if case % 2 == 0 {
            let n = rng.random_range(1..40);
            random_soup(&mut rng, n)
        } else {
            let shape = NoisyTorus {
                major: rng.random_range(0.15..0.3),
                minor: rng.random_range(0.04..0.1),
                amp: rng.random_range(0.0..0.02),
                freq: rng.random_range(10.0..40.0),
            };
            voxelise(&shape, 64, Attributes::Pattern).unwrap().mesh
        };
        let bvh = Bvh::new(&input.vertices, &input.faces).unwrap();
        let res = [32, 64, 128][case % 3];
        let band = rng.random_range(0.5..2.0);
        let project = if case % 3 == 2 { 0.5 } else { 0.0 };
        let m = remesh_narrow_band_dc(&bvh, &RemeshParams::for_grid(res, band, project)).unwrap();
        let (boundary, _, _) = edge_stats(&m.faces);
        assert_eq!(boundary, 0, "case {case}: {boundary} boundary edges");
        assert!(
            is_closed_and_oriented(&m.faces),
            "case {case}: not consistently closed"
        );
    }
}

/// Punching out single faces of a closed FDG sphere leaves small triangular holes; filling
/// closes exactly those under the perimeter threshold and creates no non-manifold edge.
#[test]
fn small_holes_are_filled_large_ones_kept() {
    let mut rng = StdRng::seed_from_u64(23);
    for res in [32u32, 64, 256] {
        let shape = Sphere {
            center: [0.01, -0.02, 0.015],
            radius: 0.3,
        };
        let mut m = voxelise(&shape, res, Attributes::Pattern).unwrap().mesh;
        assert_eq!(edge_stats(&m.faces).0, 0, "res {res}: sphere is closed");
        // Remove a few faces far apart (every removed face opens one 3-edge hole).
        let mut removed = 0;
        let step = m.faces.len() / 7;
        let start = rng.random_range(0..step);
        for k in (0..6).rev() {
            m.faces.remove(start + k * step);
            removed += 1;
        }
        let (before, _, _) = edge_stats(&m.faces);
        assert_eq!(
            before,
            3 * removed,
            "res {res}: holes are separate triangles"
        );
        let filled = fill_holes(&mut m, DEFAULT_MAX_HOLE_PERIMETER).unwrap();
        let (after, _, non_manifold) = edge_stats(&m.faces);
        assert_eq!(non_manifold, 0, "res {res}");
        if res >= 256 {
            // FDG triangle edges join dual vertices of neighbouring voxels (≤ 2√2 voxels), so a
            // one-face hole is under 6 voxels ≈ 0.023 < 0.03 around at res 256.
            assert_eq!(
                (filled, after),
                (removed, 0),
                "res {res}: small holes stay open"
            );
        }
        if res == 32 {
            // Faces ~0.03 world units across: at least part of the holes are too large.
            assert!(
                after > 0 && filled < removed,
                "res {res}: filled {filled} of {removed}"
            );
        }
    }
}

#[test]
fn cleanup_leaves_no_degenerate_faces() {
    let mut rng = StdRng::seed_from_u64(5);
    for case in 0..8 {
        let mut m = random_soup(&mut rng, 200);
        let n = m.vertices.len() as u32;
        // Inject repeated indices, collinear and coincident corners, duplicates and fans.
        for _ in 0..100 {
            let a = rng.random_range(0..n);
            let b = rng.random_range(0..n);
            match rng.random_range(0..4) {
                0 => m.faces.push([a, a, b]),
                1 => {
                    let (pa, pb) = (m.vertices[a as usize], m.vertices[b as usize]);
                    let t: f32 = rng.random();
                    m.vertices
                        .push(std::array::from_fn(|k| pa[k] + t * (pb[k] - pa[k])));
                    m.faces.push([a, b, m.vertices.len() as u32 - 1]);
                }
                2 => {
                    let f = m.faces[rng.random_range(0..m.faces.len())];
                    m.faces.push([f[2], f[1], f[0]]);
                }
                _ => {
                    let f = m.faces[rng.random_range(0..m.faces.len())];
                    m.faces.push([f[0], f[1], a]);
                }
            }
        }
        cleanup(&mut m, 0.0, true).unwrap();
        assert!(!m.faces.is_empty());
        let bad = m
            .faces
            .iter()
            .filter(|&&f| is_degenerate(&m.vertices, f))
            .count();
        assert_eq!(bad, 0, "case {case}: {bad} degenerate faces remain");
        let (_, _, non_manifold) = edge_stats(&m.faces);
        assert_eq!(non_manifold, 0, "case {case}");
        let mut sorted: Vec<[u32; 3]> = m
            .faces
            .iter()
            .map(|f| {
                let mut s = *f;
                s.sort();
                s
            })
            .collect();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            m.faces.len(),
            "case {case}: duplicate faces remain"
        );
    }
}

/// Texel-centre coverage at `n²`: a texel strictly inside two different triangles (inset by a
/// small margin so shared edges don't count) is an overlap.
fn overlapping_texels(uvs: &[[f32; 2]], faces: &[[u32; 3]], n: usize) -> usize {
    let mut owner = vec![u32::MAX; n * n];
    let mut overlaps = 0;
    const INSET: f32 = 1e-3;
    for (fi, f) in faces.iter().enumerate() {
        let p = f.map(|i| [uvs[i as usize][0] * n as f32, uvs[i as usize][1] * n as f32]);
        let area =
            (p[1][0] - p[0][0]) * (p[2][1] - p[0][1]) - (p[2][0] - p[0][0]) * (p[1][1] - p[0][1]);
        if area.abs() < 1e-9 {
            continue;
        }
        let xs = p.map(|q| q[0]);
        let ys = p.map(|q| q[1]);
        let x0 = xs
            .iter()
            .cloned()
            .fold(f32::INFINITY, f32::min)
            .floor()
            .max(0.0) as usize;
        let x1 = (xs.iter().cloned().fold(f32::NEG_INFINITY, f32::max).ceil() as usize).min(n);
        let y0 = ys
            .iter()
            .cloned()
            .fold(f32::INFINITY, f32::min)
            .floor()
            .max(0.0) as usize;
        let y1 = (ys.iter().cloned().fold(f32::NEG_INFINITY, f32::max).ceil() as usize).min(n);
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                let e = |a: [f32; 2], b: [f32; 2]| {
                    ((b[0] - a[0]) * (py - a[1]) - (px - a[0]) * (b[1] - a[1])) / area
                };
                let w = [e(p[1], p[2]), e(p[2], p[0]), e(p[0], p[1])];
                if w.iter().all(|&v| v > INSET) {
                    let o = &mut owner[y * n + x];
                    if *o != u32::MAX && *o != fi as u32 {
                        overlaps += 1;
                    }
                    *o = fi as u32;
                }
            }
        }
    }
    overlaps
}

#[test]
fn overlap_checker_sees_overlap() {
    let uvs = [
        [0.1, 0.1],
        [0.9, 0.1],
        [0.1, 0.9],
        [0.2, 0.2],
        [0.8, 0.3],
        [0.3, 0.8],
        [0.9, 0.9],
    ];
    // Two triangles sharing only the edge 1–2 do not overlap; a third inside the first does.
    assert_eq!(overlapping_texels(&uvs, &[[0, 1, 2], [1, 6, 2]], 64), 0);
    assert!(overlapping_texels(&uvs, &[[0, 1, 2], [3, 4, 5]], 64) > 0);
}

/// Texels of a `page`² atlas near each chart (its triangles' texel centres and corner texels,
/// grown by the chart padding) belong to one chart only: filtering near one chart never reads
/// another.
fn charts_keep_their_padding(u: &uv::UvMesh, page: u32, what: &str) {
    let n = page as i64;
    let pad = uv::CHART_PADDING as i64;
    let mut owner = vec![u32::MAX; (n * n) as usize];
    let claim = |x: i64, y: i64, chart: u32, owner: &mut Vec<u32>| {
        for dy in -pad..=pad {
            for dx in -pad..=pad {
                let (x, y) = (x + dx, y + dy);
                if (0..n).contains(&x) && (0..n).contains(&y) {
                    let o = &mut owner[(y * n + x) as usize];
                    assert!(
                        *o == u32::MAX || *o == chart,
                        "{what}: chart {chart} comes within the padding of chart {o} at ({x}, {y})"
                    );
                    *o = chart;
                }
            }
        }
    };
    for f in &u.faces {
        let chart = u.chart[f[0] as usize];
        let p = f.map(|i| u.uvs[i as usize].map(|v| v as f64 * page as f64));
        for q in &p {
            claim(q[0].floor() as i64, q[1].floor() as i64, chart, &mut owner);
        }
        let area =
            (p[1][0] - p[0][0]) * (p[2][1] - p[0][1]) - (p[2][0] - p[0][0]) * (p[1][1] - p[0][1]);
        if area == 0.0 {
            continue;
        }
        let (x0, x1) = p
            .iter()
            .fold((f64::MAX, f64::MIN), |a, q| (a.0.min(q[0]), a.1.max(q[0])));
        let (y0, y1) = p
            .iter()
            .fold((f64::MAX, f64::MIN), |a, q| (a.0.min(q[1]), a.1.max(q[1])));
        for y in y0.floor() as i64..=y1.ceil() as i64 {
            for x in x0.floor() as i64..=x1.ceil() as i64 {
                let c = [x as f64 + 0.5, y as f64 + 0.5];
                let e = |a: [f64; 2], b: [f64; 2]| {
                    ((b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])) / area
                };
                if [e(p[1], p[2]), e(p[2], p[0]), e(p[0], p[1])]
                    .iter()
                    .all(|&w| w >= 0.0)
                {
                    claim(x, y, chart, &mut owner);
                }
            }
        }
    }
}

#[test]
fn uvs_in_unit_square_without_overlap() {
    let mut rng = StdRng::seed_from_u64(7);
    for case in 0..4 {
        let shape = NoisyTorus {
            major: rng.random_range(0.15..0.3),
            minor: rng.random_range(0.05..0.12),
            amp: rng.random_range(0.0..0.03),
            freq: rng.random_range(10.0..50.0),
        };
        let m = voxelise(&shape, 64, Attributes::Pattern).unwrap().mesh;
        let (m, _) = decimate(&m, rng.random_range(500..4000)).unwrap();
        // Cases 2 and 3 go through the pieces path (the mesh cut in four or more pieces that
        // are segmented separately and packed into one atlas).
        let piece_faces = if case < 2 {
            uv::UNWRAP_PIECE_FACES
        } else {
            m.faces.len().div_ceil(4)
        };
        // Our charts + LSCM in every case, the crate's own flattening in two.
        let flattening = if case % 2 == 0 {
            uv::Flattening::DirectLscm
        } else {
            uv::Flattening::Uvunwrap
        };
        let direct = uv::unwrap_with(&m, 1024, piece_faces, uv::Flattening::DirectLscm).unwrap();
        let u = uv::unwrap_with(&m, 1024, piece_faces, flattening).unwrap();
        if flattening == uv::Flattening::DirectLscm {
            // Run twice (parallel charts, parallel pieces): the same atlas.
            assert_eq!(direct.uvs, u.uvs, "case {case}: UVs differ between runs");
            assert_eq!(direct.faces, u.faces, "case {case}");
        }
        for u in [&direct, &u] {
            assert_eq!(u.faces.len(), m.faces.len());
            // Same faces in the same order: every corner's position is the input corner's.
            for (f, (uf, mf)) in u.faces.iter().zip(&m.faces).enumerate() {
                for c in 0..3 {
                    assert_eq!(
                        u.xref[uf[c] as usize], mf[c],
                        "case {case}: face {f} corner {c}"
                    );
                    assert_eq!(u.positions[uf[c] as usize], m.vertices[mf[c] as usize]);
                }
            }
            for (i, t) in u.uvs.iter().enumerate() {
                assert!(
                    (0.0..=1.0).contains(&t[0]) && (0.0..=1.0).contains(&t[1]),
                    "case {case}: uv {i} = {t:?}"
                );
            }
            if std::ptr::eq(u, &direct) {
                charts_keep_their_padding(u, 1024, &format!("case {case}"));
            }
            let overlaps = overlapping_texels(&u.uvs, &u.faces, 2048);
            assert_eq!(
                overlaps, 0,
                "case {case}: {overlaps} texels covered by two faces"
            );
            assert!(u.chart_count >= 1);
        }
    }
}

#[test]
fn constant_field_bakes_to_constant() {
    // x·255 of each value is k + 0.5 (or far from an integer), so the truncating quantiser
    // gives one exact byte even after the ulp-level rounding of the renormalised weights.
    let c = [0.3f32, 0.7, 0.5, 0.1, 0.9, 0.95];
    let q = c.map(|x| (x * 255.0) as u8);
    for (seed, remesh) in [(1u64, true), (2, false)] {
        let mut rng = StdRng::seed_from_u64(seed);
        let shape = Sphere {
            center: std::array::from_fn(|_| rng.random_range(-0.05..0.05)),
            radius: rng.random_range(0.2..0.35),
        };
        let input = voxelise(&shape, 64, Attributes::Constant(c)).unwrap();
        let p = GlbParams {
            decimation_target: 3000,
            texture_size: 512,
            remesh,
            ..GlbParams::default()
        };
        let (tm, _) = to_textured_mesh(&input, &p).unwrap();
        assert_eq!((tm.base_color.width, tm.base_color.height), (512, 512));
        for px in tm.base_color.data.chunks_exact(4) {
            assert_eq!(px, [q[0], q[1], q[2], q[5]], "remesh={remesh}");
        }
        for px in tm.metallic_roughness.data.chunks_exact(3) {
            assert_eq!(px, [0, q[4], q[3]], "remesh={remesh}");
        }
    }
}
