//! Several replicas of one service behind one name (`--flow-url a,b`): the gateway's own
//! least-loaded routing rather than tonic's channel balancing, because the calls that matter
//! are streams (a flow generation is one call of seconds to minutes) and a channel balancer
//! counts a call as pending only until its response headers arrive, so it would keep stacking
//! long generations onto one GPU while the other idles.
//!
//! - Each call goes to the replica with the fewest calls in flight (a streamed call counts
//!   until it ends); ties rotate, so an idle pool spreads calls evenly.
//! - A replica that answered `unavailable` (unreachable, or its models still loading) is
//!   skipped for [`COOL_DOWN`] while another one is up, and the call that got that answer is
//!   tried once more on another replica (the service did no work for it).
//! - `info` is ready when any replica is; its detail names the replicas that are not.
//! - Staged calls (shape latents streamed ahead, texture latents sent later) go to one replica
//!   and are not retried: what was streamed cannot be replayed.

use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use t2_proto::common::v1::{Image, Latents, ServiceInfo};
use t2_proto::flow::v1::GenerateRequest;
use t2_proto::mesh::v1::ExtractRequest;
use t2_proto::rmbg::v1::RemoveBackgroundResponse;
use t2_proto::{ProgressSink, ServiceError};
use t2_svc_dinov3::{FeatureExtractor, FeatureMap};
use t2_svc_flow::{FlowSampler, ShapeLatentsSink};
use t2_svc_mesh::{ExtractOutput, MeshExtractor, TexLatents};
use t2_svc_rmbg::BackgroundRemover;

/// How long a replica that answered `unavailable` is passed over while others are up: long
/// enough not to send every new call into a dead connect timeout, short enough that a
/// restarted replica gets work again within seconds.
pub const COOL_DOWN: Duration = Duration::from_secs(5);

struct Member<T: ?Sized> {
    /// Where it is (its URL), for `info`'s detail and logs.
    name: String,
    imp: Arc<T>,
    in_flight: AtomicUsize,
    down_until: Mutex<Option<Instant>>,
}

impl<T: ?Sized> Member<T> {
    fn is_down(&self, now: Instant) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| now < t)
    }

    fn set_down(&self, down: bool) {
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) =
            down.then(|| Instant::now() + COOL_DOWN);
    }
}

/// A call in flight on one member; the count drops when it ends (or is cancelled).
struct InFlight<'a, T: ?Sized>(&'a Member<T>);

impl<T: ?Sized> Drop for InFlight<'_, T> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The replicas of one service (see the module docs).
pub struct Pool<T: ?Sized> {
    service: &'static str,
    members: Vec<Member<T>>,
    /// Where the next tie-break starts.
    next: AtomicUsize,
}

impl<T: ?Sized + Send + Sync> Pool<T> {
    /// `members`: (name, implementation) pairs; at least one.
    pub fn new(service: &'static str, members: Vec<(String, Arc<T>)>) -> Self {
        assert!(!members.is_empty(), "a pool of {service} replicas is empty");
        Self {
            service,
            members: members
                .into_iter()
                .map(|(name, imp)| Member {
                    name,
                    imp,
                    in_flight: AtomicUsize::new(0),
                    down_until: Mutex::new(None),
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member for the next call, other than `except`: up before down, then fewest in
    /// flight, ties in rotation. Counted in flight before it is returned, so concurrent picks
    /// see each other.
    fn pick(&self, except: Option<usize>) -> Option<(usize, InFlight<'_, T>)> {
        let now = Instant::now();
        let n = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let best = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| Some(i) != except)
            .min_by_key(|&i| {
                let m = &self.members[i];
                (m.is_down(now), m.in_flight.load(Ordering::SeqCst))
            })?;
        let m = &self.members[best];
        m.in_flight.fetch_add(1, Ordering::SeqCst);
        Some((best, InFlight(m)))
    }

    /// Runs `call` on the least-loaded replica; on `unavailable`, once more on another.
    pub async fn call<R, F, Fut>(&self, call: F) -> Result<R, ServiceError>
    where
        F: Fn(Arc<T>) -> Fut,
        Fut: Future<Output = Result<R, ServiceError>>,
    {
        let (first, out) = self.attempt(None, &call).await;
        let Err(ServiceError::Unavailable(why)) = &out else {
            return out;
        };
        if self.members.len() < 2 {
            return out;
        }
        tracing::warn!(
            service = self.service,
            replica = %self.members[first].name,
            "replica unavailable ({why}); trying another"
        );
        self.attempt(Some(first), call).await.1
    }

    /// Runs `call` once on the least-loaded replica (for calls that cannot be repeated, such
    /// as a staged extraction whose texture latents arrive through a channel).
    pub async fn call_once<R, Fut>(
        &self,
        call: impl FnOnce(Arc<T>) -> Fut,
    ) -> Result<R, ServiceError>
    where
        Fut: Future<Output = Result<R, ServiceError>>,
    {
        self.attempt(None, call).await.1
    }

    /// `call` on the least-loaded replica other than `except`, counted in flight while it
    /// runs; a replica that answered `unavailable` is marked down. Returns which one ran it.
    async fn attempt<R, Fut>(
        &self,
        except: Option<usize>,
        call: impl FnOnce(Arc<T>) -> Fut,
    ) -> (usize, Result<R, ServiceError>)
    where
        Fut: Future<Output = Result<R, ServiceError>>,
    {
        let (i, guard) = self.pick(except).expect("a pool is never empty");
        let out = call(self.members[i].imp.clone()).await;
        drop(guard);
        self.members[i].set_down(matches!(out, Err(ServiceError::Unavailable(_))));
        (i, out)
    }

    /// Every replica's self-description, merged: ready when any is; models, devices and
    /// memory of all of them; the detail names the replicas that are not ready and why.
    pub async fn info<F, Fut>(&self, get: F) -> ServiceInfo
    where
        F: Fn(Arc<T>) -> Fut,
        Fut: Future<Output = ServiceInfo>,
    {
        let infos =
            futures::future::join_all(self.members.iter().map(|m| get(m.imp.clone()))).await;
        let mut merged = ServiceInfo {
            service: self.service.into(),
            ..Default::default()
        };
        let mut not_ready = Vec::new();
        for (m, i) in self.members.iter().zip(&infos) {
            // A replica that says it is not ready gets no calls while another one is up.
            m.set_down(!i.ready);
            merged.ready |= i.ready;
            if !i.ready {
                not_ready.push(format!("{}: {}", m.name, i.detail));
            }
            for model in &i.models {
                if !merged.models.contains(model) {
                    merged.models.push(model.clone());
                }
            }
            if !i.gpu.is_empty() && !merged.gpu.split(", ").any(|g| g == i.gpu) {
                if !merged.gpu.is_empty() {
                    merged.gpu.push_str(", ");
                }
                merged.gpu.push_str(&i.gpu);
            }
            merged.vram_allocated_bytes += i.vram_allocated_bytes;
            merged.vram_total_bytes += i.vram_total_bytes;
            merged.load_time_seconds = merged.load_time_seconds.max(i.load_time_seconds);
        }
        if !not_ready.is_empty() {
            merged.detail = format!(
                "{} of {} replicas ready; {}",
                infos.len() - not_ready.len(),
                infos.len(),
                not_ready.join("; ")
            );
        }
        merged
    }
}

#[async_trait::async_trait]
impl BackgroundRemover for Pool<dyn BackgroundRemover> {
    async fn info(&self) -> ServiceInfo {
        Pool::info(self, |s| async move { s.info().await }).await
    }
    async fn remove_background(
        &self,
        image: Image,
    ) -> Result<RemoveBackgroundResponse, ServiceError> {
        self.call(|s| {
            let image = image.clone();
            async move { s.remove_background(image).await }
        })
        .await
    }
}

#[async_trait::async_trait]
impl FeatureExtractor for Pool<dyn FeatureExtractor> {
    async fn info(&self) -> ServiceInfo {
        Pool::info(self, |s| async move { s.info().await }).await
    }
    async fn features(
        &self,
        image: Image,
        resolutions: Vec<u32>,
    ) -> Result<Vec<FeatureMap>, ServiceError> {
        self.call(|s| {
            let (image, resolutions) = (image.clone(), resolutions.clone());
            async move { s.features(image, resolutions).await }
        })
        .await
    }
}

#[async_trait::async_trait]
impl FlowSampler for Pool<dyn FlowSampler> {
    async fn info(&self) -> ServiceInfo {
        Pool::info(self, |s| async move { s.info().await }).await
    }
    async fn generate(
        &self,
        request: GenerateRequest,
        progress: ProgressSink,
    ) -> Result<Latents, ServiceError> {
        self.call(|s| {
            let (request, progress) = (request.clone(), progress.clone());
            async move { s.generate(request, progress).await }
        })
        .await
    }
    async fn generate_staged(
        &self,
        request: GenerateRequest,
        progress: ProgressSink,
        shape: ShapeLatentsSink,
    ) -> Result<Latents, ServiceError> {
        self.call_once(|s| async move { s.generate_staged(request, progress, shape).await })
            .await
    }
}

#[async_trait::async_trait]
impl MeshExtractor for Pool<dyn MeshExtractor> {
    async fn info(&self) -> ServiceInfo {
        Pool::info(self, |s| async move { s.info().await }).await
    }
    async fn extract(
        &self,
        request: ExtractRequest,
        progress: ProgressSink,
    ) -> Result<ExtractOutput, ServiceError> {
        self.call(|s| {
            let (request, progress) = (request.clone(), progress.clone());
            async move { s.extract(request, progress).await }
        })
        .await
    }
    async fn extract_staged(
        &self,
        request: ExtractRequest,
        tex: TexLatents,
        progress: ProgressSink,
    ) -> Result<ExtractOutput, ServiceError> {
        self.call_once(|s| async move { s.extract_staged(request, tex, progress).await })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Notify;

    /// A flow replica that counts its calls, can hold them until released, and can answer
    /// `unavailable`.
    #[derive(Default)]
    struct Replica {
        calls: AtomicUsize,
        hold: Option<Arc<Notify>>,
        unavailable: std::sync::atomic::AtomicBool,
        ready: bool,
    }

    #[async_trait::async_trait]
    impl FlowSampler for Replica {
        async fn info(&self) -> ServiceInfo {
            ServiceInfo {
                service: "flow".into(),
                ready: self.ready,
                detail: if self.ready { "" } else { "loading" }.into(),
                models: vec!["m".into()],
                gpu: "gpu".into(),
                vram_total_bytes: 10,
                ..Default::default()
            }
        }
        async fn generate(
            &self,
            _: GenerateRequest,
            _: ProgressSink,
        ) -> Result<Latents, ServiceError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.unavailable.load(Ordering::SeqCst) {
                return Err(ServiceError::Unavailable("connection refused".into()));
            }
            if let Some(n) = &self.hold {
                n.notified().await;
            }
            Ok(Latents::default())
        }
    }

    fn pool(replicas: &[Arc<Replica>]) -> Arc<Pool<dyn FlowSampler>> {
        let members = replicas
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("r{i}"), r.clone() as Arc<dyn FlowSampler>))
            .collect();
        Arc::new(Pool::new("flow", members))
    }

    fn calls(r: &Replica) -> usize {
        r.calls.load(Ordering::SeqCst)
    }

    async fn generate(p: &Pool<dyn FlowSampler>) -> Result<Latents, ServiceError> {
        FlowSampler::generate(p, GenerateRequest::default(), ProgressSink::none()).await
    }

    #[tokio::test]
    async fn long_calls_go_to_the_idle_replica() {
        let holds: Vec<Arc<Notify>> = (0..2).map(|_| Arc::new(Notify::new())).collect();
        let r: Vec<Arc<Replica>> = holds
            .iter()
            .map(|h| {
                Arc::new(Replica {
                    hold: Some(h.clone()),
                    ready: true,
                    ..Default::default()
                })
            })
            .collect();
        let p = pool(&r);
        let spawn = || {
            let p = p.clone();
            tokio::spawn(async move { generate(&p).await })
        };
        let total = || calls(&r[0]) + calls(&r[1]);
        // Four calls that stay in flight: two on each replica.
        let mut tasks: Vec<_> = (0..4).map(|_| spawn()).collect();
        while total() < 4 {
            tokio::task::yield_now().await;
        }
        assert_eq!((calls(&r[0]), calls(&r[1])), (2, 2));
        // One call on r1 ends. The rotation would start the next pick at r0 (four picks so
        // far); the load sends it to r1.
        holds[1].notify_one();
        while p.members[1].in_flight.load(Ordering::SeqCst) > 1 {
            tokio::task::yield_now().await;
        }
        tasks.push(spawn());
        while total() < 5 {
            tokio::task::yield_now().await;
        }
        assert_eq!((calls(&r[0]), calls(&r[1])), (2, 3));
        for h in &holds {
            for _ in 0..2 {
                h.notify_one();
                tokio::task::yield_now().await;
            }
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert!(
            p.members
                .iter()
                .all(|m| m.in_flight.load(Ordering::SeqCst) == 0)
        );
    }

    #[tokio::test]
    async fn an_unavailable_replica_is_retried_elsewhere_and_skipped_while_cooling_down() {
        let r: Vec<Arc<Replica>> = (0..2)
            .map(|_| {
                Arc::new(Replica {
                    ready: true,
                    ..Default::default()
                })
            })
            .collect();
        r[0].unavailable.store(true, Ordering::SeqCst);
        let p = pool(&r);
        for _ in 0..6 {
            generate(&p).await.unwrap();
        }
        // r0 was tried once (then retried on r1) and skipped afterwards while cooling down.
        assert_eq!(calls(&r[0]), 1);
        assert_eq!(calls(&r[1]), 6);
        // Both down: the error reaches the caller after one retry, no loop.
        r[1].unavailable.store(true, Ordering::SeqCst);
        let e = generate(&p).await.unwrap_err();
        assert!(matches!(e, ServiceError::Unavailable(_)), "{e:?}");
        assert_eq!(calls(&r[0]) + calls(&r[1]), 9);
        // Other failures are the caller's answer: no retry.
        let single = pool(&[Arc::new(Replica {
            unavailable: true.into(),
            ..Default::default()
        })]);
        assert!(generate(&single).await.is_err());
    }

    #[tokio::test]
    async fn info_is_ready_when_any_replica_is_and_names_the_others() {
        let up = Arc::new(Replica {
            ready: true,
            ..Default::default()
        });
        let loading = Arc::new(Replica::default());
        let p = pool(&[up.clone(), loading.clone()]);
        let i = FlowSampler::info(&*p).await;
        assert!(i.ready);
        assert_eq!(i.detail, "1 of 2 replicas ready; r1: loading");
        assert_eq!(i.models, ["m"]);
        assert_eq!(i.gpu, "gpu");
        assert_eq!(i.vram_total_bytes, 20);
        // The loading replica is passed over while the ready one takes calls.
        for _ in 0..3 {
            generate(&p).await.unwrap();
        }
        assert_eq!((calls(&up), calls(&loading)), (3, 0));
        let none = pool(&[loading]);
        assert!(!FlowSampler::info(&*none).await.ready);
    }
}
