//! H.264 encoding (OpenH264, built from its bundled source) and MP4 muxing (`mp4` crate).
//!
//! OpenH264 emits Annex-B NAL units (start-code prefixed); MP4's `avc1` sample entry wants the
//! SPS/PPS in its `avcC` box and every sample as 4-byte length-prefixed NAL units, so the stream
//! is re-framed here.

use std::io::Cursor;

use image::RgbImage;
use openh264::OpenH264API;
use openh264::encoder::{
    Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode, UsageType,
    VuiConfig,
};
use openh264::formats::{RgbSliceU8, YUVBuffer};

use super::RenderError;

const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_IDR: u8 = 5;

/// Streams RGB frames into an H.264 elementary stream held as MP4 samples in memory.
pub(crate) struct Mp4H264Writer {
    encoder: Encoder,
    width: u32,
    height: u32,
    fps: u32,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    samples: Vec<(Vec<u8>, bool)>,
}

impl Mp4H264Writer {
    pub fn new(width: u32, height: u32, fps: u32) -> Result<Self, RenderError> {
        if !width.is_multiple_of(2) || !height.is_multiple_of(2) || width == 0 || height == 0 {
            return Err(RenderError::InvalidOptions(format!(
                "video frames must have even, non-zero sizes (4:2:0), got {width}x{height}"
            )));
        }
        let config = EncoderConfig::new()
            // OpenH264 only implements the real-time usage types (non-real-time fails init).
            .usage_type(UsageType::CameraVideoRealTime)
            // Rate control off = OpenH264's constant default QP, every frame at even quality.
            // Its rate-controlled modes cannot hold a bit rate without skipping frames, which
            // the frame-count contract forbids (and they warn on stderr for every video).
            .rate_control_mode(RateControlMode::Off)
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            // Every input frame must come out as a sample: the frame count is part of the contract.
            .skip_frames(false)
            // A key frame every 2 s keeps seeking cheap in browsers.
            .intra_frame_period(IntraFramePeriod::from_num_frames(2 * fps))
            // The RGB→YUV conversion below is BT.601 limited range; say so to players.
            .vui(VuiConfig::bt601());
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| RenderError::Encode(e.to_string()))?;
        Ok(Self {
            encoder,
            width,
            height,
            fps,
            sps: None,
            pps: None,
            samples: Vec::new(),
        })
    }

    pub fn push(&mut self, frame: &RgbImage) -> Result<(), RenderError> {
        if frame.width() != self.width || frame.height() != self.height {
            return Err(RenderError::Encode(format!(
                "frame is {}x{}, stream is {}x{}",
                frame.width(),
                frame.height(),
                self.width,
                self.height
            )));
        }
        let yuv = YUVBuffer::from_rgb8_source(RgbSliceU8::new(
            frame.as_raw(),
            (self.width as usize, self.height as usize),
        ));
        let stream = self
            .encoder
            .encode(&yuv)
            .map_err(|e| RenderError::Encode(e.to_string()))?;
        if matches!(stream.frame_type(), FrameType::Skip | FrameType::Invalid) {
            return Err(RenderError::Encode(format!(
                "encoder returned no picture for frame {}",
                self.samples.len()
            )));
        }
        let mut sample = Vec::new();
        let mut sync = false;
        for l in 0..stream.num_layers() {
            let Some(layer) = stream.layer(l) else {
                continue;
            };
            for i in 0..layer.nal_count() {
                let Some(nal) = layer.nal_unit(i).map(strip_start_code) else {
                    continue;
                };
                let Some(&header) = nal.first() else { continue };
                match header & 0x1f {
                    NAL_SPS => {
                        self.sps.get_or_insert_with(|| nal.to_vec());
                    }
                    NAL_PPS => {
                        self.pps.get_or_insert_with(|| nal.to_vec());
                    }
                    kind => {
                        sync |= kind == NAL_IDR;
                        sample.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                        sample.extend_from_slice(nal);
                    }
                }
            }
        }
        if sample.is_empty() {
            return Err(RenderError::Encode(format!(
                "encoder produced no slice data for frame {}",
                self.samples.len()
            )));
        }
        self.samples.push((sample, sync));
        Ok(())
    }

    /// Muxes everything pushed so far into a complete MP4 file.
    pub fn finish(self) -> Result<Vec<u8>, RenderError> {
        let mux = |e: mp4::Error| RenderError::Mux(e.to_string());
        let (Some(sps), Some(pps)) = (self.sps, self.pps) else {
            return Err(RenderError::Mux(
                "no SPS/PPS in the H.264 stream (no frames?)".into(),
            ));
        };
        if sps.len() < 4 {
            return Err(RenderError::Mux(format!(
                "SPS too short ({} bytes)",
                sps.len()
            )));
        }
        let brand = |s: &[u8; 4]| mp4::FourCC::from(*s);
        let config = mp4::Mp4Config {
            major_brand: brand(b"isom"),
            minor_version: 512,
            compatible_brands: vec![
                brand(b"isom"),
                brand(b"iso2"),
                brand(b"avc1"),
                brand(b"mp41"),
            ],
            timescale: 1000,
        };
        let mut writer =
            mp4::Mp4Writer::write_start(Cursor::new(Vec::new()), &config).map_err(mux)?;
        // One tick per millisecond-of-a-frame keeps every duration an exact integer.
        let timescale = self.fps * 1000;
        let track = mp4::TrackConfig {
            track_type: mp4::TrackType::Video,
            timescale,
            language: "und".to_string(),
            media_conf: mp4::MediaConfig::AvcConfig(mp4::AvcConfig {
                width: self.width as u16,
                height: self.height as u16,
                seq_param_set: sps,
                pic_param_set: pps,
            }),
        };
        writer.add_track(&track).map_err(mux)?;
        for (i, (bytes, is_sync)) in self.samples.into_iter().enumerate() {
            let sample = mp4::Mp4Sample {
                start_time: i as u64 * 1000,
                duration: 1000,
                rendering_offset: 0,
                is_sync,
                bytes: bytes.into(),
            };
            writer.write_sample(1, &sample).map_err(mux)?;
        }
        writer.write_end().map_err(mux)?;
        Ok(writer.into_writer().into_inner())
    }
}

/// Drops a leading `00 00 01` or `00 00 00 01`.
fn strip_start_code(nal: &[u8]) -> &[u8] {
    if nal.starts_with(&[0, 0, 0, 1]) {
        &nal[4..]
    } else if nal.starts_with(&[0, 0, 1]) {
        &nal[3..]
    } else {
        nal
    }
}
