//! Mesh-stage bench: a synthetic decoded asset (a bumpy torus voxelised at res 1024, millions of
//! faces) through FDG extraction and the whole `to_glb` flow, with seconds per step printed next
//! to the reference's published figures, plus decimation quality and speed (the parallel edge
//! collapse on the CPU and, with `--device cuda|both`, on the GPU, against meshoptimizer: the
//! distance of the decimated surface to the input, via the BVH).
//!
//! `--device cuda` runs the heavy steps on the GPU (`t2_mesh::gpu`); `--device both` runs the
//! flow on the CPU then on CUDA over the same asset in one process and prints seconds per step
//! side by side, plus how far the CUDA textures are from the CPU's.
//!
//! `t2-mesh-bench [--res 1024] [--texture 4096] [--target 1000000] [--no-remesh] [--webp]
//! [--device cpu|cuda|both] [--no-quality] [--out asset.glb] [--uv-ab]
//! [--shape torus|sphere] [--piece-ab]`
//!
//! `--uv-ab` only compares the UV unwrap's flattenings (and pieces) on the decimated asset.
//! `--piece-ab` limits the decimation quality table to the target, at the production piece
//! size and at half and a quarter of it.

use std::time::Instant;

use t2_mesh::bvh::Bvh;
use t2_mesh::decimate::{
    DECIMATE_PIECE_FACES, DecimateReport, decimate, decimate_in_pieces, decimate_on,
};
use t2_mesh::remesh::{RemeshParams, remesh_narrow_band_dc};
use t2_mesh::synth::{Attributes, NoisyTorus, Sdf, Sphere, dual_grid, with_attributes};
use t2_mesh::{GlbParams, GlbReport, MeshWithVoxel, TextureFormat, TexturedMesh, to_glb_on};
use t2_tensor::Device;

/// Process CPU seconds (user + system, all threads) from `/proc/self/stat`; NaN elsewhere. The
/// bench machine is shared, so wall time alone can hide contention: CPU time does not.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 Hz on Linux).
    (tick(11) + tick(12)) / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or("?".into(), |l| {
        l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    })
}

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> BoxResult<T> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a value").into()),
        None => Ok(default),
    }
}

fn main() -> BoxResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let res: u32 = arg(&args, "--res", 1024)?;
    let texture: u32 = arg(&args, "--texture", 4096)?;
    let target: usize = arg(&args, "--target", 1_000_000)?;
    let remesh = !args.iter().any(|a| a == "--no-remesh");
    let webp = args.iter().any(|a| a == "--webp");
    let out: String = arg(&args, "--out", String::new())?;
    let device: String = arg(&args, "--device", "cpu".to_string())?;
    let no_quality = args.iter().any(|a| a == "--no-quality");
    let piece_ab = args.iter().any(|a| a == "--piece-ab");
    println!(
        "t2-mesh-bench: res {res}, texture {texture}², target {target} faces, remesh {remesh}, device {device}, threads {}",
        rayon::current_num_threads()
    );

    // `--shape sphere`: t2-bench's benchmark surface (radius 0.4), twice the torus's area.
    let torus = NoisyTorus {
        major: 0.25,
        minor: 0.1,
        amp: 0.006,
        freq: 60.0,
    };
    let sphere = Sphere {
        center: [0.0; 3],
        radius: 0.4,
    };
    let shape: &dyn Sdf = match arg(&args, "--shape", "torus".to_string())?.as_str() {
        "torus" => &torus,
        "sphere" => &sphere,
        s => return Err(format!("--shape {s}: want torus or sphere").into()),
    };
    let t = Instant::now();
    let grid = dual_grid(shape, res)?;
    let t_synth = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mesh = grid.mesh()?;
    let t_fdg = t.elapsed().as_secs_f64();
    let input = with_attributes(mesh, grid.coords, res, Attributes::Pattern);
    println!(
        "asset: {} voxels, {} vertices, {} faces (synthesised in {t_synth:.2} s, not a reference step)",
        input.coords.len(),
        input.mesh.vertices.len(),
        input.mesh.faces.len()
    );

    let params = GlbParams {
        decimation_target: target,
        texture_size: texture,
        remesh,
        remesh_band: 1.0,
        remesh_project: 0.0,
        texture_format: if webp {
            TextureFormat::Webp
        } else {
            TextureFormat::Png
        },
    };
    if args.iter().any(|a| a == "--uv-ab") {
        return uv_ab(&input, res, target, texture);
    }
    let devices: Vec<Device> = match device.as_str() {
        "cpu" => vec![Device::Cpu],
        "cuda" => vec![open_cuda()?],
        "both" => vec![Device::Cpu, open_cuda()?],
        d => return Err(format!("--device {d}: want cpu, cuda or both").into()),
    };
    let mut runs = Vec::new();
    for dev in &devices {
        let label = if dev.is_cuda() { "CUDA" } else { "CPU" };
        let load_before = load_average();
        let (t, cpu0) = (Instant::now(), cpu_seconds());
        let (glb, tm, report) = to_glb_on(&input, &params, dev, Some(cpu_seconds))?;
        let total = t.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        if !out.is_empty() {
            let path = if devices.len() > 1 {
                format!("{out}.{}.glb", label.to_lowercase())
            } else {
                out.clone()
            };
            std::fs::write(&path, &glb)?;
        }
        println!("\n{label}:");
        print_steps(
            t_fdg,
            &input,
            texture,
            &glb,
            &tm,
            &report,
            total,
            cpu,
            &load_before,
        );
        runs.push((label, tm, report, total));
    }
    if let [(_, cpu_tm, cpu_r, cpu_total), (_, gpu_tm, gpu_r, gpu_total)] = runs.as_slice() {
        compare(cpu_r, gpu_r, *cpu_total, *gpu_total, cpu_tm, gpu_tm);
    }
    if no_quality {
        return Ok(());
    }

    // Decimation quality: the measured two-sided distance between the decimated and the
    // remeshed surfaces (decimated face centroids → remeshed surface and remeshed vertices →
    // decimated surface), in voxels (1/res); meshopt keeps vertex positions, so vertex-only
    // distances would read 0.
    if remesh {
        let bvh = Bvh::new(&input.mesh.vertices, &input.mesh.faces)?;
        let remeshed = remesh_narrow_band_dc(&bvh, &RemeshParams::for_grid(res, 1.0, 0.0))?;
        let rbvh = Bvh::new(&remeshed.vertices, &remeshed.faces)?;
        println!(
            "\n| decimation | method | seconds | pass, steps | mean / max dist, voxels |\n|---|---|---:|---|---:|"
        );
        let gpu = devices.iter().find_map(|d| match d {
            Device::Cuda(dev) => Some(dev.clone()),
            Device::Cpu => None,
        });
        // `--piece-ab`: only the target, meshopt with the production piece size and smaller.
        let mut methods: Vec<(String, Method)> = Vec::new();
        if piece_ab {
            for n in [
                DECIMATE_PIECE_FACES,
                DECIMATE_PIECE_FACES / 2,
                DECIMATE_PIECE_FACES / 4,
            ] {
                methods.push((format!("meshopt, pieces of {n} faces"), Method::Meshopt(n)));
            }
        } else {
            if gpu.is_some() {
                methods.push((
                    "parallel collapse, CUDA (production)".into(),
                    Method::CollapseGpu,
                ));
            }
            methods.push(("parallel collapse, CPU".into(), Method::CollapseCpu));
            methods.push((
                "meshopt, parallel pieces".into(),
                Method::Meshopt(DECIMATE_PIECE_FACES),
            ));
            methods.push((
                "meshopt, one serial pass".into(),
                Method::Meshopt(usize::MAX),
            ));
        }
        let targets = if piece_ab {
            vec![target]
        } else {
            vec![target, target / 4, target / 16]
        };
        for tgt in targets {
            for (label, method) in &methods {
                // The CPU collapse is slow at full size (see BENCHMARKS): the target only.
                if matches!(method, Method::CollapseCpu) && tgt != target {
                    continue;
                }
                let t = Instant::now();
                let (d, rep) = match method {
                    Method::CollapseGpu => decimate_on(&remeshed, tgt, gpu.as_ref())?,
                    Method::CollapseCpu => decimate_on(&remeshed, tgt, None)?,
                    Method::Meshopt(pieces) => decimate_in_pieces(&remeshed, tgt, *pieces)?,
                };
                let secs = t.elapsed().as_secs_f64();
                let centroids: Vec<[f32; 3]> = d
                    .faces
                    .iter()
                    .map(|f| {
                        let [a, b, c] = f.map(|i| d.vertices[i as usize]);
                        std::array::from_fn(|k| (a[k] + b[k] + c[k]) / 3.0)
                    })
                    .collect();
                let dbvh = Bvh::new(&d.vertices, &d.faces)?;
                let mut dists = rbvh.unsigned_distance(&centroids);
                dists.extend(dbvh.unsigned_distance(&remeshed.vertices));
                let mean =
                    dists.iter().map(|&x| x as f64).sum::<f64>() / dists.len() as f64 * res as f64;
                let max = dists.iter().cloned().fold(0.0f32, f32::max) as f64 * res as f64;
                println!(
                    "| {} → {} faces | {label} | {secs:.2} | {} | {mean:.3} / {max:.3} |",
                    rep.input_faces,
                    rep.output_faces,
                    pass_note(&rep)
                );
            }
        }
    }
    Ok(())
}

enum Method {
    CollapseGpu,
    CollapseCpu,
    /// meshoptimizer with this piece size for its parallel first pass.
    Meshopt(usize),
}

/// The pass that ended a decimation, with the collapse's steps or meshopt's error estimate.
fn pass_note(d: &DecimateReport) -> String {
    let mut note = format!("{:?}", d.pass);
    if let Some(c) = d.collapse {
        note += &format!(", {} steps", c.steps);
    }
    if let Some(e) = d.relative_error {
        note += &format!(", meshopt rel. error {e:.2e}");
    }
    note
}

/// UV unwrapping of the remeshed, decimated asset, same run: the crate alone as one piece (it
/// segments on one thread) and in `UNWRAP_PIECE_FACES` pieces, and our charts + direct LSCM
/// (the production path) with the crate packing.
fn uv_ab(input: &MeshWithVoxel, res: u32, target: usize, texture: u32) -> BoxResult<()> {
    use t2_mesh::uv::{Flattening, UNWRAP_PIECE_FACES, unwrap_with};
    let bvh = Bvh::new(&input.mesh.vertices, &input.mesh.faces)?;
    let remeshed = remesh_narrow_band_dc(&bvh, &RemeshParams::for_grid(res, 1.0, 0.0))?;
    let (m, _) = decimate(&remeshed, target)?;
    println!(
        "\n| UV unwrap of {} faces, {texture}² | wall s | CPU s | charts | not flattened whole | atlas utilisation | area distortion |\n|---|---:|---:|---:|---:|---:|---:|",
        m.faces.len()
    );
    for (label, piece, flattening) in [
        ("uvunwrap, one piece", usize::MAX, Flattening::Uvunwrap),
        ("uvunwrap, pieces", UNWRAP_PIECE_FACES, Flattening::Uvunwrap),
        (
            "charts + direct LSCM, uvunwrap packing, pieces",
            UNWRAP_PIECE_FACES,
            Flattening::DirectLscmCratePacking,
        ),
        (
            "charts + direct LSCM + shelves, pieces (production)",
            UNWRAP_PIECE_FACES,
            Flattening::DirectLscm,
        ),
    ] {
        let (t, cpu0) = (Instant::now(), cpu_seconds());
        let u = unwrap_with(&m, texture, piece, flattening)?;
        let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
        println!(
            "| {label} | {wall:.2} | {cpu:.2} | {} | {} | {:.3} | {:.3} |",
            u.chart_count,
            u.handed_off_charts,
            u.utilization,
            area_distortion(&u)
        );
    }
    println!("(load average at the end: {})", load_average());
    Ok(())
}

/// Texel density evenness over the whole atlas: the area-weighted mean over faces of
/// max(r, 1/r), r = a face's share of the UV area over its share of the surface (1 = every
/// face gets texels in proportion to its area).
fn area_distortion(u: &t2_mesh::uv::UvMesh) -> f64 {
    let (uv_area, area): (Vec<f64>, Vec<f64>) = u
        .faces
        .iter()
        .map(|f| {
            let [a, b, c] = f.map(|i| u.uvs[i as usize].map(f64::from));
            let uv = 0.5 * ((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])).abs();
            let [p, q, r] = f.map(|i| u.positions[i as usize]);
            (uv, t2_mesh::geom::tri_area(p, q, r) as f64)
        })
        .unzip();
    let (tu, ta): (f64, f64) = (uv_area.iter().sum(), area.iter().sum());
    uv_area
        .iter()
        .zip(&area)
        .filter(|&(&x, &a)| x > 0.0 && a > 0.0)
        .map(|(&x, &a)| {
            let r = (x / tu) / (a / ta);
            a * r.max(1.0 / r)
        })
        .sum::<f64>()
        / ta
}

/// Opens CUDA device 0 and compiles the mesh kernels (NVRTC or the disk cache) outside the
/// timed flow, printing how long that took.
fn open_cuda() -> BoxResult<Device> {
    let dev = t2_mesh::gpu::open_device(0)?;
    let t = Instant::now();
    t2_mesh::gpu::warm_up(&dev)?;
    println!(
        "cuda: {} ({}), mesh kernels ready in {:.2} s (NVRTC or disk cache, not timed below)",
        dev.name(),
        dev.arch(),
        t.elapsed().as_secs_f64()
    );
    Ok(Device::Cuda(dev))
}

#[allow(clippy::too_many_arguments)]
fn print_steps(
    t_fdg: f64,
    input: &MeshWithVoxel,
    texture: u32,
    glb: &[u8],
    tm: &TexturedMesh,
    report: &GlbReport,
    total: f64,
    cpu: f64,
    load_before: &str,
) {
    println!("| step | wall s | CPU s | notes |\n|---|---:|---:|---|");
    println!(
        "| fdg extraction | {t_fdg:.2} | | {} faces |",
        input.mesh.faces.len()
    );
    for step in &report.steps {
        let note = match step.name {
            "remesh" => {
                let phases: Vec<String> = report
                    .remesh_phases
                    .iter()
                    .map(|(name, secs)| format!("{name} {secs:.2}"))
                    .collect();
                format!(
                    "{} faces out; {} s",
                    report.remeshed_faces,
                    phases.join(", ")
                )
            }
            "decimate" => report.decimate.map_or(String::new(), |d| {
                format!(
                    "{} → {} faces, {}",
                    d.input_faces,
                    d.output_faces,
                    pass_note(&d)
                )
            }),
            "uv_unwrap" => {
                let [ours, seg, flat, pack, out] = report.uv_stage_seconds;
                format!(
                    "{} charts ({} not flattened whole), atlas utilisation {:.3}; charts + LSCM {ours:.2}, islands {seg:.2}, validate/flatten {flat:.2}, pack {pack:.2}, output {out:.2} s",
                    report.charts, report.uv_handed_off, report.atlas_utilization
                )
            }
            "bake" => format!(
                "{:.1} % texels covered; {}",
                100.0 * report.covered_texels as f64 / (texture as f64 * texture as f64),
                report
                    .bake_phases
                    .iter()
                    .map(|(name, secs)| format!("{name} {secs:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "glb" => format!("{:.1} MB", glb.len() as f64 / 1e6),
            _ => String::new(),
        };
        let cpu = step.cpu_seconds.unwrap_or(f64::NAN);
        println!(
            "| {} | {:.2} | {cpu:.2} | {note} |",
            step.name,
            step.wall.as_secs_f64()
        );
    }
    println!(
        "| **to_glb total** | **{total:.2}** | **{cpu:.2}** | {} faces, {} vertices; load avg {load_before} → {} |",
        tm.faces.len(),
        tm.positions.len(),
        load_average()
    );
    println!(
        "| reference to_glb, RTX 5060 Ti (trellis.cpp, spec §6.3) | 16.2 / 26.2 | | goblin / turret, 1024_cascade |"
    );
    println!("| reference mesh stage, H200 (issue 5 text) | 71–107 | | of 87–154 s per image |");
}

/// Seconds per step, CPU vs CUDA, and the CUDA textures' distance from the CPU's.
fn compare(
    cpu: &GlbReport,
    gpu: &GlbReport,
    cpu_total: f64,
    gpu_total: f64,
    cpu_tm: &TexturedMesh,
    gpu_tm: &TexturedMesh,
) {
    println!("\n| step | CPU s | CUDA s | CPU / CUDA |\n|---|---:|---:|---:|");
    let wall = |r: &GlbReport, name: &str| {
        r.steps
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.wall.as_secs_f64())
    };
    let mut names: Vec<&str> = cpu.steps.iter().map(|s| s.name).collect();
    for s in &gpu.steps {
        if !names.contains(&s.name) {
            let at = names
                .iter()
                .position(|&n| n == "bvh")
                .map_or(names.len(), |i| i + 1);
            names.insert(at, s.name);
        }
    }
    let cell = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
    for name in names {
        let (c, g) = (wall(cpu, name), wall(gpu, name));
        let ratio = match (c, g) {
            (Some(c), Some(g)) if g > 0.0 => format!("{:.1}×", c / g),
            _ => "—".into(),
        };
        println!("| {name} | {} | {} | {ratio} |", cell(c), cell(g));
    }
    println!(
        "| **to_glb total** | **{cpu_total:.2}** | **{gpu_total:.2}** | **{:.1}×** |",
        cpu_total / gpu_total
    );
    let same_mesh = cpu_tm.faces == gpu_tm.faces && cpu_tm.positions == gpu_tm.positions;
    for (name, a, b) in [
        ("base colour", &cpu_tm.base_color, &gpu_tm.base_color),
        (
            "metallic-roughness",
            &cpu_tm.metallic_roughness,
            &gpu_tm.metallic_roughness,
        ),
    ] {
        let (differ, over_one) = a.byte_differences(b);
        println!(
            "parity {name}: {differ} of {} bytes differ, {over_one} by more than one level; same mesh: {same_mesh}",
            a.data.len()
        );
    }
}
