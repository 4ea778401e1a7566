//! Preview rendering on the CPU: a turntable video (MP4, H.264) and single-image snapshots (PNG)
//! of a [`TexturedMesh`], following the reference's `render_video` / `PbrMeshRenderer` /
//! `make_pbr_vis_frames` (TRELLIS.2 `trellis2/utils/render_utils.py`).
//!
//! What matches the reference: the camera path (120 frames, radius 2, FoV 40°, Z up, its exact
//! yaw/pitch formula), near 1 / far 100, SSAA ×2 then downsampling of linear radiance, base colour
//! raised to 2.2, ACES tone mapping then gamma 2.2, the normal view's `-n·½+½` in camera space, and
//! the 2 × 1.5 frame layout at 15 fps. What differs, by design: lighting is a fixed directional +
//! hemisphere rig instead of an HDR environment map (see [`Lighting`]), there is no SSAO (the
//! reference's is random per frame), only the nearest surface is drawn (the reference peels 8
//! layers for alpha; its assets are opaque), and textures are sampled bilinearly without mipmaps.
//! The default resolution is 512 (video frames 1024 × 768) instead of the reference's 1024: a
//! 120-frame preview of a 1M-face asset then costs about 0.23 CPU-seconds per frame (about 27 CPU-s
//! in all; `t2-render-bench`), 4× less than at 1024. Set [`RenderOptions::resolution`] for more.

mod camera;
mod frame;
mod material;
mod raster;
mod shade;
mod video;

use image::RgbImage;

pub use camera::{Camera, turntable_cameras};
pub use frame::{ViewImages, pbr_vis_frame};
pub use shade::{DirectionalLight, Lighting};

use crate::types::TexturedMesh;
use frame::FrameScratch;
use material::PreparedMesh;

/// Why a render failed. The first three are caller errors (invalid argument); the rest are
/// internal failures of the encoders.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("invalid mesh for rendering: {0}")]
    InvalidMesh(String),
    #[error("invalid texture for rendering: {0}")]
    InvalidTexture(String),
    #[error("invalid render options: {0}")]
    InvalidOptions(String),
    #[error("H.264 encoding failed: {0}")]
    Encode(String),
    #[error("MP4 muxing failed: {0}")]
    Mux(String),
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

impl RenderError {
    /// True when the caller's input is at fault (maps to an invalid-argument status).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::InvalidMesh(_) | Self::InvalidTexture(_) | Self::InvalidOptions(_)
        )
    }
}

/// Which normal the shading and the normal view use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormalSource {
    /// Interpolated vertex normals when the mesh has them (smooth), else face normals.
    #[default]
    Vertex,
    /// Flat face normals, as the reference's renderer uses.
    Face,
}

/// Settings shared by every view.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderOptions {
    /// Output size of one view, in pixels (square). A multiple of 4 in `[16, 4096]`.
    pub resolution: u32,
    /// Supersampling factor per axis (1–4); the reference uses 2.
    pub ssaa: u32,
    /// Clip distances along the view axis; the reference uses 1 and 100.
    pub near: f32,
    pub far: f32,
    pub normals: NormalSource,
    pub lighting: Lighting,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            resolution: 512,
            ssaa: 2,
            near: 1.0,
            far: 100.0,
            normals: NormalSource::Vertex,
            lighting: Lighting::default(),
        }
    }
}

impl RenderOptions {
    fn validate(&self) -> Result<(), RenderError> {
        let bad = |m: String| Err(RenderError::InvalidOptions(m));
        if !(16..=4096).contains(&self.resolution) || !self.resolution.is_multiple_of(4) {
            return bad(format!(
                "resolution must be a multiple of 4 in [16, 4096], got {}",
                self.resolution
            ));
        }
        if !(1..=4).contains(&self.ssaa) {
            return bad(format!("ssaa must be 1–4, got {}", self.ssaa));
        }
        if self.resolution * self.ssaa > 8192 {
            return bad(format!(
                "resolution × ssaa must be ≤ 8192, got {}",
                self.resolution * self.ssaa
            ));
        }
        if !(self.near.is_finite()
            && self.far.is_finite()
            && self.near > 0.0
            && self.far > self.near)
        {
            return bad(format!(
                "need 0 < near < far, got {} / {}",
                self.near, self.far
            ));
        }
        Ok(())
    }
}

/// What a video frame or snapshot shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// The reference's `make_pbr_vis_frames` grid: `2R × 1.5R`.
    #[default]
    PbrGrid,
    Shaded,
    Normal,
    BaseColor,
    Metallic,
    Roughness,
    Alpha,
}

impl Layout {
    fn compose(self, v: ViewImages) -> RgbImage {
        match self {
            Self::PbrGrid => pbr_vis_frame(&v),
            Self::Shaded => v.shaded,
            Self::Normal => v.normal,
            Self::BaseColor => v.base_color,
            Self::Metallic => v.metallic,
            Self::Roughness => v.roughness,
            Self::Alpha => v.alpha,
        }
    }

    fn size(self, r: u32) -> (u32, u32) {
        match self {
            Self::PbrGrid => (2 * r, r + r / 2),
            _ => (r, r),
        }
    }
}

/// The turntable video: the reference's `render_video` path and 15 fps.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoOptions {
    pub render: RenderOptions,
    pub layout: Layout,
    /// 1–3600; the reference renders 120.
    pub num_frames: u32,
    pub radius: f32,
    pub fov_deg: f32,
    /// 1–120; the reference saves at 15.
    pub fps: u32,
}

impl Default for VideoOptions {
    fn default() -> Self {
        Self {
            render: RenderOptions::default(),
            layout: Layout::PbrGrid,
            num_frames: 120,
            radius: 2.0,
            fov_deg: 40.0,
            fps: 15,
        }
    }
}

/// A single view as PNG. The default camera is the turntable's first frame.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotOptions {
    pub render: RenderOptions,
    pub layout: Layout,
    pub yaw: f32,
    pub pitch: f32,
    pub radius: f32,
    pub fov_deg: f32,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        Self {
            render: RenderOptions::default(),
            layout: Layout::Shaded,
            yaw: std::f32::consts::FRAC_PI_2,
            pitch: 0.25,
            radius: 2.0,
            fov_deg: 40.0,
        }
    }
}

/// A mesh checked once and ready for many views: keeps per-face data and the frame buffers
/// between calls, so rendering a sequence allocates once.
pub struct Renderer<'a> {
    prepared: PreparedMesh<'a>,
    scratch: FrameScratch,
}

impl<'a> Renderer<'a> {
    pub fn new(mesh: &'a TexturedMesh) -> Result<Self, RenderError> {
        Ok(Self {
            prepared: PreparedMesh::new(mesh)?,
            scratch: FrameScratch::default(),
        })
    }

    /// The six reference views from `camera`.
    pub fn render(
        &mut self,
        camera: &Camera,
        opts: &RenderOptions,
    ) -> Result<ViewImages, RenderError> {
        opts.validate()?;
        Ok(frame::render_views(
            &self.prepared,
            camera,
            opts,
            &mut self.scratch,
        ))
    }
}

/// Renders the six reference views of `mesh` from `camera` (one-off; see [`Renderer`]).
pub fn render_views(
    mesh: &TexturedMesh,
    camera: &Camera,
    opts: &RenderOptions,
) -> Result<ViewImages, RenderError> {
    Renderer::new(mesh)?.render(camera, opts)
}

/// Renders one view as an image in the chosen layout.
pub fn snapshot(mesh: &TexturedMesh, opts: &SnapshotOptions) -> Result<RgbImage, RenderError> {
    let camera = Camera::orbit(opts.yaw, opts.pitch, opts.radius, opts.fov_deg)?;
    Ok(opts
        .layout
        .compose(render_views(mesh, &camera, &opts.render)?))
}

/// [`snapshot`] encoded as PNG.
pub fn snapshot_png(mesh: &TexturedMesh, opts: &SnapshotOptions) -> Result<Vec<u8>, RenderError> {
    let img = snapshot(mesh, opts)?;
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| RenderError::Png(e.to_string()))?;
    Ok(out)
}

/// Renders the turntable and hands each frame to `sink` in order (for callers that encode or
/// stream frames themselves). An error returned by `sink` stops the render (cancellation).
pub fn turntable_frames(
    mesh: &TexturedMesh,
    opts: &VideoOptions,
    sink: impl FnMut(usize, RgbImage) -> Result<(), RenderError>,
) -> Result<(), RenderError> {
    let cameras = validate_video(opts)?;
    render_turntable(&mut Renderer::new(mesh)?, &cameras, opts, sink)
}

fn validate_video(opts: &VideoOptions) -> Result<Vec<Camera>, RenderError> {
    opts.render.validate()?;
    if !(1..=3600).contains(&opts.num_frames) {
        return Err(RenderError::InvalidOptions(format!(
            "num_frames must be 1–3600, got {}",
            opts.num_frames
        )));
    }
    turntable_cameras(opts.num_frames, opts.radius, opts.fov_deg)
}

fn render_turntable(
    renderer: &mut Renderer<'_>,
    cameras: &[Camera],
    opts: &VideoOptions,
    mut sink: impl FnMut(usize, RgbImage) -> Result<(), RenderError>,
) -> Result<(), RenderError> {
    for (i, cam) in cameras.iter().enumerate() {
        sink(i, opts.layout.compose(renderer.render(cam, &opts.render)?))?;
    }
    Ok(())
}

/// The turntable preview as an H.264 MP4 file.
pub fn turntable_mp4(mesh: &TexturedMesh, opts: &VideoOptions) -> Result<Vec<u8>, RenderError> {
    let cameras = validate_video(opts)?;
    if !(1..=120).contains(&opts.fps) {
        return Err(RenderError::InvalidOptions(format!(
            "fps must be 1–120, got {}",
            opts.fps
        )));
    }
    let (w, h) = opts.layout.size(opts.render.resolution);
    // OpenH264 stops at level 5.2.
    if w.max(h) > 3840 || w.min(h) > 2160 {
        return Err(RenderError::InvalidOptions(format!(
            "video frames of {w}x{h} exceed H.264's 3840x2160; lower the resolution"
        )));
    }
    let mut renderer = Renderer::new(mesh)?;
    let mut writer = video::Mp4H264Writer::new(w, h, opts.fps)?;
    // Encode frame i on this thread while the renderer (itself parallel) works on frame i + 1.
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<RgbImage>(2);
        let producer = scope.spawn(move || {
            render_turntable(&mut renderer, &cameras, opts, |_, frame| {
                tx.send(frame)
                    .map_err(|_| RenderError::Encode("encoder stopped".into()))
            })
        });
        let mut encoded = Ok(());
        for frame in rx {
            encoded = writer.push(&frame);
            if encoded.is_err() {
                break; // dropping `rx` stops the producer at its next send
            }
        }
        let rendered = producer
            .join()
            .unwrap_or_else(|_| Err(RenderError::Encode("render thread panicked".into())));
        // An encoder failure explains the producer's "encoder stopped", so it goes first.
        encoded.and(rendered)
    })?;
    writer.finish()
}
