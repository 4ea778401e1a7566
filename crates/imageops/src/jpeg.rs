//! JPEG decoding with libjpeg-turbo's decoder, set up as Pillow sets it up, so that the pixels
//! are Pillow's bit for bit.
//!
//! Pillow 13's wheels decode with libjpeg-turbo 3.2 at the library defaults: the slow-integer
//! IDCT (`JDCT_ISLOW`), fancy (triangle-filter) chroma upsampling, and block smoothing, which
//! only acts while a progressive file's AC coefficients are incomplete, so never on a whole
//! file. The decoder here is the libjpeg-turbo fork vendored in `mozjpeg-sys` (mozjpeg only
//! changes the encoder), compiled from source with `cc`. Its decoder sources (IDCT, upsampling,
//! colour conversion, Huffman and arithmetic entropy decoding) differ from libjpeg-turbo 3.2's
//! only by the 12/16-bit and lossless additions, not in 8-bit arithmetic; libjpeg-turbo's SIMD
//! (used when `nasm` is installed at build time) gives the same output as its C code for these
//! settings. Not decoded, where Pillow 13 would: lossless (SOF3) JPEG, which this libjpeg
//! version rejects as unsupported.
//!
//! Pillow's choices reproduced ([`decode`]):
//! - Mode from the component count alone: 1 → `L`, 3 → `RGB` (libjpeg converts YCbCr, or
//!   passes Adobe-RGB through), 4 → `CMYK` (libjpeg turns YCCK into CMYK), others refused.
//!   CMYK samples are read with Adobe's inverted polarity (Pillow's rawmode `CMYK;I`).
//! - EXIF orientation is not applied (`Image.open` leaves it to `ImageOps.exif_transpose`).
//! - Running out of data before the last scanline is an error (Pillow: "image file is
//!   truncated"); once every row is decoded, a missing tail (such as the EOI marker) is not,
//!   since Pillow ignores `jpeg_finish_decompress` suspending then. Corrupt-data warnings are
//!   not errors (Pillow silences them), fatal libjpeg errors are.
//!
//! A thin FFI layer rather than the `mozjpeg` crate's wrapper, because that wrapper silences
//! every warning (so a truncated file decodes with grey rows) and has no progress monitor,
//! needed here to bound the work a progressive file can demand.

use std::cell::Cell;
use std::ffi::{c_int, c_ulong, c_void};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use image::{GrayImage, RgbImage};
use mozjpeg_sys as ffi;

use crate::decode::Limits;
use crate::error::ImageError;
use crate::pil::{CmykImage, PilImage};

/// Most scans a progressive file may have. Every scan is a pass over the whole coefficient
/// buffer, so a 10 MB file of tiny scans over a 4096² frame could otherwise keep a core busy
/// for many minutes. Real encoders write at most a few dozen (Pillow/libjpeg 10 for colour,
/// mozjpeg's scan optimisation under 70); libjpeg-turbo suggests such a cap for untrusted input.
pub const MAX_PROGRESSIVE_SCANS: c_int = 1000;

const FORMAT: &str = "JPEG";

fn corrupt(detail: impl Into<String>) -> ImageError {
    ImageError::Corrupt {
        format: FORMAT,
        detail: detail.into(),
    }
}

fn unsupported(detail: impl Into<String>) -> ImageError {
    ImageError::UnsupportedContent {
        format: FORMAT,
        detail: detail.into(),
    }
}

/// Why libjpeg stopped; unwound out of its callbacks (through C built with `-fexceptions`,
/// declared `C-unwind`) and caught in [`guarded`]. `resume_unwind` skips the panic hook, so
/// a bad upload prints nothing.
enum Stop {
    Fatal { code: c_int, message: String },
    Truncated,
    TooManyScans(c_int),
}

/// Run libjpeg work, turning an unwound [`Stop`] into an error. Anything else that unwinds
/// (a bug) goes on to the catch in `decode_pil_with_limits`.
fn guarded<T>(work: impl FnOnce() -> Result<T, ImageError>) -> Result<T, ImageError> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(payload) => match payload.downcast::<Stop>() {
            Ok(stop) => Err(match *stop {
                Stop::Truncated => corrupt("truncated: the data ends before the image does"),
                Stop::TooManyScans(n) => unsupported(format!(
                    "progressive file with more than {MAX_PROGRESSIVE_SCANS} scans (scan {n})"
                )),
                Stop::Fatal { code, message }
                    if [
                        ffi::JERR_BAD_PRECISION,
                        ffi::JERR_SOF_UNSUPPORTED,
                        ffi::JERR_NOT_COMPILED,
                        ffi::JERR_ARITH_NOTIMPL,
                    ]
                    .contains(&code) =>
                {
                    unsupported(message)
                }
                Stop::Fatal { message, .. } => corrupt(message),
            }),
            Err(other) => resume_unwind(other),
        },
    }
}

/// What a decode needs to know from inside libjpeg's callbacks (`client_data`).
/// Only ever accessed through shared references (a `Cell`), from Rust and from callbacks.
struct Session {
    /// Set once every scanline is out: from then on, running out of data is tolerated.
    tolerate_eof: Cell<bool>,
}

fn session(cinfo: &Common) -> &Session {
    // SAFETY: `client_data` is set in `Decoder::new` to a `Session` boxed in the decoder,
    // which outlives every libjpeg call made through it.
    unsafe { &*(cinfo.client_data as *const Session) }
}

type Common = ffi::jpeg_common_struct;

extern "C-unwind" fn error_exit(cinfo: &mut Common) {
    let err = unsafe { &*cinfo.err };
    let mut buffer = [0u8; 80]; // JMSG_LENGTH_MAX
    if let Some(format) = err.format_message {
        // The binding declares the buffer `&[u8; 80]`, but C writes a NUL-terminated message
        // of at most 80 bytes into it: call it through a pointer that may be written.
        type Writes = unsafe extern "C-unwind" fn(&mut Common, *mut u8);
        // SAFETY: same ABI and argument layout (a reference and a pointer are both one
        // pointer); only the declared mutability differs.
        unsafe {
            let format: Writes = std::mem::transmute(format);
            format(cinfo, buffer.as_mut_ptr());
        }
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    let message = String::from_utf8_lossy(&buffer[..end]).into_owned();
    resume_unwind(Box::new(Stop::Fatal {
        code: err.msg_code,
        message,
    }));
}

extern "C-unwind" fn emit_message(cinfo: &mut Common, level: c_int) {
    // Level -1 is a warning; higher levels are trace messages, off by default.
    if level >= 0 {
        return;
    }
    let code = unsafe { (*cinfo.err).msg_code };
    if code == ffi::JWRN_JPEG_EOF && !session(cinfo).tolerate_eof.get() {
        resume_unwind(Box::new(Stop::Truncated));
    }
    // Other warnings (corrupt entropy data, extraneous bytes) leave a decodable image, which
    // Pillow returns without complaint; so do we.
}

extern "C-unwind" fn progress_monitor(cinfo: &mut Common) {
    if cinfo.is_decompressor == 0 {
        return;
    }
    // SAFETY: a decompressor's common struct is the first field of its decompress struct.
    let scan = unsafe {
        (*(cinfo as *mut Common as *const ffi::jpeg_decompress_struct)).input_scan_number
    };
    if scan > MAX_PROGRESSIVE_SCANS {
        resume_unwind(Box::new(Stop::TooManyScans(scan)));
    }
}

/// One libjpeg decompressor reading from `bytes`, with its header read. Everything libjpeg
/// points at is boxed, so moving the decoder moves no address libjpeg holds.
struct Decoder<'a> {
    cinfo: Box<ffi::jpeg_decompress_struct>,
    _err: Box<ffi::jpeg_error_mgr>,
    _progress: Box<ffi::jpeg_progress_mgr>,
    session: Box<Session>,
    _input: PhantomData<&'a [u8]>,
}

impl<'a> Decoder<'a> {
    /// Create, attach `bytes` and read the header (up to the first scan). Must run inside
    /// [`guarded`]: libjpeg reports errors by unwinding.
    fn new(bytes: &'a [u8]) -> Self {
        // SAFETY: all-zero is the state libjpeg expects before `jpeg_std_error` and
        // `jpeg_create_decompress` fill these in (C code memsets them the same way).
        let mut err: Box<ffi::jpeg_error_mgr> =
            Box::new(unsafe { MaybeUninit::zeroed().assume_init() });
        unsafe { ffi::jpeg_std_error(&mut err) };
        err.error_exit = Some(error_exit);
        err.emit_message = Some(emit_message);
        let mut progress: Box<ffi::jpeg_progress_mgr> =
            Box::new(unsafe { MaybeUninit::zeroed().assume_init() });
        progress.progress_monitor = Some(progress_monitor);
        let session = Box::new(Session {
            tolerate_eof: Cell::new(false),
        });
        let mut cinfo: Box<ffi::jpeg_decompress_struct> =
            Box::new(unsafe { MaybeUninit::zeroed().assume_init() });
        cinfo.common.err = &mut *err;
        cinfo.common.client_data = (&*session as *const Session).cast_mut().cast::<c_void>();
        let mut dec = Decoder {
            cinfo,
            _err: err,
            _progress: progress,
            session,
            _input: PhantomData,
        };
        // SAFETY: `err` and `client_data` are set (create keeps both); the memory source
        // only reads `bytes`, which outlive the decoder ('a). Drop destroys the object, also
        // after an unwind out of any of these calls.
        unsafe {
            ffi::jpeg_create_decompress(&mut *dec.cinfo);
            dec.cinfo.common.progress = &mut *dec._progress;
            // A usize length never exceeds c_ulong on the 64-bit targets built for; the
            // byte limit (10 MB) is checked before this anyway.
            ffi::jpeg_mem_src(&mut dec.cinfo, bytes.as_ptr(), bytes.len() as c_ulong);
            // require_image: a tables-only stream is an error (JERR_NO_IMAGE).
            ffi::jpeg_read_header(&mut dec.cinfo, 1);
        }
        dec
    }

    fn size(&self) -> (u32, u32) {
        (self.cinfo.image_width, self.cinfo.image_height)
    }
}

impl Drop for Decoder<'_> {
    fn drop(&mut self) {
        // SAFETY: destroying is valid in any state after create, including after an error
        // (libjpeg's documented recovery); with `mem` still null it does nothing.
        unsafe { ffi::jpeg_destroy_decompress(&mut self.cinfo) };
    }
}

/// Width and height from the header.
pub(crate) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), ImageError> {
    guarded(|| Ok(Decoder::new(bytes).size()))
}

/// Decode into Pillow's mode, refusing sizes over `limits` before any pixel is decoded.
pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<PilImage, ImageError> {
    guarded(|| {
        let mut dec = Decoder::new(bytes);
        let (w, h) = dec.size();
        limits.check_dimensions(w, h)?;
        let components = dec.cinfo.num_components;
        let out = match components {
            1 => ffi::J_COLOR_SPACE::JCS_GRAYSCALE,
            3 => ffi::J_COLOR_SPACE::JCS_RGB,
            4 => ffi::J_COLOR_SPACE::JCS_CMYK,
            n => return Err(unsupported(format!("{n} colour components"))),
        };
        dec.cinfo.out_color_space = out;
        // Pillow leaves these at libjpeg's defaults; set them anyway so that a change of
        // defaults cannot silently change the pixels.
        dec.cinfo.dct_method = ffi::J_DCT_METHOD::JDCT_ISLOW;
        dec.cinfo.do_fancy_upsampling = 1;
        dec.cinfo.do_block_smoothing = 1;
        // SAFETY: header read, parameters set; a progressive file is read whole here.
        unsafe { ffi::jpeg_start_decompress(&mut dec.cinfo) };
        let channels = components as usize;
        if (dec.cinfo.output_width, dec.cinfo.output_height) != (w, h)
            || dec.cinfo.output_components != components
        {
            return Err(corrupt("decoder output does not match the header"));
        }
        let stride = w as usize * channels;
        let mut pixels = vec![0u8; stride * h as usize];
        let mut rows: Vec<*mut u8> = pixels
            .chunks_exact_mut(stride)
            .map(|r| r.as_mut_ptr())
            .collect();
        while dec.cinfo.output_scanline < h {
            let next = dec.cinfo.output_scanline as usize;
            // SAFETY: `rows[next..]` point at distinct rows of `stride` bytes in `pixels`,
            // and libjpeg writes at most `h - next` rows of `stride` bytes.
            let got = unsafe {
                ffi::jpeg_read_scanlines(&mut dec.cinfo, rows[next..].as_mut_ptr(), h - next as u32)
            };
            if got == 0 {
                return Err(corrupt("decoder stopped before the last row"));
            }
        }
        dec.session.tolerate_eof.set(true);
        // SAFETY: all scanlines read; this consumes the rest up to EOI. Fatal errors in what
        // follows the last scan still fail, as they do in Pillow.
        unsafe { ffi::jpeg_finish_decompress(&mut dec.cinfo) };
        drop(dec);
        Ok(match out {
            ffi::J_COLOR_SPACE::JCS_GRAYSCALE => {
                PilImage::L(GrayImage::from_raw(w, h, pixels).expect("sized above"))
            }
            ffi::J_COLOR_SPACE::JCS_CMYK => {
                // Stored samples are Adobe-inverted (255 = no ink); Pillow's "CMYK;I" flips them.
                for v in &mut pixels {
                    *v = 255 - *v;
                }
                PilImage::Cmyk(CmykImage::from_raw(w, h, pixels).expect("sized above"))
            }
            _ => PilImage::Rgb(RgbImage::from_raw(w, h, pixels).expect("sized above")),
        })
    })
}
