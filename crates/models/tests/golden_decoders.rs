//! Golden sets `ss_decoder`, `shape_decoder`, `tex_decoder` (reference commit 5565d240c4a4):
//! the tiny random-weight decoders with per-block hooks.
//!
//! Tolerances (README): features and logits 2e-5 (convolutions sum 27·Ci terms, fp32 vs fp32 in
//! another order). Coordinates, subdivision masks and occupancy are EXACT when the upstream
//! decisions are teacher-forced; a decision of the port's own may differ from the reference only
//! where the reference logit is within the feature tolerance of 0 (README: compare as sets then).
//! Vertices 1e-6 absolute (`(c + v)·f32(1/G) − 0.5`).

mod common;

use t2_models::decoders::{
    FlexiDualGrid, ScVaeDecoder, ShapeDecoder, SparseStructureDecoder, Subdivide, Subdivision,
    TexDecoder, occupied_coords,
};
use t2_models::nn::Precision;
use t2_tensor::{Device, Tensor};

const TOL: f64 = 2e-5;

fn tensor(io: &common::Io, name: &str, dev: &Device) -> Tensor {
    let t = io.f32(name);
    Tensor::from_vec(t.data, &t.shape, dev).expect("upload")
}

/// Decisions `port_logit > 0` vs `ref_logit > 0` may differ only where |ref| <= TOL·max|ref|.
fn check_decisions(what: &str, port: &[f32], reference: &[f32]) -> usize {
    assert_eq!(port.len(), reference.len(), "{what}: count");
    let scale = reference.iter().fold(0f32, |a, v| a.max(v.abs())) as f64;
    let mut flips = 0;
    for (i, (&p, &r)) in port.iter().zip(reference).enumerate() {
        if (p > 0.0) != (r > 0.0) {
            assert!(
                (r.abs() as f64) <= TOL * scale,
                "{what}: decision {i} differs (port {p}, reference {r}) outside the tolerance band"
            );
            flips += 1;
        }
    }
    if flips > 0 {
        eprintln!("{what}: {flips} decisions within the tolerance band of 0 differ");
    }
    flips
}

#[test]
fn ss_decoder_logits_and_coords() {
    let Some(dir) = common::set_dir("ss_decoder") else {
        return;
    };
    let dev = Device::from_env().expect("device");
    let io = common::Io::open(&dir);
    let dec = SparseStructureDecoder::load(&common::model_files(&dir), Precision::F32, &dev)
        .expect("load ss_decoder");
    let mut cap = common::Captured::default();
    let logits = {
        let mut p = cap.probe();
        dec.forward(&tensor(&io, "in.z", &dev), &mut Some(&mut p))
            .expect("forward")
    };
    let n = cap.check_hooks(&io, "", |_| TOL);
    let s = common::check_hookstats(&cap, &io, "", TOL);
    let reference = io.f32("out.logits");
    let port = logits.to_vec_f32().unwrap();
    assert_eq!(logits.shape(), &reference.shape[..], "logits shape");
    common::check("out.logits", &port, &reference.data, TOL);
    let dim = reference.shape[2];
    let info = io.info();
    assert_eq!(
        info["full_resolution"].as_u64(),
        Some(dim as u64),
        "info.full_resolution"
    );
    let pool = info["pool_resolution"]
        .as_u64()
        .expect("info.pool_resolution") as usize;
    // The glue on the reference logits must give the reference coords exactly ...
    let full = io.coords4("out.coords_full");
    let pooled = io.coords4("out.coords_pooled");
    assert_eq!(
        occupied_coords(&reference.data, dim, dim).unwrap(),
        full,
        "coords_full glue"
    );
    assert_eq!(
        occupied_coords(&reference.data, dim, pool).unwrap(),
        pooled,
        "coords_pooled glue"
    );
    // ... and the port's own logits the same decisions, up to near-zero logits.
    if check_decisions("logits > 0", &port, &reference.data) == 0 {
        assert_eq!(
            occupied_coords(&port, dim, dim).unwrap(),
            full,
            "coords_full"
        );
        assert_eq!(
            occupied_coords(&port, dim, pool).unwrap(),
            pooled,
            "coords_pooled"
        );
    }
    eprintln!(
        "ss_decoder: {n} hooks, {s} hook statistics, {} / {} voxels",
        full.len(),
        pooled.len()
    );
}

fn guides(io: &common::Io, prefix: &str) -> Vec<Subdivision> {
    let mut out = Vec::new();
    while io.has(&format!("{prefix}.{}", out.len())) {
        let i = out.len();
        out.push(Subdivision {
            parents: io.coords4(&format!("{prefix}.{i}.coords")),
            logits: io.f32(&format!("{prefix}.{i}")).data,
        });
    }
    assert!(!out.is_empty(), "no `{prefix}.0` subdivisions");
    out
}

#[test]
fn shape_decoder_fields_subs_and_upsample() {
    let Some(dir) = common::set_dir("shape_decoder") else {
        return;
    };
    let dev = Device::from_env().expect("device");
    let io = common::Io::open(&dir);
    let files = common::model_files(&dir);
    let dec = ShapeDecoder::load(&files, Precision::F32, &dev).expect("load shape_decoder");
    let resolution = dec
        .inner()
        .config()
        .resolution
        .expect("FDG config has a resolution") as u32;
    let coords = io.coords4("in.coords");
    let feats = tensor(&io, "in.feats", &dev);
    let ref_subs = guides(&io, "out.subs");

    // Teacher-forced: the reference's subdivisions decide the children.
    let mut cap = common::Captured::default();
    let out = {
        let mut p = cap.probe();
        dec.decode(
            coords.clone(),
            &feats,
            resolution,
            Subdivide::Guide(&ref_subs),
            &mut Some(&mut p),
        )
        .expect("decode")
    };
    let n = cap.check_hooks(&io, "", |_| TOL);
    assert_eq!(out.decoded.coords, io.coords4("out.coords"), "fine coords");
    common::check(
        "out.feats",
        &out.decoded.feats.to_vec_f32().unwrap(),
        &io.f32("out.feats").data,
        TOL,
    );
    assert_eq!(
        out.decoded.subs.len(),
        ref_subs.len(),
        "number of C2S levels"
    );
    for (i, (p, r)) in out.decoded.subs.iter().zip(&ref_subs).enumerate() {
        assert_eq!(p.parents, r.parents, "subs.{i} parents");
        common::check(&format!("out.subs.{i}"), &p.logits, &r.logits, TOL);
    }
    // The head's dual vertices, as the mesh extraction places them: (c + v)·f32(1/G) − 0.5.
    let inv = 1.0f32 / resolution as f32;
    let verts: Vec<f32> = out
        .grid
        .coords
        .iter()
        .zip(&out.grid.dual_vertices)
        .flat_map(|(c, v)| [0, 1, 2].map(|k| (c[k] as f32 + v[k]) * inv + -0.5))
        .collect();
    let ref_verts = io.f32("out.mesh.vertices").data;
    let max_abs = verts
        .iter()
        .zip(&ref_verts)
        .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
    eprintln!("out.mesh.vertices: max abs err {max_abs:.3e} (tol 1e-6)");
    assert!(max_abs <= 1e-6, "vertices differ by {max_abs}");

    // The port's own predictions: same decisions, then the same coords and upsample coords.
    let own = dec
        .decode(
            coords.clone(),
            &feats,
            resolution,
            Subdivide::Predict,
            &mut None,
        )
        .expect("decode (predicted)");
    let mut flips = 0;
    for (i, (p, r)) in own.decoded.subs.iter().zip(&ref_subs).enumerate() {
        if p.logits.len() == r.logits.len() {
            flips += check_decisions(&format!("subs.{i} > 0"), &p.logits, &r.logits);
        } else {
            flips += 1;
        }
    }
    if flips == 0 {
        assert_eq!(
            own.decoded.coords,
            io.coords4("out.coords"),
            "fine coords (predicted)"
        );
        let levels = dec.inner().num_upsamplings();
        let up = dec.upsample(coords, &feats, levels).expect("upsample");
        assert_eq!(
            up,
            io.coords4(&format!("out.upsample{levels}_coords")),
            "upsample coords"
        );
    }
    eprintln!(
        "shape_decoder: {n} hooks, {} fine voxels",
        out.decoded.coords.len()
    );
}

#[test]
fn tex_decoder_guided_by_shape_subs() {
    let Some(dir) = common::set_dir("tex_decoder") else {
        return;
    };
    let dev = Device::from_env().expect("device");
    let io = common::Io::open(&dir);
    let dec = TexDecoder::load(&common::model_files(&dir), Precision::F32, &dev).expect("load tex");
    let coords = io.coords4("in.coords");
    let feats = tensor(&io, "in.feats", &dev);
    let subs = guides(&io, "in.guide_subs");
    let mut cap = common::Captured::default();
    let raw = {
        let mut p = cap.probe();
        dec.inner()
            .run(
                coords.clone(),
                &feats,
                Subdivide::Guide(&subs),
                None,
                &mut Some(&mut p),
            )
            .expect("decode")
    };
    let n = cap.check_hooks(&io, "", |_| TOL);
    assert_eq!(raw.coords, io.coords4("out.coords"), "fine coords");
    common::check(
        "out.feats_raw",
        &raw.feats.to_vec_f32().unwrap(),
        &io.f32("out.feats_raw").data,
        TOL,
    );
    let (c, attrs) = dec
        .decode(coords, &feats, &subs, &mut None)
        .expect("decode_tex_slat");
    assert_eq!(c, raw.coords);
    common::check("out.voxels", &attrs, &io.f32("out.voxels").data, TOL);
    eprintln!("tex_decoder: {n} hooks, {} voxels", c.len());
}

#[allow(dead_code)]
fn _types(_: FlexiDualGrid, _: ScVaeDecoder) {}
