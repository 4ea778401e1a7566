//! The JSON results of one run (ours, the reference script's, the cold-start runs) and the
//! table that puts them side by side.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decoders::DecoderResult;
use crate::dit::DitResult;
use crate::stages::PipelineResult;

#[derive(Clone, Debug, Default, Serialize)]
pub struct OursReport {
    pub gpu: String,
    pub load_s: f64,
    pub warm_up_s: f64,
    pub resident_gib: f64,
    /// Low-VRAM mode (one network on the GPU at a time).
    pub low_vram: bool,
    /// The allocator cap the run was held to, if any.
    pub memory_limit_gib: Option<f64>,
    /// Device memory held outside the allocator after loading (context, modules, workspace).
    pub outside_pool_gib: f64,
    pub dit: Vec<DitResult>,
    pub decoders: Vec<DecoderResult>,
    pub pipelines: Vec<PipelineResult>,
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ColdStart {
    /// Process start → all models on the GPU and every kernel loaded, kernel cache empty.
    pub cold_cache_s: f64,
    /// The same with the cache the first run filled.
    pub warm_cache_s: f64,
}

fn read(path: Option<&Path>) -> Result<Value> {
    match path {
        None => Ok(Value::Null),
        Some(p) if !p.exists() => Ok(Value::Null),
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| p.display().to_string())?;
            Ok(serde_json::from_str(&text).with_context(|| p.display().to_string())?)
        }
    }
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

fn find<'a>(list: &'a Value, key: &str, case: &str) -> Option<&'a Value> {
    list.get(key)?
        .as_array()?
        .iter()
        .find(|e| e.get("case").and_then(Value::as_str) == Some(case))
}

fn f(v: Option<f64>, prec: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.prec$}"))
}

fn e(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.2e}"))
}

fn ratio(r: Option<f64>, o: Option<f64>) -> String {
    match (r, o) {
        (Some(r), Some(o)) if o > 0.0 => format!("{:.2}x", r / o),
        _ => "–".into(),
    }
}

/// The combined table (markdown), printed last by the device script.
pub fn table(ours: &Path, reference: Option<&Path>, cold: Option<&Path>) -> Result<String> {
    let o = read(Some(ours))?;
    let r = read(reference)?;
    let c = read(cold)?;
    let mut s = String::new();
    let gpu = o.get("gpu").and_then(Value::as_str).unwrap_or("?");
    let torch = r.get("torch").and_then(Value::as_str).unwrap_or("not run");
    s += &format!("# TRELLIS.2 full size on {gpu} (reference: torch {torch}, SDPA)\n\n");
    s += "## DiT forward (bf16, full size), ms; ratio = reference / ours\n\n";
    s += "| case | tokens | ref b1 | ours b1 | ratio | ours b1 cached K/V | ratio | ref CFG pair (2 fwd) | ours pair (B=2, cached) | ratio | err pos | err neg | err pair |\n";
    s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for d in o.get("dit").and_then(Value::as_array).into_iter().flatten() {
        let case = d.get("case").and_then(Value::as_str).unwrap_or("?");
        let rd = find(&r, "dit", case);
        let rb1 = rd.and_then(|x| num(x, "ms_b1"));
        let rpair = rd.and_then(|x| num(x, "ms_pair_seq"));
        let (ob1, oc, op) = (num(d, "ms_b1"), num(d, "ms_b1_cached"), num(d, "ms_pair"));
        let err_pair = rd.and_then(|x| Some(num(x, "err_pair_pos")?.max(num(x, "err_pair_neg")?)));
        s += &format!(
            "| {case} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            d.get("tokens").and_then(Value::as_u64).unwrap_or(0),
            f(rb1, 2),
            f(ob1, 2),
            ratio(rb1, ob1),
            f(oc, 2),
            ratio(rb1, oc),
            f(rpair, 2),
            f(op, 2),
            ratio(rpair, op),
            e(rd.and_then(|x| num(x, "err_pos"))),
            e(rd.and_then(|x| num(x, "err_neg"))),
            e(err_pair),
        );
    }
    s += "\n## Decoders (f16 bodies), ms\n\n";
    s += "| case | voxels in → out | ref | ours | ratio | max rel err | decision IoU (SS occupancy; subdivisions per level) | teacher-forced features (per SS stage; per level) |\n";
    s += "|---|---|---:|---:|---:|---:|---|---|\n";
    for d in o
        .get("decoders")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let case = d.get("case").and_then(Value::as_str).unwrap_or("?");
        let rd = find(&r, "decoders", case);
        let (rm, om) = (rd.and_then(|x| num(x, "ms")), num(d, "ms"));
        // A list per level (SC-VAE subdivisions, SS stages) or one number (SS occupancy).
        let levels = |keys: [&str; 2]| {
            let v = keys.iter().find_map(|k| rd.and_then(|x| x.get(*k)));
            match v {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_f64)
                    .map(|v| format!("{:.5}", v))
                    .collect::<Vec<_>>()
                    .join(" / "),
                Some(Value::Number(n)) => format!("{:.5}", n.as_f64().unwrap_or(f64::NAN)),
                _ => "–".into(),
            }
        };
        let (agree, forced) = (
            levels(["subdiv_agree", "occupancy_iou"]),
            levels([
                "subdiv_agree_teacher_forced",
                "occupancy_iou_teacher_forced",
            ]),
        );
        s += &format!(
            "| {case} | {} → {} | {} | {} | {} | {} | {agree} | {forced} |\n",
            d.get("input_voxels").and_then(Value::as_u64).unwrap_or(0),
            d.get("output_voxels").and_then(Value::as_u64).unwrap_or(0),
            f(rm, 1),
            f(om, 1),
            ratio(rm, om),
            e(rd.and_then(|x| num(x, "err"))),
        );
    }
    s += "\n## Pipelines, benchmark mode (structure from the analytic surface), seconds\n\n";
    let pipes: Vec<&Value> = o
        .get("pipelines")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if !pipes.is_empty() {
        // Every pipeline's stages in run order: a stage one pipeline lacks (the cascade's)
        // goes right after the stage that precedes it in the pipeline that has it.
        let mut names: Vec<String> = Vec::new();
        for p in &pipes {
            let mut at = 0;
            for st in p
                .get("stages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(n) = st.get(0).and_then(Value::as_str) else {
                    continue;
                };
                at = match names.iter().position(|x| x == n) {
                    Some(i) => i + 1,
                    None => {
                        names.insert(at, n.to_string());
                        at + 1
                    }
                };
            }
        }
        s += "| stage |";
        for p in &pipes {
            s += &format!(
                " {} ({}) |",
                p.get("pipeline").and_then(Value::as_str).unwrap_or("?"),
                p.get("shape").and_then(Value::as_str).unwrap_or("?")
            );
        }
        s += "\n|---|";
        s += &"---:|".repeat(pipes.len());
        s += "\n";
        let row = |label: &str, get: &dyn Fn(&Value) -> String| {
            let mut line = format!("| {label} |");
            for p in &pipes {
                line += &format!(" {} |", get(p));
            }
            line + "\n"
        };
        s += &row("tokens SS → SLat", &|p| {
            format!(
                "{} → {}",
                p.get("ss_tokens").and_then(Value::as_u64).unwrap_or(0),
                p.get("slat_tokens").and_then(Value::as_u64).unwrap_or(0)
            )
        });
        s += &row("resolution / fine voxels", &|p| {
            format!(
                "{} / {}",
                p.get("resolution").and_then(Value::as_u64).unwrap_or(0),
                p.get("fine_voxels").and_then(Value::as_u64).unwrap_or(0)
            )
        });
        for n in &names {
            s += &row(n, &|p| {
                let v = p
                    .get("stages")
                    .and_then(Value::as_array)
                    .and_then(|a| {
                        a.iter()
                            .find(|st| st.get(0).and_then(Value::as_str) == Some(n.as_str()))
                    })
                    .and_then(|st| st.get(1))
                    .and_then(Value::as_f64);
                f(v, 3)
            });
        }
        s += &row("**total (image → mesh + voxels)**", &|p| {
            f(num(p, "total_s"), 2)
        });
        if pipes
            .iter()
            .any(|p| p.get("glb_total_s").is_some_and(|v| !v.is_null()))
        {
            s += &row("**total (image → GLB, 1 M faces, 4096²)**", &|p| {
                f(num(p, "glb_total_s"), 2)
            });
        }
        let mode = if o.get("low_vram").and_then(Value::as_bool) == Some(true) {
            "low-VRAM mode, one network at a time"
        } else {
            "all models resident"
        };
        s += &row(
            &format!("peak GPU memory, live tensors (GiB, {mode})"),
            &|p| f(num(p, "peak_gib"), 2),
        );
        s += &row("peak GPU memory, allocator reserved (GiB)", &|p| {
            f(num(p, "peak_reserved_gib"), 2)
        });
    }
    s += &format!(
        "\nModels resident: {} GiB; load (page-cached files → GPU): {} s; kernel warm-up: {} s; \
         device memory outside the allocator: {} GiB; allocator cap: {}.\n",
        f(num(&o, "resident_gib"), 1),
        f(num(&o, "load_s"), 1),
        f(num(&o, "warm_up_s"), 1),
        f(num(&o, "outside_pool_gib"), 2),
        o.get("memory_limit_gib")
            .and_then(Value::as_f64)
            .map_or("none".to_string(), |g| format!("{g} GiB"))
    );
    if !c.is_null() {
        s += &format!(
            "Cold start (process start → all models on the GPU + kernels loaded): kernel cache cold {} s, warm {} s.\n",
            f(num(&c, "cold_cache_s"), 1),
            f(num(&c, "warm_cache_s"), 1)
        );
    }
    if let Some(l) = r.get("load_s") {
        s += &format!("Reference model loads (s): {l}\n");
    }
    for err in o
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        s += &format!("ERROR (ours): {}\n", err.as_str().unwrap_or("?"));
    }
    for err in r
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        s += &format!("ERROR (reference): {}\n", err.as_str().unwrap_or("?"));
    }
    Ok(s)
}
