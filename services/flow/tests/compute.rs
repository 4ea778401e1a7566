//! The real flow service on the demo models (CPU): progress per sampler step, deterministic
//! latents per seed, readiness only once loaded, typed errors for bad conditioning, and
//! cancellation that reaches the sampler loop.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use t2_models::pipeline::Trellis2Pipeline;
use t2_proto::common::v1::{DenseTensor, Progress};
use t2_proto::flow::v1::{GenerateRequest, PipelineType, SamplerParams};
use t2_proto::{ErrorCode, ProgressSink, ServiceError};
use t2_svc_flow::shared::model_dir;
use t2_svc_flow::{FlowSampler, FlowService};
use t2_tensor::Device;

/// One demo model set per test binary.
fn demo() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let t = Instant::now();
        model_dir::write_demo_set(d.path()).unwrap();
        eprintln!("demo set written in {:.1} s", t.elapsed().as_secs_f64());
        d
    })
    .path()
}

/// DINOv3 tokens of the demo image at 512 and 1024 px (what the dinov3 service returns).
fn conds() -> &'static (DenseTensor, DenseTensor) {
    static C: OnceLock<(DenseTensor, DenseTensor)> = OnceLock::new();
    C.get_or_init(|| {
        let opts = t2_models::pipeline::LoadOptions {
            models: Some(vec![]),
            ..t2_models::pipeline::LoadOptions::all(
                t2_models::nn::Precision::Reference,
                Device::Cpu,
            )
        };
        let pipe = Trellis2Pipeline::load(demo(), &opts).unwrap();
        let img = pipe
            .preprocess_image(&t2_models::demo::demo_image(64))
            .unwrap();
        let t = |r| {
            let c = pipe.get_cond(&img, r).unwrap();
            let shape: Vec<u64> = c.shape().iter().map(|&d| d as u64).collect();
            t2_proto::tensor::dense_f32(&shape, &c.to_vec_f32().unwrap())
        };
        (t(512), t(1024))
    })
}

fn steps(n: u32) -> Option<SamplerParams> {
    Some(SamplerParams {
        steps: Some(n),
        ..Default::default()
    })
}

fn request(seed: u64, pipeline: PipelineType, n: u32) -> GenerateRequest {
    let (c512, c1024) = conds().clone();
    GenerateRequest {
        cond_512: Some(c512),
        cond_1024: Some(c1024),
        seed,
        pipeline_type: pipeline as i32,
        sparse_structure: steps(n),
        shape_slat: steps(n),
        tex_slat: steps(n),
        max_num_tokens: 49_152,
        stream_shape_latents: false,
    }
}

async fn ready_service() -> Arc<FlowService> {
    let svc = FlowService::start(demo(), Device::Cpu);
    for _ in 0..600 {
        if svc.info().await.ready {
            return svc;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("flow service never became ready: {:?}", svc.info().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_every_step_and_the_same_seed_gives_the_same_latents() {
    let svc = ready_service().await;
    let info = svc.info().await;
    assert!(info.load_time_seconds > 0.0, "{info:?}");
    assert_eq!(info.gpu, "cpu");
    assert!(info.models[0].starts_with("trellis2-demo@"), "{info:?}");

    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let s = seen.clone();
    let sink = ProgressSink::new(move |p| s.lock().unwrap().push(p));
    let t = Instant::now();
    let a = svc
        .generate(request(5, PipelineType::PipelineType1024Cascade, 3), sink)
        .await
        .unwrap();
    eprintln!("1024_cascade, 3 steps: {:.1} s", t.elapsed().as_secs_f64());
    let stages: Vec<(String, u32, u32)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|p| (p.stage.clone(), p.step, p.total))
        .collect();
    for stage in [
        "sparse_structure",
        "shape_slat_lr",
        "shape_slat",
        "tex_slat",
    ] {
        let steps: Vec<u32> = stages
            .iter()
            .filter(|s| s.0 == stage)
            .map(|s| s.1)
            .collect();
        assert_eq!(steps, [0, 1, 2, 3], "{stage}: {stages:?}");
    }
    assert_eq!(a.resolution, 1024);
    let n = a.coords.as_ref().unwrap().shape[0];
    assert!(n > 0);
    assert_eq!(a.shape_slat.as_ref().unwrap().shape, [n, 32]);
    assert_eq!(a.tex_slat.as_ref().unwrap().shape, [n, 32]);

    let b = svc
        .generate(
            request(5, PipelineType::PipelineType1024Cascade, 3),
            ProgressSink::none(),
        )
        .await
        .unwrap();
    assert_eq!(a, b, "same seed, same latents, bit for bit");
    let c = svc
        .generate(
            request(6, PipelineType::PipelineType1024Cascade, 3),
            ProgressSink::none(),
        )
        .await
        .unwrap();
    assert_ne!(a.shape_slat, c.shape_slat, "another seed, other latents");

    let p512 = svc
        .generate(
            request(5, PipelineType::PipelineType512, 2),
            ProgressSink::none(),
        )
        .await
        .unwrap();
    assert_eq!(p512.resolution, 512);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_conditioning_is_invalid_argument() {
    let svc = ready_service().await;
    let mut req = request(1, PipelineType::PipelineType512, 1);
    req.cond_512 = Some(t2_proto::tensor::dense_f32(&[1, 4, 16], &[0.0; 64]));
    let err = svc.generate(req, ProgressSink::none()).await.unwrap_err();
    assert!(
        matches!(&err, ServiceError::InvalidArgument(m) if m.contains("cond_channels")),
        "{err:?}"
    );
    let mut req = request(1, PipelineType::PipelineType1024, 1);
    req.cond_1024 = None;
    let err = svc.generate(req, ProgressSink::none()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationError, "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_call_stops_the_sampler_within_a_step() {
    let svc = ready_service().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = ProgressSink::new(move |p: Progress| {
        let _ = tx.send(p);
    });
    let s = svc.clone();
    let call = tokio::spawn(async move {
        s.generate(request(2, PipelineType::PipelineType1024Cascade, 100), sink)
            .await
    });
    // Wait until sampling has started, then drop the call.
    while let Some(p) = rx.recv().await {
        if p.stage == "sparse_structure" && p.step >= 1 {
            break;
        }
    }
    assert_eq!(svc.running(), 1);
    call.abort();
    let t = Instant::now();
    while svc.running() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the sampler kept running after the call was dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("stopped {:.2} s after the drop", t.elapsed().as_secs_f64());
    // The progress stopped well before the 100 steps of the first stage.
    let mut last = 0;
    while let Ok(p) = rx.try_recv() {
        last = p.step;
    }
    assert!(last < 100, "ran to the end: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_serving_until_loaded_and_a_broken_directory_says_why() {
    let svc = FlowService::start(demo(), Device::Cpu);
    let first = svc.info().await;
    // Loading takes far longer than this call: the service must not claim readiness early.
    assert!(!first.ready, "{first:?}");
    assert!(first.detail.contains("loading"), "{first:?}");
    let err = svc
        .generate(
            request(1, PipelineType::PipelineType512, 1),
            ProgressSink::none(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err:?}");

    let broken = tempfile::tempdir().unwrap();
    model_dir::write_demo_set(broken.path()).unwrap();
    let weights = broken
        .path()
        .join("ckpts/slat_flow_img2shape_dit_1_3B_512_bf16.safetensors");
    std::fs::write(&weights, b"not safetensors").unwrap();
    let svc = FlowService::start(broken.path(), Device::Cpu);
    let t = Instant::now();
    loop {
        let info = svc.info().await;
        if info.detail.contains("failed") {
            assert!(!info.ready);
            assert!(
                info.detail
                    .contains("slat_flow_img2shape_dit_1_3B_512_bf16"),
                "the error names the file: {}",
                info.detail
            );
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "{info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asked to, the service streams the shape latents once, after the shape stage's progress and
/// before any of the texture stage's, and they are the final latents without `tex_slat`; not
/// asked, it sends none. Over gRPC, with the real sampler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shape_latents_come_ahead_of_the_texture_flow_when_asked() {
    use t2_proto::flow::v1::flow_client::FlowClient;
    use t2_proto::flow::v1::generate_response::Event;
    let svc = ready_service().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(t2_svc_flow::serve(svc, listener, async {
        let _ = stopped.await;
    }));
    let mut client = FlowClient::connect(url)
        .await
        .unwrap()
        .max_decoding_message_size(t2_proto::limits::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(t2_proto::limits::MAX_MESSAGE_BYTES);
    for asked in [true, false] {
        let req = GenerateRequest {
            stream_shape_latents: asked,
            ..request(5, PipelineType::PipelineType512, 2)
        };
        let mut stream = client.generate(req).await.unwrap().into_inner();
        // Each event as a short label, in order.
        let (mut events, mut shape, mut last) = (Vec::new(), None, None);
        while let Some(m) = stream.message().await.unwrap() {
            match m.event.unwrap() {
                Event::Progress(p) => events.push(p.stage),
                Event::ShapeLatents(l) => {
                    events.push("SHAPE".into());
                    shape = Some(l);
                }
                Event::Latents(l) => last = Some(l),
            }
        }
        let mut last = last.expect("final latents");
        if !asked {
            assert!(shape.is_none(), "{events:?}");
            continue;
        }
        let at = events.iter().position(|e| e == "SHAPE").unwrap();
        assert_eq!(events.iter().filter(|e| *e == "SHAPE").count(), 1);
        assert!(events[..at].iter().any(|e| e == "shape_slat"), "{events:?}");
        assert!(events[..at].iter().all(|e| e != "tex_slat"), "{events:?}");
        assert!(events[at..].iter().any(|e| e == "tex_slat"), "{events:?}");
        assert!(last.tex_slat.take().is_some());
        assert_eq!(shape.unwrap(), last);
    }
    let _ = stop.send(());
}
