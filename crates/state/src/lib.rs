//! The state handed from `/generate` to `/extract_glb`: the structured latents of one asset
//! (not the decoded mesh), in a versioned little-endian binary layout authenticated with
//! HMAC-SHA256 under a server-side key. Nothing executable is ever deserialised: every field is
//! a fixed-width integer, UTF-8 text or raw `f32`/`i32` arrays whose sizes follow from the header.
//!
//! # Layout, version 1
//!
//! All integers little-endian. `N` = tokens, `Cs`/`Ct` = shape/texture latent channels.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `b"T2STATE\0"` |
//! | 8 | 2 | format version, `1` |
//! | 10 | 2 | `M`: model id length in bytes (≤ [`MAX_MODEL_ID_BYTES`]) |
//! | 12 | 4 | pipeline resolution (e.g. 512, 1024, 1536) |
//! | 16 | 4 | `N` (≤ [`MAX_TOKENS`]) |
//! | 20 | 2 | `Cs` (≤ [`MAX_CHANNELS`]) |
//! | 22 | 2 | `Ct` (≤ [`MAX_CHANNELS`]) |
//! | 24 | `M` | model id, UTF-8 |
//! | 24+`M` | 0–3 | zero padding to a multiple of 4 |
//! | `P` | 16·`N` | coords, `i32` `[N, 4]` (batch, x, y, z) |
//! | … | 4·`N`·`Cs` | shape latents, `f32` `[N, Cs]` |
//! | … | 4·`N`·`Ct` | texture latents, `f32` `[N, Ct]` |
//! | end−32 | 32 | HMAC-SHA256(key, every preceding byte) |
//!
//! Decoding checks, in order: minimum length, magic, version, then the MAC (constant-time), and
//! only then trusts the header's sizes, which must account for every byte exactly.
//! Raw little-endian arrays keep encoding and decoding a copy: 49,152 tokens with 32+32 channels
//! come to 13 MB, within the gateway's `/extract_glb` body limit once base64-encoded.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const MAGIC: &[u8; 8] = b"T2STATE\0";
pub const VERSION: u16 = 1;
/// Fixed header bytes before the model id.
pub const HEADER_BYTES: usize = 24;
pub const MAC_BYTES: usize = 32;
pub const MAX_MODEL_ID_BYTES: usize = 256;
/// Twice the largest cascade budget (49,152) with room for larger future pipelines.
pub const MAX_TOKENS: u32 = 1 << 20;
pub const MAX_CHANNELS: u16 = 1024;
/// Length of a server key in bytes.
pub const KEY_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Why bytes are not a valid state for this server.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    #[error("state is truncated: {len} bytes is shorter than any valid state")]
    Truncated { len: usize },
    #[error("not a trellis2 state (bad magic)")]
    BadMagic,
    #[error("unsupported state version {0} (this server reads version {VERSION})")]
    UnsupportedVersion(u16),
    #[error("state signature does not verify: tampered, or signed by another server")]
    BadSignature,
    #[error("state header is inconsistent: {0}")]
    BadHeader(String),
    #[error("latents are inconsistent: {0}")]
    InvalidLatents(String),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("state key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("state key must be {KEY_BYTES} bytes (hex encoded), got {0} bytes")]
    BadLength(usize),
    #[error("state key is not hex: {0}")]
    NotHex(String),
}

/// The structured latents of one generated asset.
#[derive(Debug, Clone, PartialEq)]
pub struct Latents {
    pub model_id: String,
    pub resolution: u32,
    /// `[N, 4]` (batch, x, y, z), row-major.
    pub coords: Vec<i32>,
    pub shape_channels: u16,
    /// `[N, shape_channels]`.
    pub shape: Vec<f32>,
    pub tex_channels: u16,
    /// `[N, tex_channels]`.
    pub tex: Vec<f32>,
}

impl Latents {
    pub fn num_tokens(&self) -> usize {
        self.coords.len() / 4
    }

    fn check(&self) -> Result<(), StateError> {
        let bad = |m: String| Err(StateError::InvalidLatents(m));
        if self.model_id.len() > MAX_MODEL_ID_BYTES {
            return bad(format!("model id longer than {MAX_MODEL_ID_BYTES} bytes"));
        }
        if !self.coords.len().is_multiple_of(4) {
            return bad(format!("{} coords values is not [N, 4]", self.coords.len()));
        }
        let n = self.num_tokens();
        if n > MAX_TOKENS as usize {
            return bad(format!("{n} tokens exceeds {MAX_TOKENS}"));
        }
        if self.shape_channels > MAX_CHANNELS || self.tex_channels > MAX_CHANNELS {
            return bad(format!("more than {MAX_CHANNELS} channels"));
        }
        if self.shape.len() != n * self.shape_channels as usize {
            return bad(format!(
                "shape latents have {} values, expected {n}×{}",
                self.shape.len(),
                self.shape_channels
            ));
        }
        if self.tex.len() != n * self.tex_channels as usize {
            return bad(format!(
                "texture latents have {} values, expected {n}×{}",
                self.tex.len(),
                self.tex_channels
            ));
        }
        Ok(())
    }
}

/// The server-side HMAC key. Its bytes are never printed.
#[derive(Clone)]
pub struct StateKey([u8; KEY_BYTES]);

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(..)")
    }
}

impl StateKey {
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        Self(bytes)
    }

    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let v = hex::decode(s.trim()).map_err(|e| KeyError::NotHex(e.to_string()))?;
        let arr: [u8; KEY_BYTES] = v
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::BadLength(v.len()))?;
        Ok(Self(arr))
    }

    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// Reads the hex key at `path`, creating it (mode 0600 on Unix) with a random key if absent,
    /// so states stay valid across restarts of the same server.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(s) => Self::from_hex(&s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                use std::io::Write;
                let mut f = opts.open(path).map_err(io)?;
                f.write_all(hex::encode(key.0).as_bytes()).map_err(io)?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }
}

fn padded(m: usize) -> usize {
    (HEADER_BYTES + m).next_multiple_of(4)
}

/// Serialises and signs `latents`.
pub fn encode(latents: &Latents, key: &StateKey) -> Result<Vec<u8>, StateError> {
    latents.check()?;
    let n = latents.num_tokens();
    let m = latents.model_id.len();
    let body = padded(m) + 4 * (latents.coords.len() + latents.shape.len() + latents.tex.len());
    let mut out = Vec::with_capacity(body + MAC_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(m as u16).to_le_bytes());
    out.extend_from_slice(&latents.resolution.to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&latents.shape_channels.to_le_bytes());
    out.extend_from_slice(&latents.tex_channels.to_le_bytes());
    out.extend_from_slice(latents.model_id.as_bytes());
    out.resize(padded(m), 0);
    out.extend(latents.coords.iter().flat_map(|v| v.to_le_bytes()));
    out.extend(latents.shape.iter().flat_map(|v| v.to_le_bytes()));
    out.extend(latents.tex.iter().flat_map(|v| v.to_le_bytes()));
    debug_assert_eq!(out.len(), body);
    let mut mac = key.mac();
    mac.update(&out);
    out.extend_from_slice(&mac.finalize().into_bytes());
    Ok(out)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Verifies and parses a state produced by [`encode`] under the same key.
pub fn decode(bytes: &[u8], key: &StateKey) -> Result<Latents, StateError> {
    if bytes.len() < HEADER_BYTES + MAC_BYTES {
        return Err(StateError::Truncated { len: bytes.len() });
    }
    if &bytes[..8] != MAGIC {
        return Err(StateError::BadMagic);
    }
    let version = u16_at(bytes, 8);
    if version != VERSION {
        return Err(StateError::UnsupportedVersion(version));
    }
    let (body, tag) = bytes.split_at(bytes.len() - MAC_BYTES);
    let mut mac = key.mac();
    mac.update(body);
    mac.verify_slice(tag)
        .map_err(|_| StateError::BadSignature)?;

    // Authenticated from here on; the checks below guard against our own encoder's bugs and
    // against a key shared with a server that writes something else.
    let m = u16_at(body, 10) as usize;
    let resolution = u32_at(body, 12);
    let n = u32_at(body, 16);
    let cs = u16_at(body, 20);
    let ct = u16_at(body, 22);
    if m > MAX_MODEL_ID_BYTES || n > MAX_TOKENS || cs > MAX_CHANNELS || ct > MAX_CHANNELS {
        return Err(StateError::BadHeader(format!(
            "model id {m} bytes, {n} tokens, {cs}+{ct} channels exceed the limits"
        )));
    }
    let n = n as usize;
    let start = padded(m);
    let expected = start + 4 * n * (4 + cs as usize + ct as usize);
    if body.len() != expected {
        return Err(StateError::BadHeader(format!(
            "header describes {expected} bytes, state has {}",
            body.len()
        )));
    }
    let model_id = std::str::from_utf8(&body[HEADER_BYTES..HEADER_BYTES + m])
        .map_err(|_| StateError::BadHeader("model id is not UTF-8".into()))?
        .to_string();
    let words = |from: usize, count: usize| {
        body[from..from + 4 * count]
            .chunks_exact(4)
            .map(|w| [w[0], w[1], w[2], w[3]])
    };
    let coords: Vec<i32> = words(start, 4 * n).map(i32::from_le_bytes).collect();
    let shape_at = start + 16 * n;
    let shape: Vec<f32> = words(shape_at, n * cs as usize)
        .map(f32::from_le_bytes)
        .collect();
    let tex_at = shape_at + 4 * n * cs as usize;
    let tex: Vec<f32> = words(tex_at, n * ct as usize)
        .map(f32::from_le_bytes)
        .collect();
    Ok(Latents {
        model_id,
        resolution,
        coords,
        shape_channels: cs,
        shape,
        tex_channels: ct,
        tex,
    })
}

#[cfg(test)]
mod tests;
