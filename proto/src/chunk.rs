//! Splitting a payload into ordered chunks and reassembling it with size checks.

use bytes::{Bytes, BytesMut};

use crate::common::v1::Chunk;
use crate::limits::{CHUNK_BYTES, MAX_STREAMED_PAYLOAD_BYTES};

/// Why a streamed payload could not be reassembled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("announced payload of {0} bytes exceeds the limit of {MAX_STREAMED_PAYLOAD_BYTES}")]
    TooLarge(u64),
    #[error("chunk at offset {got} arrived where offset {expected} was expected")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("chunks overflow the announced {total} bytes")]
    Overflow { total: u64 },
    #[error("stream ended after {got} of {total} bytes")]
    Truncated { got: u64, total: u64 },
    #[error("chunk received before its header")]
    NoHeader,
}

/// Splits `payload` into [`CHUNK_BYTES`] chunks without copying.
pub fn split(payload: Bytes) -> impl Iterator<Item = Chunk> {
    let len = payload.len();
    (0..len.div_ceil(CHUNK_BYTES)).map(move |i| {
        let start = i * CHUNK_BYTES;
        let end = (start + CHUNK_BYTES).min(len);
        Chunk {
            offset: start as u64,
            data: payload.slice(start..end),
        }
    })
}

/// Reassembles chunks of a payload whose total size was announced by a header.
#[derive(Debug)]
pub struct Assembler {
    total: u64,
    buf: BytesMut,
}

impl Assembler {
    pub fn new(total: u64) -> Result<Self, ChunkError> {
        if total > MAX_STREAMED_PAYLOAD_BYTES {
            return Err(ChunkError::TooLarge(total));
        }
        // Reserve at most one chunk up front: the announced size is not trusted for allocation.
        Ok(Self {
            total,
            buf: BytesMut::with_capacity((total as usize).min(CHUNK_BYTES)),
        })
    }

    pub fn push(&mut self, chunk: Chunk) -> Result<(), ChunkError> {
        let expected = self.buf.len() as u64;
        if chunk.offset != expected {
            return Err(ChunkError::OutOfOrder {
                expected,
                got: chunk.offset,
            });
        }
        if expected + chunk.data.len() as u64 > self.total {
            return Err(ChunkError::Overflow { total: self.total });
        }
        self.buf.extend_from_slice(&chunk.data);
        Ok(())
    }

    pub fn is_complete(&self) -> bool {
        self.buf.len() as u64 == self.total
    }

    pub fn finish(self) -> Result<Bytes, ChunkError> {
        if !self.is_complete() {
            return Err(ChunkError::Truncated {
                got: self.buf.len() as u64,
                total: self.total,
            });
        }
        Ok(self.buf.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_then_assemble_round_trips() {
        let payload: Bytes = (0..(CHUNK_BYTES * 2 + 17)).map(|i| i as u8).collect();
        let chunks: Vec<_> = split(payload.clone()).collect();
        assert_eq!(chunks.len(), 3);
        let mut a = Assembler::new(payload.len() as u64).unwrap();
        for c in chunks {
            a.push(c).unwrap();
        }
        assert_eq!(a.finish().unwrap(), payload);
    }

    #[test]
    fn empty_payload_has_no_chunks_and_assembles() {
        assert_eq!(split(Bytes::new()).count(), 0);
        assert_eq!(Assembler::new(0).unwrap().finish().unwrap(), Bytes::new());
    }

    #[test]
    fn rejects_out_of_order_overflow_truncation_and_huge_headers() {
        let mut a = Assembler::new(4).unwrap();
        let c = |offset, data: &'static [u8]| Chunk {
            offset,
            data: Bytes::from_static(data),
        };
        assert_eq!(
            a.push(c(2, b"ab")),
            Err(ChunkError::OutOfOrder {
                expected: 0,
                got: 2
            })
        );
        a.push(c(0, b"ab")).unwrap();
        assert_eq!(a.push(c(2, b"abc")), Err(ChunkError::Overflow { total: 4 }));
        assert_eq!(a.finish(), Err(ChunkError::Truncated { got: 2, total: 4 }));
        assert!(matches!(
            Assembler::new(MAX_STREAMED_PAYLOAD_BYTES + 1),
            Err(ChunkError::TooLarge(_))
        ));
    }
}
