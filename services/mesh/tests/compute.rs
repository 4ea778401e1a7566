//! The real mesh service on the demo models (CPU): latents from the demo pipeline → decoders →
//! `to_glb` → a GLB (and a preview MP4), and every check that guards the decoders: model id,
//! resolution, grid bounds, order, channels.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use t2_models::nn::Precision;
use t2_models::pipeline::{
    LoadOptions, PipelineType, RunOptions, SamplerOverrides, Trellis2Pipeline,
};
use t2_proto::common::v1::{Latents, Progress};
use t2_proto::mesh::v1::{ExportParams, ExtractRequest, TextureFormat};
use t2_proto::{ErrorCode, ProgressSink};
use t2_svc_mesh::shared::model_dir;
use t2_svc_mesh::{MeshExtractor, MeshService, PreviewSettings};
use t2_tensor::Device;

fn demo() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        model_dir::write_demo_set(d.path()).unwrap();
        d
    })
    .path()
}

/// Latents of the demo image from the demo pipeline ('512', 3 steps per stage).
fn latents() -> &'static Latents {
    static L: OnceLock<Latents> = OnceLock::new();
    L.get_or_init(|| {
        let pipe =
            Trellis2Pipeline::load(demo(), &LoadOptions::all(Precision::Reference, Device::Cpu))
                .unwrap();
        let image = pipe
            .preprocess_image(&t2_models::demo::demo_image(64))
            .unwrap();
        let steps = SamplerOverrides {
            steps: Some(3),
            ..Default::default()
        };
        let out = pipe
            .run(
                &image,
                &RunOptions {
                    seed: 3,
                    pipeline_type: Some(PipelineType::P512),
                    sparse_structure: steps.clone(),
                    shape_slat: steps.clone(),
                    tex_slat: steps,
                    ..Default::default()
                },
                &mut |_, _, _| Ok(()),
            )
            .unwrap();
        let mut l = t2_svc_flow_like::to_wire(&out.shape_slat, &out.tex_slat, out.resolution);
        l.model_id = model_dir::model_id(demo()).unwrap();
        l
    })
}

/// The wire form of latents (as the flow service builds it).
mod t2_svc_flow_like {
    use t2_models::pipeline::SparseLatent;
    use t2_proto::common::v1::Latents;

    pub fn to_wire(shape: &SparseLatent, tex: &SparseLatent, resolution: u32) -> Latents {
        let n = shape.len() as u64;
        let coords: Vec<i32> = shape.coords.iter().flatten().copied().collect();
        Latents {
            model_id: String::new(),
            resolution,
            coords: Some(t2_proto::tensor::dense_i32(&[n, 4], &coords)),
            shape_slat: Some(t2_proto::tensor::dense_f32(&[n, 32], &shape.feats)),
            tex_slat: Some(t2_proto::tensor::dense_f32(&[n, 32], &tex.feats)),
        }
    }
}

fn params() -> ExportParams {
    // Small texture and face target keep the CPU test fast; the flow is the production one.
    ExportParams {
        decimation_target: 20_000,
        texture_size: 512,
        remesh: true,
        remesh_band: 1.0,
        remesh_project: 0.0,
        texture_format: TextureFormat::Png as i32,
    }
}

async fn service() -> Arc<MeshService> {
    static PREVIEW: PreviewSettings = PreviewSettings {
        frames: 4,
        resolution: 64,
    };
    let svc = MeshService::start(demo(), Device::Cpu, PREVIEW.clone());
    for _ in 0..600 {
        if svc.info().await.ready {
            return svc;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("mesh service never became ready: {:?}", svc.info().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latents_become_a_glb_and_a_preview_video() {
    let svc = service().await;
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let s = seen.clone();
    let t = Instant::now();
    let out = svc
        .extract(
            ExtractRequest {
                latents: Some(latents().clone()),
                params: Some(params()),
                preview_video: true,
            },
            ProgressSink::new(move |p| s.lock().unwrap().push(p)),
        )
        .await
        .unwrap();
    eprintln!("extract with video: {:.1} s", t.elapsed().as_secs_f64());
    let names: Vec<&str> = out.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["model.glb", "preview.mp4"]);
    let glb = &out.artifacts[0].data;
    assert_eq!(&glb[..4], b"glTF");
    assert_eq!(&out.artifacts[1].data[4..8], b"ftyp");
    assert!(
        out.stats.faces > 0 && out.stats.faces <= 20_000,
        "{:?}",
        out.stats
    );
    assert_eq!(out.stats.texture_size, 512);
    let stages: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.stage.clone())
        .collect();
    assert_eq!(
        stages,
        ["decode", "decode", "glb", "glb", "video", "video"],
        "{stages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latents_the_decoders_cannot_read_are_invalid_argument() {
    let svc = service().await;
    let good = latents().clone();
    let bad = |f: &dyn Fn(&mut Latents)| {
        let mut l = good.clone();
        f(&mut l);
        ExtractRequest {
            latents: Some(l),
            params: Some(params()),
            preview_video: false,
        }
    };
    let n = good.coords.as_ref().unwrap().shape[0];
    let cases: Vec<(&str, ExtractRequest)> = vec![
        (
            "made by model",
            bad(&|l| l.model_id = "microsoft/TRELLIS.2-4B@000000000000".into()),
        ),
        ("resolution", bad(&|l| l.resolution = 777)),
        (
            "outside batch 0",
            bad(&|l| {
                let mut c = t2_proto::tensor::to_i32(l.coords.as_ref().unwrap(), 2).unwrap();
                c[1] = 999;
                l.coords = Some(t2_proto::tensor::dense_i32(&[n, 4], &c));
            }),
        ),
        (
            "sorted and unique",
            bad(&|l| {
                let mut c = t2_proto::tensor::to_i32(l.coords.as_ref().unwrap(), 2).unwrap();
                let (a, b) = c.split_at_mut(4);
                a.swap_with_slice(&mut b[..4]);
                l.coords = Some(t2_proto::tensor::dense_i32(&[n, 4], &c));
            }),
        ),
        (
            "the decoder needs",
            bad(&|l| {
                l.tex_slat = Some(t2_proto::tensor::dense_f32(
                    &[n, 8],
                    &vec![0.0; n as usize * 8],
                ))
            }),
        ),
        (
            "NaN",
            bad(&|l| {
                let mut v = t2_proto::tensor::to_f32(l.shape_slat.as_ref().unwrap(), 2).unwrap();
                v[3] = f32::NAN;
                l.shape_slat = Some(t2_proto::tensor::dense_f32(&[n, 32], &v));
            }),
        ),
    ];
    for (needle, req) in cases {
        let err = svc.extract(req, ProgressSink::none()).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError, "{needle}: {err:?}");
        assert!(err.message().contains(needle), "{needle}: {err:?}");
    }
    let mut p = params();
    p.texture_size = 300;
    let err = svc
        .extract(
            ExtractRequest {
                latents: Some(good),
                params: Some(p),
                preview_video: false,
            },
            ProgressSink::none(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationError, "{err:?}");
}

/// A staged extraction (shape first, texture latents later) makes the same GLB as the plain
/// one, decodes the shape before the texture latents come, and stops with a clear error when
/// they never do or do not fit the shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_extraction_matches_the_plain_one() {
    let svc = service().await;
    let full = latents().clone();
    let request = |l: Latents| ExtractRequest {
        latents: Some(l),
        params: Some(params()),
        preview_video: false,
    };
    let plain = svc
        .extract(request(full.clone()), ProgressSink::none())
        .await
        .unwrap();
    let mut shape = full.clone();
    let tex = shape.tex_slat.take().unwrap();

    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let s = seen.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let staged = {
        let (svc, req) = (svc.clone(), request(shape.clone()));
        tokio::spawn(async move {
            svc.extract_staged(
                req,
                rx,
                ProgressSink::new(move |p| s.lock().unwrap().push(p)),
            )
            .await
        })
    };
    // The shape is being decoded before the texture latents exist.
    let t = Instant::now();
    while seen.lock().unwrap().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.lock().unwrap()[0].stage, "decode");
    tx.send(Ok(tex.clone())).unwrap();
    let staged = staged.await.unwrap().unwrap();
    assert_eq!(staged.stats, plain.stats);
    assert!(
        staged.artifacts == plain.artifacts,
        "the staged GLB differs from the plain one"
    );

    // Texture latents that never come: the extraction stops, cancelled.
    let (tx, rx) = tokio::sync::oneshot::channel();
    drop(tx);
    let e = svc
        .extract_staged(request(shape.clone()), rx, ProgressSink::none())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Cancelled, "{e}");
    assert!(e.message().contains("never came"), "{e}");

    // Texture latents of the wrong shape: invalid.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let n = tex.shape[0];
    tx.send(Ok(t2_proto::tensor::dense_f32(
        &[n - 1, 32],
        &vec![0.0; (n as usize - 1) * 32],
    )))
    .unwrap();
    let e = svc
        .extract_staged(request(shape.clone()), rx, ProgressSink::none())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ValidationError, "{e}");
    assert!(e.message().contains("tex_slat"), "{e}");

    // A first message that already carries them is refused before any work.
    let (_tx, rx) = tokio::sync::oneshot::channel();
    let e = svc
        .extract_staged(request(full), rx, ProgressSink::none())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ValidationError, "{e}");
}
