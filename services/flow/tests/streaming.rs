//! The flow adapter streams progress then latents, validates requests, and stops computing when
//! the client goes away. The samplers here are test doubles that exercise the wiring only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use t2_proto::common::v1::{Latents, Progress, ServiceInfo};
use t2_proto::flow::v1::{GenerateRequest, PipelineType, SamplerParams};
use t2_proto::{ProgressSink, ServiceError};
use t2_svc_flow::{FlowSampler, RemoteFlowSampler, serve};

struct Scripted;

#[async_trait::async_trait]
impl FlowSampler for Scripted {
    async fn info(&self) -> ServiceInfo {
        ServiceInfo::default()
    }
    async fn generate(
        &self,
        req: GenerateRequest,
        p: ProgressSink,
    ) -> Result<Latents, ServiceError> {
        for step in 1..=3 {
            p.report("sparse_structure", step, 3);
        }
        Ok(Latents {
            model_id: format!("seed-{}", req.seed),
            resolution: 1024,
            ..Default::default()
        })
    }
}

/// Never finishes; records whether its future was dropped (i.e. cancelled).
struct Hangs(Arc<AtomicBool>);

struct SetOnDrop(Arc<AtomicBool>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl FlowSampler for Hangs {
    async fn info(&self) -> ServiceInfo {
        ServiceInfo::default()
    }
    async fn generate(&self, _: GenerateRequest, p: ProgressSink) -> Result<Latents, ServiceError> {
        let _guard = SetOnDrop(self.0.clone());
        p.report("sparse_structure", 0, 12);
        std::future::pending().await
    }
}

fn valid_request() -> GenerateRequest {
    let cond = t2_proto::tensor::dense_f32(&[1, 2, 4], &[0.0; 8]);
    GenerateRequest {
        cond_512: Some(cond.clone()),
        cond_1024: Some(cond),
        seed: 7,
        pipeline_type: PipelineType::PipelineType1024Cascade as i32,
        max_num_tokens: 49_152,
        ..Default::default()
    }
}

async fn start(imp: Arc<dyn FlowSampler>) -> (RemoteFlowSampler, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(imp, listener, async {
        let _ = stopped.await;
    }));
    let channel = t2_proto::client::lazy_channel(&url).unwrap();
    (RemoteFlowSampler::new(channel), stop)
}

#[tokio::test]
async fn progress_then_latents_cross_the_wire() {
    let (remote, _stop) = start(Arc::new(Scripted)).await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::<Progress>::new()));
    let s = seen.clone();
    let latents = remote
        .generate(
            valid_request(),
            ProgressSink::new(move |p| s.lock().unwrap().push(p)),
        )
        .await
        .unwrap();
    assert_eq!(latents.model_id, "seed-7");
    let steps: Vec<u32> = seen.lock().unwrap().iter().map(|p| p.step).collect();
    assert_eq!(steps, vec![1, 2, 3]);
}

#[tokio::test]
async fn invalid_requests_list_every_problem() {
    let (remote, _stop) = start(Arc::new(Scripted)).await;
    let mut req = valid_request();
    req.pipeline_type = 0;
    req.cond_512 = None;
    req.max_num_tokens = 10;
    req.shape_slat = Some(SamplerParams {
        steps: Some(0),
        guidance_rescale: Some(1.5),
        guidance_interval_start: Some(0.9),
        guidance_interval_end: Some(0.1),
        ..Default::default()
    });
    let err = remote
        .generate(req, ProgressSink::none())
        .await
        .unwrap_err();
    let ServiceError::InvalidArgument(msg) = err else {
        panic!("{err:?}")
    };
    for needle in [
        "pipeline_type",
        "cond_512 is required",
        "max_num_tokens",
        "shape_slat_sampling_steps",
        "shape_slat_guidance_rescale",
        "shape_slat_guidance_interval start",
    ] {
        assert!(msg.contains(needle), "{needle} not in {msg}");
    }
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_computation() {
    let dropped = Arc::new(AtomicBool::new(false));
    let (remote, _stop) = start(Arc::new(Hangs(dropped.clone()))).await;
    let call = remote.generate(valid_request(), ProgressSink::none());
    // The call never completes; give up on it after the first progress has been sent.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), call)
            .await
            .is_err()
    );
    for _ in 0..50 {
        if dropped.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the server kept computing after the client went away");
}
