//! `t2-bench`: TRELLIS.2 at full size (issue 8).
//!
//! - `random --out DIR`: the real model set's files with random weights (~16 GB).
//! - `run --models DIR --dump DIR --out ours.json`: DiT forwards at 4,096 / 9,600 / 21,600 /
//!   49,152 tokens (batch 1 and the CFG pair), the decoders at 1024³, and per-stage seconds of
//!   whole pipelines in benchmark mode (structure from an analytic surface), with peak memory;
//!   inputs and outputs go to the dump dir for `scripts/gpu/ref_bench.py`.
//! - `cold-start --models DIR --out cold.json`: process start → every model on the GPU and every
//!   kernel loaded, with the kernel cache empty and then warm (runs `ready` as a child).
//! - `dinov3 --models DIR --dump DIR --out dinov3.json`: DINOv3 at 512/1024 px, timed and dumped
//!   for `scripts/gpu/dinov3_ref.py` (HF transformers on the same weights and pixels).
//! - `table --ours ours.json [--ref ref.json] [--cold cold.json]`: the combined table.

mod decoders;
mod dinov3;
mod dit;
mod report;
mod stages;
mod util;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use t2_models::dit::SparseStructureFlowModel;
use t2_models::nn::Precision;
use t2_models::pipeline::{LoadOptions, PipelineType, Residency, Trellis2Pipeline};
use t2_models::random::shape::SurfaceShape;
use t2_models::random::{ModelSetSize, write_model_set};
use t2_tensor::Device;

use report::{ColdStart, OursReport};

#[derive(Parser)]
#[command(about = "TRELLIS.2 at full size: random weights, parity dumps, timings")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Where a timed run reads its models and writes its dump and report, on which device, how
/// many repetitions (shared by `run` and `dinov3`).
#[derive(clap::Args)]
struct BenchIo {
    #[arg(long)]
    models: PathBuf,
    #[arg(long)]
    dump: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "cuda")]
    device: String,
    #[arg(long, default_value_t = 5)]
    reps: usize,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes the random model set (full size unless --scaled).
    Random {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The size-scaled variant (tiny widths, same names) instead of the full size.
        #[arg(long)]
        scaled: bool,
    },
    /// The DiT, decoder and pipeline benchmarks, dumping what the reference script compares.
    Run {
        #[command(flatten)]
        io: BenchIo,
        /// Sparse DiT token counts (the SS flow always runs its 4,096).
        #[arg(long, value_delimiter = ',', default_value = "9600,21600,49152")]
        sizes: Vec<usize>,
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "512,1024_cascade,1536_cascade"
        )]
        pipelines: Vec<String>,
        /// Also run 1536_cascade on a surface just under the 49,152-token cap.
        #[arg(long)]
        heavy: bool,
        /// Also load the SS flow in f32 and report the bf16 forward's error against it.
        #[arg(long)]
        f32_check: bool,
        /// Skip sections: any of dit, decoders, pipelines.
        #[arg(long, value_delimiter = ',')]
        skip: Vec<String>,
        /// Low-VRAM mode: one network on the GPU at a time (pipelines only: needs
        /// `--skip dit,decoders`, which drive resident networks).
        #[arg(long)]
        low_vram: bool,
        /// Caps the allocator (live + cached) at this many GiB; an allocation over it fails as
        /// a full GPU would.
        #[arg(long)]
        memory_limit_gib: Option<f64>,
        /// Also run the GLB steps (`to_glb`, 1 M faces, 4096² texture) on each pipeline's
        /// output, for image → GLB seconds, as a job runs through the services: the shape
        /// decode and the surface steps start when the shape latents are sampled, during the
        /// texture flow and decode (low-VRAM mode: during the texture decode only).
        #[arg(long)]
        glb: bool,
        /// With `--glb`: the texture flow first, then the shape decode, and the surface steps
        /// during the texture decode only (the order before the flow service streamed the
        /// shape latents), to compare the two in one call.
        #[arg(long, requires = "glb")]
        texture_flow_first: bool,
    },
    /// DINOv3 at 512 and 1024 px: timings and a dump for scripts/gpu/dinov3_ref.py.
    Dinov3 {
        #[command(flatten)]
        io: BenchIo,
    },
    /// Loads every model onto the GPU and every kernel, then exits (the cold-start child).
    Ready {
        #[arg(long)]
        models: PathBuf,
    },
    /// Times `ready` as a child process with a fresh and then the filled kernel cache.
    ColdStart {
        #[arg(long)]
        models: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "/tmp/t2-kernel-cache-coldstart")]
        cache: PathBuf,
    },
    /// Prints the combined table.
    Table {
        #[arg(long)]
        ours: PathBuf,
        #[arg(long = "ref")]
        reference: Option<PathBuf>,
        #[arg(long)]
        cold: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Random { out, seed, scaled } => {
            let size = if scaled {
                ModelSetSize::scaled()
            } else {
                ModelSetSize::full()
            };
            let set = write_model_set(&out, seed, &size)?;
            for f in &set.files {
                println!(
                    "{:>12} params {:>5} tensors {:>14} bytes  {}",
                    f.parameters,
                    f.tensors,
                    f.bytes,
                    f.path.display()
                );
            }
            let gb = set.bytes() as f64 / 1e9;
            println!(
                "wrote {gb:.2} GB in {:.2} s ({:.2} GB/s) to {}",
                set.seconds,
                gb / set.seconds,
                out.display()
            );
            Ok(())
        }
        Cmd::Run {
            io,
            sizes,
            pipelines,
            heavy,
            f32_check,
            skip,
            low_vram,
            memory_limit_gib,
            glb,
            texture_flow_first,
        } => run(RunArgs {
            io,
            sizes,
            pipelines,
            heavy,
            f32_check,
            skip,
            residency: if low_vram {
                Residency::OneAtATime
            } else {
                Residency::AllResident
            },
            memory_limit_gib,
            glb,
            texture_flow_first,
        }),
        Cmd::Dinov3 { io } => dinov3::run(
            &io.models,
            &io.dump,
            &io.out,
            &Device::parse(&io.device)?,
            io.reps,
        ),
        Cmd::Ready { models } => {
            let t = Instant::now();
            let dev = Device::cuda(0)?;
            let pipe = load(&models, &dev, Residency::AllResident)?;
            warm_up(&dev)?;
            drop(pipe);
            println!("ready in {:.2} s", t.elapsed().as_secs_f64());
            Ok(())
        }
        Cmd::ColdStart { models, out, cache } => cold_start(&models, &out, &cache),
        Cmd::Table {
            ours,
            reference,
            cold,
        } => {
            print!(
                "{}",
                report::table(&ours, reference.as_deref(), cold.as_deref())?
            );
            Ok(())
        }
    }
}

struct RunArgs {
    io: BenchIo,
    sizes: Vec<usize>,
    pipelines: Vec<String>,
    heavy: bool,
    f32_check: bool,
    skip: Vec<String>,
    residency: Residency,
    memory_limit_gib: Option<f64>,
    glb: bool,
    texture_flow_first: bool,
}

fn load(models: &Path, dev: &Device, residency: Residency) -> Result<Trellis2Pipeline> {
    Ok(Trellis2Pipeline::load(
        models,
        &LoadOptions {
            residency,
            ..LoadOptions::all(Precision::Reference, dev.clone())
        },
    )?)
}

fn warm_up(dev: &Device) -> Result<()> {
    if let Device::Cuda(c) = dev {
        c.warm_up()?;
        t2_mesh::gpu::warm_up(c)?;
    }
    Ok(())
}

fn save(path: &Path, r: &OursReport) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(r)?)
        .with_context(|| path.display().to_string())
}

/// Runs one section; a failure is recorded (and printed) instead of ending the run, so the
/// other sections still report.
fn section<T>(r: &mut OursReport, what: &str, f: impl FnOnce() -> Result<T>) -> Option<T> {
    let t = Instant::now();
    match f() {
        Ok(v) => {
            eprintln!("[{what}] done in {:.1} s", t.elapsed().as_secs_f64());
            Some(v)
        }
        Err(e) => {
            let msg = format!("{what}: {e:#}");
            eprintln!("[{what}] FAILED: {e:#}");
            r.errors.push(msg);
            None
        }
    }
}

fn run(a: RunArgs) -> Result<()> {
    let skip = |s: &str| a.skip.iter().any(|x| x == s);
    if a.residency == Residency::OneAtATime && !(skip("dit") && skip("decoders")) {
        return Err(anyhow!(
            "--low-vram times whole pipelines only: add --skip dit,decoders"
        ));
    }
    let dev = Device::parse(&a.io.device)?;
    if let (Device::Cuda(c), Some(g)) = (&dev, a.memory_limit_gib) {
        c.set_memory_limit(Some(t2_tensor::device::parse_gib(&g.to_string())?));
    }
    std::fs::create_dir_all(&a.io.dump)?;
    let mut r = OursReport {
        gpu: match &dev {
            Device::Cuda(c) => c.name().to_string(),
            Device::Cpu => "cpu".into(),
        },
        low_vram: a.residency == Residency::OneAtATime,
        memory_limit_gib: a.memory_limit_gib,
        ..Default::default()
    };
    let t = Instant::now();
    let pipe = load(&a.io.models, &dev, a.residency)?;
    dev.synchronize()?;
    r.load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    warm_up(&dev)?;
    r.warm_up_s = t.elapsed().as_secs_f64();
    if let Device::Cuda(c) = &dev {
        let m = c.memory_stats();
        r.resident_gib = util::gib(m.allocated);
        // What the process holds outside the allocator: context, kernel modules, cuBLASLt's
        // workspace (the driver's used memory minus the pool; assumes the GPU is ours alone).
        r.outside_pool_gib =
            util::gib((m.device_total - m.device_free).saturating_sub(m.allocated + m.cached));
    }
    eprintln!(
        "loaded in {:.1} s, warm-up {:.1} s, {:.1} GiB resident",
        r.load_s, r.warm_up_s, r.resident_gib
    );
    save(&a.io.out, &r)?;
    let nets = pipe.networks();

    if !skip("dit") {
        let ss = nets.ss_flow.ok_or_else(|| anyhow!("no SS flow"))?;
        let f32_model = if a.f32_check {
            section(&mut r, "load SS flow f32", || {
                let files = pipe
                    .config
                    .model_files("sparse_structure_flow_model")?
                    .ok_or_else(|| anyhow!("no SS flow listed"))?;
                Ok(SparseStructureFlowModel::load(
                    &files,
                    Precision::F32,
                    &dev,
                )?)
            })
        } else {
            None
        };
        if let Some(d) = section(&mut r, "dit ss-4096", || {
            dit::ss_case(ss, f32_model.as_ref(), &dev, a.io.reps, &a.io.dump)
        }) {
            r.dit.push(d);
        }
        drop(f32_model);
        let shape = nets
            .shape_flow_1024
            .ok_or_else(|| anyhow!("no 1024 shape flow"))?;
        for &n in &a.sizes {
            if let Some(d) = section(&mut r, &format!("dit shape1024-{n}"), || {
                dit::sparse_case(shape, n, &dev, a.io.reps, &a.io.dump)
            }) {
                r.dit.push(d);
            }
            save(&a.io.out, &r)?;
        }
    }

    if !skip("decoders") {
        let reps = a.io.reps.min(3);
        if let Some(d) = section(&mut r, "SS decoder", || {
            let dec = nets.ss_decoder.ok_or_else(|| anyhow!("no SS decoder"))?;
            decoders::ss_decoder(dec, &dev, reps, &a.io.dump)
        }) {
            r.decoders.push(d);
        }
        let norms = &pipe.config.args;
        if let Some(d) = section(&mut r, "SC-VAE decoders", || {
            decoders::sc_vae_decoders(
                nets.shape_decoder
                    .ok_or_else(|| anyhow!("no shape decoder"))?,
                nets.tex_decoder.ok_or_else(|| anyhow!("no tex decoder"))?,
                (
                    &norms.shape_slat_normalization.mean,
                    &norms.shape_slat_normalization.std,
                    &norms.tex_slat_normalization.mean,
                    &norms.tex_slat_normalization.std,
                ),
                &dev,
                reps,
                &a.io.dump,
            )
        }) {
            r.decoders.extend(d);
        }
        save(&a.io.out, &r)?;
    }

    if !skip("pipelines") {
        let mut runs: Vec<(PipelineType, SurfaceShape, String)> = Vec::new();
        for p in a.pipelines.iter().filter(|p| p.as_str() != "none") {
            runs.push((p.parse()?, SurfaceShape::sphere(), "sphere".into()));
        }
        if a.heavy {
            let s = SurfaceShape::with_surface_voxels(96, 48_000);
            let name = format!("gyroid {:.2} cells", s.cells);
            runs.push((PipelineType::Cascade1536, s, name));
        }
        for (ty, surface, name) in runs {
            if let Some(p) = section(&mut r, &format!("pipeline {}", ty.as_str()), || {
                stages::run(
                    &pipe,
                    ty,
                    &surface,
                    &name,
                    &dev,
                    a.glb,
                    a.texture_flow_first,
                )
            }) {
                eprintln!("{p:?}");
                r.pipelines.push(p);
            }
            save(&a.io.out, &r)?;
        }
    }
    save(&a.io.out, &r)?;
    Ok(())
}

fn cold_start(models: &Path, out: &Path, cache: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(cache);
    std::fs::create_dir_all(cache)?;
    let exe = std::env::current_exe()?;
    let mut times = Vec::new();
    for label in ["cold", "warm"] {
        let t = Instant::now();
        let st = std::process::Command::new(&exe)
            .args(["ready", "--models"])
            .arg(models)
            .env("TRELLIS2_KERNEL_CACHE", cache)
            .status()?;
        let s = t.elapsed().as_secs_f64();
        if !st.success() {
            return Err(anyhow!("`ready` ({label} cache) failed: {st}"));
        }
        eprintln!("cold start, kernel cache {label}: {s:.2} s");
        times.push(s);
    }
    let c = ColdStart {
        cold_cache_s: times[0],
        warm_cache_s: times[1],
    };
    std::fs::write(out, serde_json::to_string_pretty(&c)?)?;
    Ok(())
}
