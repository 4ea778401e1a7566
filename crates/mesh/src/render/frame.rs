//! One view of a mesh: rasterise at `resolution · ssaa`, shade every sample, box-downsample, then
//! tone map; and the reference's `make_pbr_vis_frames` layout.

use image::RgbImage;
use rayon::prelude::*;

use super::camera::{Camera, dot, normalize, sub};
use super::material::PreparedMesh;
use super::raster::{EMPTY, Rasterizer};
use super::shade::{aces, gamma};
use super::{NormalSource, RenderOptions};

/// The six images the reference's PBR renderer returns for one view, each `resolution²`.
#[derive(Clone, Debug)]
pub struct ViewImages {
    /// Lit colour: ACES tone-mapped, gamma 2.2, over black.
    pub shaded: RgbImage,
    /// Camera-space normal `-n · ½ + ½` (OpenCV axes), mid-grey background as in the reference.
    pub normal: RgbImage,
    /// Stored base colour (no lighting, no gamma), black background.
    pub base_color: RgbImage,
    /// Metallic, roughness and alpha as grey levels, black background.
    pub metallic: RgbImage,
    pub roughness: RgbImage,
    pub alpha: RgbImage,
}

/// Linear accumulators of one output pixel, in this order: shaded (3), normal (3), base colour
/// (3), metallic, roughness, alpha.
const CHANNELS: usize = 12;

/// Buffers reused from frame to frame (a turntable renders 120 views of one mesh).
#[derive(Default)]
pub(crate) struct FrameScratch {
    cam_pos: Vec<[f32; 3]>,
    raster: Rasterizer,
    acc: Vec<f32>,
}

/// Renders all six views of `mesh` from `cam`.
pub(crate) fn render_views(
    mesh: &PreparedMesh<'_>,
    cam: &Camera,
    opts: &RenderOptions,
    scratch: &mut FrameScratch,
) -> ViewImages {
    let res = opts.resolution as usize;
    let ssaa = opts.ssaa as usize;
    let size = res * ssaa;
    let positions = &mesh.mesh.positions;
    scratch.cam_pos.resize(positions.len(), [0.0; 3]);
    scratch
        .cam_pos
        .par_iter_mut()
        .zip(positions.par_iter())
        .for_each(|(c, &p)| *c = cam.to_camera(p));
    let faces = &mesh.mesh.faces;
    scratch.raster.rasterize(
        &scratch.cam_pos,
        faces,
        cam.focal,
        size,
        opts.near,
        opts.far,
    );
    let vis = &scratch.raster.vis;

    scratch.acc.resize(res * res * CHANNELS, 0.0);
    let acc = &mut scratch.acc;
    let norm = 1.0 / (ssaa * ssaa) as f32;
    acc.par_chunks_mut(res * CHANNELS)
        .enumerate()
        .for_each(|(oy, row)| {
            row.fill(0.0);
            for ox in 0..res {
                let px = &mut row[ox * CHANNELS..(ox + 1) * CHANNELS];
                for sy in 0..ssaa {
                    for sx in 0..ssaa {
                        let idx = (oy * ssaa + sy) * size + ox * ssaa + sx;
                        let s = shade_sample(mesh, cam, opts, vis.face[idx], vis.bary[idx]);
                        for k in 0..CHANNELS {
                            px[k] += s[k];
                        }
                    }
                }
                for v in px.iter_mut() {
                    *v *= norm;
                }
            }
        });
    let acc = &scratch.acc;

    // The reference downsamples the linear radiance, then tone maps; the other views are
    // written as `clip(v · 255)` truncated to u8.
    let to_u8 = |v: f32| (v * 255.0).clamp(0.0, 255.0) as u8;
    let image = |f: &(dyn Fn(&[f32]) -> [u8; 3] + Sync)| {
        let mut img = RgbImage::new(res as u32, res as u32);
        img.par_chunks_mut(3)
            .zip(acc.par_chunks(CHANNELS))
            .for_each(|(dst, a)| {
                dst.copy_from_slice(&f(a));
            });
        img
    };
    let grey = |k: usize| move |a: &[f32]| [to_u8(a[k]); 3];
    ViewImages {
        shaded: image(&|a| [0, 1, 2].map(|c| to_u8(gamma(aces(a[c]))))),
        normal: image(&|a| [to_u8(a[3]), to_u8(a[4]), to_u8(a[5])]),
        base_color: image(&|a| [to_u8(a[6]), to_u8(a[7]), to_u8(a[8])]),
        metallic: image(&grey(9)),
        roughness: image(&grey(10)),
        alpha: image(&grey(11)),
    }
}

/// All view channels of one sample (see [`CHANNELS`]).
#[inline]
fn shade_sample(
    mesh: &PreparedMesh<'_>,
    cam: &Camera,
    opts: &RenderOptions,
    face: u32,
    bary: [f32; 2],
) -> [f32; CHANNELS] {
    if face == EMPTY {
        let mut bg = [0.0; CHANNELS];
        bg[3..6].copy_from_slice(&[0.5; 3]);
        return bg;
    }
    let f = face as usize;
    let b = [1.0 - bary[0] - bary[1], bary[0], bary[1]];
    let tri = mesh.mesh.faces[f];
    let pos = &mesh.mesh.positions;
    let mut p = [0.0f32; 3];
    for (k, &vi) in tri.iter().enumerate() {
        for c in 0..3 {
            p[c] += b[k] * pos[vi as usize][c];
        }
    }
    let view = normalize(sub(cam.eye, p)).unwrap_or(cam.rotation[2].map(|c| -c));
    // Like the reference, turn the geometric normal towards the camera (no consistent winding).
    let mut n_face = mesh.face_normals[f];
    if dot(n_face, view) < 0.0 {
        n_face = n_face.map(|c| -c);
    }
    let n = match opts.normals {
        NormalSource::Vertex if mesh.has_normals => {
            let nv = &mesh.mesh.normals;
            let mut n = [0.0f32; 3];
            for (k, &vi) in tri.iter().enumerate() {
                for c in 0..3 {
                    n[c] += b[k] * nv[vi as usize][c];
                }
            }
            match normalize(n) {
                Some(n) if dot(n, n_face) < 0.0 => n.map(|c| -c),
                Some(n) => n,
                None => n_face,
            }
        }
        _ => n_face,
    };
    let m = mesh.material(f, b);
    let alpha = m.alpha.clamp(0.0, 1.0);
    let lit = opts.lighting.shade(&m, n, view);
    let n_cam = cam.dir_to_camera(n);
    [
        lit[0] * alpha,
        lit[1] * alpha,
        lit[2] * alpha,
        -n_cam[0] * 0.5 + 0.5,
        -n_cam[1] * 0.5 + 0.5,
        -n_cam[2] * 0.5 + 0.5,
        m.base_color[0],
        m.base_color[1],
        m.base_color[2],
        m.metallic,
        m.roughness,
        m.alpha,
    ]
}

/// The reference's `make_pbr_vis_frames`: shaded | normal at full size on top, base colour |
/// metallic | roughness | alpha at half size below; `2R × 1.5R` for views of size `R`.
pub fn pbr_vis_frame(v: &ViewImages) -> RgbImage {
    let r = v.shaded.width();
    let h = r / 2;
    let mut out = RgbImage::new(2 * r, r + h);
    image::imageops::replace(&mut out, &v.shaded, 0, 0);
    image::imageops::replace(&mut out, &v.normal, r as i64, 0);
    for (i, img) in [&v.base_color, &v.metallic, &v.roughness, &v.alpha]
        .into_iter()
        .enumerate()
    {
        image::imageops::replace(&mut out, &halve(img), (i as u32 * h) as i64, r as i64);
    }
    out
}

/// Exact 2× box downsample (the views have even sizes).
fn halve(img: &RgbImage) -> RgbImage {
    let (w, h) = (img.width() / 2, img.height() / 2);
    RgbImage::from_fn(w, h, |x, y| {
        let mut s = [0u32; 3];
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let p = img.get_pixel(2 * x + dx, 2 * y + dy);
            for c in 0..3 {
                s[c] += p[c] as u32;
            }
        }
        image::Rgb(s.map(|v| ((v + 2) / 4) as u8))
    })
}
