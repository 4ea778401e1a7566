//! Golden parity for `fdg::flexible_dual_grid_to_mesh`.
//!
//! Set: `mesh/io.safetensors` (reference `o_voxel.convert.flexible_dual_grid_to_mesh`, TRELLIS.2
//! commit 5565d240c4a4, torch 2.6 fp32 on CPU). Every case prefix present (`<case>.in.*`,
//! `<case>.out.*`) is checked; the grid size comes from the file's `info` metadata.
//! Tolerances: vertices ≤ 1e-6 absolute (the same float32 multiply-add as the reference; only an
//! FMA contraction could differ, by ≤ 1 ulp), faces exact (integer topology; the split decision
//! is the same float32 product comparison).
//! Golden root: `$TRELLIS2_GOLDENS`, else `<workspace>/../shared/goldens`. A missing or malformed
//! file FAILS the test: parity must never be silently skipped.

use std::collections::BTreeSet;
use std::path::PathBuf;

use safetensors::{Dtype, SafeTensors};
use t2_mesh::fdg::flexible_dual_grid_to_mesh;

fn golden_root() -> PathBuf {
    match std::env::var_os("TRELLIS2_GOLDENS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/goldens"),
    }
}

/// A 2-D `[N, cols]` tensor of one of `dtypes` (a `[N]` vector also passes when `cols` is 1);
/// anything else fails the test.
fn tensor<'a>(
    st: &'a SafeTensors<'a>,
    name: &str,
    dtypes: &[Dtype],
    cols: usize,
) -> (Vec<u8>, usize) {
    let t = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("golden tensor {name} missing: {e}"));
    assert!(
        dtypes.contains(&t.dtype()),
        "{name}: dtype {:?}, expected one of {dtypes:?}",
        t.dtype()
    );
    let shape = t.shape();
    let ok = (shape.len() == 2 && shape[1] == cols) || (shape.len() == 1 && cols == 1);
    assert!(ok, "{name}: shape {shape:?}, expected [N, {cols}]");
    (t.data().to_vec(), shape[0])
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn i32s(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The per-case grid size from the `info` metadata JSON (`stats.<case>.grid_size`).
fn grid_size(info: &serde_json::Value, case: &str) -> u32 {
    let g = info["stats"][case]["grid_size"]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer stats.{case}.grid_size in `info` metadata"));
    u32::try_from(g).expect("grid_size fits u32")
}

#[test]
fn fdg_matches_reference_goldens() {
    let path = golden_root().join("mesh/io.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let (_, meta) = SafeTensors::read_metadata(&bytes).expect("safetensors header");
    let info: serde_json::Value = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("info"))
        .map(|s| serde_json::from_str(s).expect("info metadata is JSON"))
        .expect("io.safetensors has no `info` metadata");
    let st = SafeTensors::deserialize(&bytes).expect("safetensors");

    let cases: BTreeSet<String> = st
        .names()
        .iter()
        .filter_map(|n| n.split_once(".in.").map(|(c, _)| c.to_string()))
        .collect();
    assert!(
        !cases.is_empty(),
        "no `<case>.in.*` tensors in {}",
        path.display()
    );

    for case in &cases {
        let g = grid_size(&info, case);
        let (coords, n) = tensor(&st, &format!("{case}.in.coords"), &[Dtype::I32], 3);
        let coords: Vec<[i32; 3]> = i32s(&coords)
            .chunks(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        let (dv, n_dv) = tensor(&st, &format!("{case}.in.dual_vertices"), &[Dtype::F32], 3);
        let dv: Vec<[f32; 3]> = f32s(&dv).chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        let (flags, n_fl) = tensor(
            &st,
            &format!("{case}.in.intersected"),
            &[Dtype::U8, Dtype::BOOL],
            3,
        );
        let flags: Vec<[bool; 3]> = flags
            .chunks(3)
            .map(|c| [c[0] != 0, c[1] != 0, c[2] != 0])
            .collect();
        let (gamma, n_g) = tensor(&st, &format!("{case}.in.split_weight"), &[Dtype::F32], 1);
        let gamma = f32s(&gamma);
        assert_eq!((n_dv, n_fl, n_g), (n, n, n), "{case}: input lengths");

        let (want_v, n_v) = tensor(&st, &format!("{case}.out.vertices"), &[Dtype::F32], 3);
        let want_v = f32s(&want_v);
        let (want_f, _) = tensor(&st, &format!("{case}.out.faces"), &[Dtype::I32], 3);
        let want_f = i32s(&want_f);

        let mesh = flexible_dual_grid_to_mesh(&coords, &dv, &flags, &gamma, g)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(mesh.vertices.len(), n_v, "{case}: vertex count");
        let max_err = mesh
            .vertices
            .iter()
            .flatten()
            .zip(&want_v)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max_err <= 1e-6, "{case}: vertex max abs error {max_err}");
        let got_f: Vec<i32> = mesh.faces.iter().flatten().map(|&i| i as i32).collect();
        assert_eq!(got_f.len(), want_f.len(), "{case}: face count");
        if let Some(k) = (0..got_f.len()).find(|&k| got_f[k] != want_f[k]) {
            panic!(
                "{case}: faces differ first at face {}: got {:?}, want {:?}",
                k / 3,
                &got_f[k / 3 * 3..k / 3 * 3 + 3],
                &want_f[k / 3 * 3..k / 3 * 3 + 3]
            );
        }
        eprintln!(
            "{case}: grid {g}, {} faces, max vertex error {max_err:e}",
            mesh.faces.len()
        );
    }
}
