//! The client commands: `generate` (through a gateway's jobs, or `--local` in this process),
//! `extract`, `jobs`, `health`. Long runs show a progress bar (stage, step/total).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};
use t2_cli::client::Client;
use t2_gateway::{Backends, Orchestrator, ServiceLimit, StageDeadlines};

use crate::run_serve::{in_process_options, model_dir};
use crate::{ExtractArgs, GenerateArgs, HealthArgs, JobsAction, JobsArgs};

fn read_b64(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<24} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// The request body of a generation (`/v1/jobs` or the in-process plan).
fn generate_body(a: &GenerateArgs) -> anyhow::Result<Value> {
    let mut body = json!({
        "image": read_b64(&a.image)?,
        "seed": a.seed,
        "pipeline_type": a.pipeline_type,
        "preview_video": a.video.is_some(),
        "export": { "texture_size": a.texture_size, "decimation_target": a.decimation_target },
    });
    if let Some(n) = a.steps {
        for stage in ["ss", "shape_slat", "tex_slat"] {
            body[format!("{stage}_sampling_steps")] = json!(n);
        }
    }
    Ok(body)
}

pub(crate) async fn generate_local(a: GenerateArgs) -> anyhow::Result<i32> {
    let _telemetry = t2_telemetry::init_from_env("trellis2")?;
    let models = model_dir(&a.compute, &a.data)?;
    let opts = in_process_options(&a.compute, &models)?;
    let plan = serde_json::from_value::<t2_gateway::types::GenerateBody>(generate_body(&a)?)?
        .into_plan(true)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    eprintln!(
        "loading models from {} on {}",
        models.display(),
        opts.device
    );
    let backends = tokio::task::spawn_blocking(move || Backends::load_in_process(&opts))
        .await?
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let orchestrator = Orchestrator::new(
        backends,
        StageDeadlines::default(),
        ServiceLimit::default(),
        Arc::new(t2_gateway::metrics::Metrics::new()),
    );
    let bar = progress_bar();
    let b = bar.clone();
    let sink = t2_proto::ProgressSink::new(move |p| {
        b.set_message(p.stage);
        b.set_length(u64::from(p.total.max(1)));
        b.set_position(u64::from(p.step));
    });
    let export = plan.export;
    let preview = plan.preview_video;
    let fail =
        |e: t2_proto::ServiceError| anyhow::anyhow!("{} ({})", e.message(), e.code().as_str());
    let generated = orchestrator
        .generate(
            t2_gateway::pipeline::GeneratePlan {
                preview_video: false,
                ..plan
            },
            sink.clone(),
        )
        .await
        .map_err(fail)?;
    if let Some(path) = &a.state {
        // Signed with the data directory's key: `trellis2 serve --data` on it accepts it.
        std::fs::create_dir_all(&a.data)?;
        let key = t2_state::StateKey::load_or_create(&a.data.join(t2_gateway::STATE_KEY_FILE))?;
        write(
            path,
            &t2_gateway::pipeline::seal(&generated.latents, &key).map_err(fail)?,
        )?;
    }
    let out = orchestrator
        .extract(generated.latents, export, preview, sink)
        .await
        .map_err(fail)?;
    bar.finish_and_clear();
    for art in out.artifacts {
        match art.name.as_str() {
            t2_gateway::pipeline::GLB_ARTIFACT => write(&a.output, &art.data)?,
            t2_gateway::pipeline::VIDEO_ARTIFACT => {
                if let Some(v) = &a.video {
                    write(v, &art.data)?
                }
            }
            _ => {}
        }
    }
    eprintln!(
        "wrote {} ({} faces, {} vertices)",
        a.output.display(),
        out.stats.faces,
        out.stats.vertices
    );
    Ok(0)
}

async fn follow(client: &Client, id: &str) -> anyhow::Result<Value> {
    let bar = progress_bar();
    loop {
        let v = client
            .json(Method::GET, &format!("/v1/jobs/{id}"), None)
            .await?;
        let status = v["status"].as_str().unwrap_or("").to_string();
        if let Some(p) = v["progress"].as_object() {
            bar.set_length(p["total"].as_u64().unwrap_or(1).max(1));
            bar.set_position(p["step"].as_u64().unwrap_or(0));
            bar.set_message(p["stage"].as_str().unwrap_or("").to_string());
        } else {
            bar.set_message(status.clone());
        }
        bar.tick();
        if ["succeeded", "failed", "cancelled"].contains(&status.as_str()) {
            bar.finish_and_clear();
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn job_outcome(v: &Value) -> anyhow::Result<()> {
    match v["status"].as_str() {
        Some("succeeded") => Ok(()),
        Some(s) => bail!(
            "job {} {s}: {} ({})",
            v["job_id"].as_str().unwrap_or("?"),
            v["error"]["message"].as_str().unwrap_or("no reason given"),
            v["error"]["code"].as_str().unwrap_or("-"),
        ),
        None => bail!("unexpected job record: {v}"),
    }
}

pub(crate) async fn generate_remote(a: GenerateArgs) -> anyhow::Result<i32> {
    let client = a.client.client()?;
    let body = generate_body(&a)?;
    let created = client.json(Method::POST, "/v1/jobs", Some(&body)).await?;
    let id = created["job_id"]
        .as_str()
        .context("no job_id in the answer")?
        .to_string();
    eprintln!("job {id} queued");
    let done = follow(&client, &id).await?;
    job_outcome(&done)?;
    let art = |name: &str| format!("/v1/jobs/{id}/artifacts/{name}");
    write(&a.output, &client.bytes(&art("model.glb")).await?)?;
    if let Some(v) = &a.video {
        write(v, &client.bytes(&art("preview.mp4")).await?)?;
    }
    if let Some(s) = &a.state {
        write(s, &client.bytes(&art("state.bin")).await?)?;
    }
    eprintln!("wrote {}", a.output.display());
    Ok(0)
}

pub(crate) async fn extract(a: ExtractArgs) -> anyhow::Result<i32> {
    let client = a.client.client()?;
    let body = json!({
        "state": read_b64(&a.state)?,
        "texture_size": a.texture_size,
        "decimation_target": a.decimation_target,
    });
    let v = client
        .json(Method::POST, "/extract_glb", Some(&body))
        .await?;
    let glb = base64::engine::general_purpose::STANDARD
        .decode(v["glb"].as_str().context("no glb in the answer")?)
        .context("glb is not base64")?;
    write(&a.output, &glb)?;
    Ok(0)
}

pub(crate) async fn jobs(a: JobsArgs) -> anyhow::Result<i32> {
    let client = a.client.client()?;
    match a.action {
        JobsAction::Status { id } => {
            let v = client
                .json(Method::GET, &format!("/v1/jobs/{id}"), None)
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        JobsAction::Wait { id } => {
            let v = follow(&client, &id).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            job_outcome(&v)?;
        }
        JobsAction::Cancel { id } => {
            let v = client
                .json(Method::DELETE, &format!("/v1/jobs/{id}"), None)
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        JobsAction::Download { id, name, output } => {
            let bytes = client
                .bytes(&format!("/v1/jobs/{id}/artifacts/{name}"))
                .await?;
            write(&output, &bytes)?;
        }
    }
    Ok(0)
}

/// Exit status: 0 live and ready, 2 live but not ready, 1 unreachable.
pub(crate) async fn health(a: HealthArgs) -> anyhow::Result<i32> {
    let client = a.client.client()?;
    let live = client.json(Method::GET, "/health", None).await?;
    println!("health: {live}");
    let ready = client.json(Method::GET, "/ready", None).await?;
    println!("ready: {}", serde_json::to_string_pretty(&ready)?);
    Ok(if ready["ready"] == true { 0 } else { 2 })
}
