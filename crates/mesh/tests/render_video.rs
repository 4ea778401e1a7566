//! The turntable MP4: decoded by ffprobe (Debian's `ffmpeg` package; CI must install it) with the
//! expected codec, size, rate and frame count, re-read by the `mp4` crate, and decoded in-process
//! by OpenH264 frame by frame against the frames the renderer produced.
//!
//! Tolerance: H.264 is lossy and the RGB→YUV 4:2:0 round trip loses chroma detail, so decoded
//! frames are compared by PSNR; ≥ 28 dB per frame on these flat-coloured renders (a frame from
//! the wrong place in the turntable, or a colour-channel mix-up, scores well under 20 dB).

use std::io::Cursor;
use std::process::Command;

use t2_mesh::render::{Layout, RenderOptions, VideoOptions, turntable_frames, turntable_mp4};
use t2_mesh::{Texture, TexturedMesh};

/// A box with a different solid colour per face, so the turntable changes visibly.
fn coloured_box() -> TexturedMesh {
    let colours: [[u8; 4]; 6] = [
        [230, 40, 40, 255],
        [40, 200, 60, 255],
        [50, 80, 230, 255],
        [240, 220, 40, 255],
        [240, 240, 240, 255],
        [200, 60, 200, 255],
    ];
    let mut m = TexturedMesh {
        base_color: Texture {
            width: 6,
            height: 1,
            channels: 4,
            data: colours.concat(),
        },
        metallic_roughness: Texture {
            width: 1,
            height: 1,
            channels: 3,
            data: vec![0, 150, 0],
        },
        ..Default::default()
    };
    let half = [0.35f32, 0.25, 0.3];
    for k in 0..6 {
        let axis = k / 2;
        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
        let (a, b) = ((axis + 1) % 3, (axis + 2) % 3);
        let base = m.positions.len() as u32;
        for (s, t) in [(-1.0f32, -1.0f32), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)] {
            let mut p = [0.0; 3];
            p[axis] = sign * half[axis];
            p[a] = s * half[a];
            p[b] = t * half[b];
            let mut n = [0.0; 3];
            n[axis] = sign;
            m.positions.push(p);
            m.normals.push(n);
            // Texel centre of this face's colour.
            m.uvs.push([(k as f32 + 0.5) / 6.0, 0.5]);
        }
        m.faces.push([base, base + 1, base + 2]);
        m.faces.push([base, base + 2, base + 3]);
    }
    m
}

fn video_opts() -> VideoOptions {
    // 64² views → 128 × 96 frames; the reference's 120 frames at 15 fps.
    VideoOptions {
        render: RenderOptions {
            resolution: 64,
            ..Default::default()
        },
        layout: Layout::PbrGrid,
        ..Default::default()
    }
}

fn ffprobe(path: &std::path::Path) -> std::collections::HashMap<String, String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries"])
        .arg("stream=codec_name,profile,width,height,pix_fmt,avg_frame_rate,nb_frames,nb_read_frames")
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "ffprobe could not be run ({e}). This test needs ffprobe from Debian's `ffmpeg` \
                 package: `apt-get install -y ffmpeg`."
            )
        });
    assert!(
        out.status.success(),
        "ffprobe rejected the MP4: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[test]
fn turntable_mp4_decodes_with_ffprobe_with_120_frames_at_15_fps() {
    let opts = video_opts();
    let mp4 = turntable_mp4(&coloured_box(), &opts).unwrap();
    let dir = std::env::temp_dir().join(format!("t2-render-video-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("turntable.mp4");
    std::fs::write(&path, &mp4).unwrap();
    let info = ffprobe(&path);
    let _ = std::fs::remove_dir_all(&dir);
    let get = |k: &str| {
        info.get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {k} in {info:?}"))
    };
    assert_eq!(get("codec_name"), "h264");
    assert_eq!((get("width"), get("height")), ("128", "96"));
    assert_eq!(get("pix_fmt"), "yuv420p");
    assert_eq!(get("avg_frame_rate"), "15/1");
    assert_eq!(get("nb_frames"), "120", "frames in the container");
    assert_eq!(get("nb_read_frames"), "120", "frames actually decoded");
}

#[test]
fn mp4_samples_decode_back_to_the_rendered_frames() {
    let opts = video_opts();
    let mesh = coloured_box();
    let mp4_bytes = turntable_mp4(&mesh, &opts).unwrap();
    let mut rendered = Vec::new();
    turntable_frames(&mesh, &opts, |_, f| {
        rendered.push(f);
        Ok(())
    })
    .unwrap();
    assert_eq!(rendered.len(), 120);
    // Consecutive frames differ (the camera moves), so matching below is meaningful.
    assert_ne!(rendered[0], rendered[30]);

    let size = mp4_bytes.len() as u64;
    let mut reader = mp4::Mp4Reader::read_header(Cursor::new(mp4_bytes), size).unwrap();
    assert_eq!(reader.tracks().len(), 1);
    let track = &reader.tracks()[&1];
    assert_eq!((track.width(), track.height()), (128, 96));
    assert_eq!(track.sample_count(), 120);
    assert!(
        (track.frame_rate() - 15.0).abs() < 1e-9,
        "{}",
        track.frame_rate()
    );
    let mut annexb_header = Vec::new();
    for ps in [
        track.sequence_parameter_set().unwrap(),
        track.picture_parameter_set().unwrap(),
    ] {
        annexb_header.extend_from_slice(&[0, 0, 0, 1]);
        annexb_header.extend_from_slice(ps);
    }

    let mut decoder = openh264::decoder::Decoder::new().unwrap();
    let mut decoded = Vec::new();
    for i in 1..=120 {
        let sample = reader.read_sample(1, i).unwrap().expect("sample present");
        assert_eq!(
            sample.is_sync,
            i == 1 || (i - 1) % 30 == 0,
            "key frame every 2 s, sample {i}"
        );
        // AVCC (length-prefixed) → Annex B (start codes) for the decoder.
        let mut packet = if i == 1 {
            annexb_header.clone()
        } else {
            Vec::new()
        };
        let mut rest = &sample.bytes[..];
        while rest.len() >= 4 {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            assert!(rest.len() >= 4 + len, "truncated NAL in sample {i}");
            packet.extend_from_slice(&[0, 0, 0, 1]);
            packet.extend_from_slice(&rest[4..4 + len]);
            rest = &rest[4 + len..];
        }
        assert!(rest.is_empty());
        if let Some(yuv) = decoder.decode(&packet).unwrap() {
            let mut rgb = vec![0u8; 128 * 96 * 3];
            yuv.write_rgb8(&mut rgb);
            decoded.push(rgb);
        }
    }
    for yuv in decoder.flush_remaining().unwrap() {
        let mut rgb = vec![0u8; 128 * 96 * 3];
        yuv.write_rgb8(&mut rgb);
        decoded.push(rgb);
    }
    assert_eq!(decoded.len(), 120);
    let psnr = |a: &[u8], b: &[u8]| {
        let mse = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
            .sum::<f64>()
            / a.len() as f64;
        10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
    };
    for (i, (d, r)) in decoded.iter().zip(&rendered).enumerate() {
        let p = psnr(d, r.as_raw());
        assert!(p >= 28.0, "frame {i}: PSNR {p:.1} dB");
    }
    // And a frame is not mistaken for another one a quarter turn away.
    assert!(psnr(&decoded[0], rendered[30].as_raw()) < 20.0);
}

#[test]
fn video_option_errors_are_typed() {
    let mesh = coloured_box();
    for bad in [
        VideoOptions {
            num_frames: 0,
            ..video_opts()
        },
        VideoOptions {
            fps: 0,
            ..video_opts()
        },
        VideoOptions {
            radius: -1.0,
            ..video_opts()
        },
        VideoOptions {
            render: RenderOptions {
                resolution: 2048,
                ..Default::default()
            },
            ..video_opts()
        },
    ] {
        let err = turntable_mp4(&mesh, &bad).unwrap_err();
        assert!(err.is_invalid_input(), "{bad:?}: {err}");
    }
}
