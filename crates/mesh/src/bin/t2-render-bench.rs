//! Preview-render benchmark: seconds per turntable frame on a synthetic, realistic-size asset
//! (a bumpy sphere with a lat-long UV map and procedural PBR textures), over face counts and
//! resolutions, plus H.264 encoding; ratios are against the first row, run in the same process.
//!
//! `cargo run --release -p t2-mesh --bin t2-render-bench -- [--frames N] [--texture N] [--out DIR]`
//! (`--out` also writes a snapshot PNG, a PBR-grid PNG and a short MP4 there, for a look).

use std::time::Instant;

use t2_mesh::render::{
    Layout, RenderOptions, Renderer, SnapshotOptions, VideoOptions, snapshot_png,
    turntable_cameras, turntable_mp4,
};
use t2_mesh::{Texture, TexturedMesh};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut frames = 6u32;
    let mut texture = 2048u32;
    let mut out: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--frames" => frames = value()?.parse()?,
            "--texture" => texture = value()?.parse()?,
            "--out" => out = Some(value()?.into()),
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let threads = rayon::current_num_threads();
    println!(
        "t2-render-bench: {frames} turntable frames per row, texture {texture}², {threads} threads"
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("(per-frame times average frames spread over the whole turntable path;");
    println!(
        " wall clock, so other load inflates them: loadavg now {})\n",
        load.trim()
    );

    let sizes = [(100, 200), (300, 600), (500, 1000)]; // 40k, 360k, 1M faces
    let meshes: Vec<TexturedMesh> = sizes
        .iter()
        .map(|&(r, c)| bumpy_sphere(r, c, texture))
        .collect();
    let default = RenderOptions::default();

    println!(
        "{:>10} {:>6} {:>5} {:>10} {:>8} {:>12}",
        "faces", "res", "ssaa", "s/frame", "ratio", "cpu-s/frame"
    );
    let mut baseline = None;
    let mut row =
        |mesh: &TexturedMesh, opts: RenderOptions| -> Result<f64, Box<dyn std::error::Error>> {
            let cams = turntable_cameras(120, 2.0, 40.0)?;
            let step = (120 / frames.max(1)).max(1) as usize;
            let picked: Vec<_> = cams.iter().step_by(step).take(frames as usize).collect();
            let mut renderer = Renderer::new(mesh)?;
            // One untimed frame allocates the buffers and warms the thread pool.
            renderer.render(picked[0], &opts)?;
            let (t, cpu) = (Instant::now(), cpu_seconds());
            for cam in &picked {
                std::hint::black_box(renderer.render(cam, &opts)?);
            }
            let n = picked.len() as f64;
            let s = t.elapsed().as_secs_f64() / n;
            let c = (cpu_seconds() - cpu) / n;
            let base = *baseline.get_or_insert(s);
            println!(
                "{:>10} {:>6} {:>5} {:>10.4} {:>8.2} {:>12.4}",
                mesh.faces.len(),
                opts.resolution,
                opts.ssaa,
                s,
                s / base,
                c
            );
            Ok(s)
        };
    let default_1m = {
        let mut last = 0.0;
        for m in &meshes {
            last = row(m, default.clone())?;
        }
        last
    };
    let big = &meshes[2];
    row(
        big,
        RenderOptions {
            ssaa: 1,
            ..default.clone()
        },
    )?;
    row(
        big,
        RenderOptions {
            resolution: 256,
            ..default.clone()
        },
    )?;
    row(
        big,
        RenderOptions {
            resolution: 1024,
            ..default.clone()
        },
    )?;

    // Whole video path (render + PBR grid + H.264 + MP4) on the 1M-face mesh.
    let opts = VideoOptions {
        num_frames: frames.max(1),
        ..Default::default()
    };
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let mp4 = turntable_mp4(big, &opts)?;
    let n = opts.num_frames as f64;
    let (per_frame, cpu_per_frame) = (t.elapsed().as_secs_f64() / n, (cpu_seconds() - cpu) / n);
    println!(
        "\nturntable_mp4 (render, grid, H.264, MP4; encoding overlaps rendering), {} faces, \
         {}² views, {}x{} frames:",
        big.faces.len(),
        opts.render.resolution,
        2 * opts.render.resolution,
        opts.render.resolution * 3 / 2,
    );
    println!(
        "  {per_frame:.4} s/frame ({:.2}x the render-only row above), {cpu_per_frame:.4} cpu-s/frame, \
         {} bytes for {} frames",
        per_frame / default_1m,
        mp4.len(),
        opts.num_frames
    );
    println!(
        "  projected 120-frame preview at this rate: {:.1} s",
        per_frame * 120.0
    );

    if let Some(dir) = out {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("bench_turntable.mp4"), &mp4)?;
        std::fs::write(
            dir.join("bench_snapshot.png"),
            snapshot_png(big, &SnapshotOptions::default())?,
        )?;
        let grid = SnapshotOptions {
            layout: Layout::PbrGrid,
            ..Default::default()
        };
        std::fs::write(dir.join("bench_grid.png"), snapshot_png(big, &grid)?)?;
        println!(
            "wrote bench_turntable.mp4, bench_snapshot.png, bench_grid.png to {}",
            dir.display()
        );
    }
    Ok(())
}

/// User + system CPU time of this process so far (all threads), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th there.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Clock ticks are 100 Hz on Linux x86-64.
    (field(11) + field(12)) / 100.0
}

/// A lat-long sphere of radius ~0.4 with a bumpy surface: `2 · rows · cols` faces, smooth
/// vertex normals from the mesh, UVs from the parameterisation, and `texture²` PBR maps.
fn bumpy_sphere(rows: usize, cols: usize, texture: u32) -> TexturedMesh {
    use std::f32::consts::PI;
    let mut m = TexturedMesh::default();
    for i in 0..=rows {
        let theta = PI * i as f32 / rows as f32;
        for j in 0..=cols {
            let phi = 2.0 * PI * j as f32 / cols as f32;
            let r = 0.4 * (1.0 + 0.06 * (7.0 * theta).sin() * (9.0 * phi).sin());
            m.positions.push([
                r * theta.sin() * phi.cos(),
                r * theta.sin() * phi.sin(),
                r * theta.cos(),
            ]);
            m.uvs.push([j as f32 / cols as f32, i as f32 / rows as f32]);
        }
    }
    let w = cols as u32 + 1;
    for i in 0..rows as u32 {
        for j in 0..cols as u32 {
            let (a, b, c, d) = (
                i * w + j,
                i * w + j + 1,
                (i + 1) * w + j,
                (i + 1) * w + j + 1,
            );
            m.faces.push([a, c, b]);
            m.faces.push([b, c, d]);
        }
    }
    let mut normals = vec![[0.0f32; 3]; m.positions.len()];
    for f in &m.faces {
        let [a, b, c] = f.map(|v| m.positions[v as usize]);
        let (e1, e2) = (
            [0, 1, 2].map(|k| b[k] - a[k]),
            [0, 1, 2].map(|k| c[k] - a[k]),
        );
        let n = [
            e1[1] * e2[2] - e1[2] * e2[1],
            e1[2] * e2[0] - e1[0] * e2[2],
            e1[0] * e2[1] - e1[1] * e2[0],
        ];
        for &v in f {
            for k in 0..3 {
                normals[v as usize][k] += n[k];
            }
        }
    }
    m.normals = normals
        .into_iter()
        .map(|n| {
            let l = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt().max(1e-12);
            n.map(|c| c / l)
        })
        .collect();
    let t = texture as usize;
    let mut bc = vec![0u8; t * t * 4];
    let mut mr = vec![0u8; t * t * 3];
    for y in 0..t {
        for x in 0..t {
            let checker = ((x * 16 / t) + (y * 8 / t)).is_multiple_of(2);
            let i = y * t + x;
            let g = (255 * y / t) as u8;
            bc[i * 4..i * 4 + 4].copy_from_slice(&if checker {
                [220, 90, 40, 255]
            } else {
                [60, g, 200, 255]
            });
            // Roughness across u, metallic on the checker's warm squares.
            mr[i * 3..i * 3 + 3].copy_from_slice(&[
                0,
                (40 + 200 * x / t) as u8,
                if checker { 230 } else { 10 },
            ]);
        }
    }
    m.base_color = Texture {
        width: texture,
        height: texture,
        channels: 4,
        data: bc,
    };
    m.metallic_roughness = Texture {
        width: texture,
        height: texture,
        channels: 3,
        data: mr,
    };
    m
}
