//! permessage-deflate (RFC 7692): the compressor of sent messages and the inflater of
//! received ones.

use miniz_oxide::deflate::core::{
    compress_to_output, create_comp_flags_from_zip_params, CompressionStrategy, CompressorOxide,
    TDEFLFlush, TDEFLStatus,
};
use miniz_oxide::inflate::stream::{inflate, InflateState, ZeroReset};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::error::WsError;
use super::handshake::DeflateConfig;
use super::utf8::Utf8Validator;

/// Messages shorter than this are sent uncompressed even with permessage-deflate (RFC 7692
/// section 6.1 allows it): deflate would not make them shorter.
pub(crate) const MIN_COMPRESSED_LEN: usize = 16;
/// What a sync flush ends with; stripped from sent messages and appended to received ones
/// (RFC 7692 section 7.2).
pub(crate) const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// The compression buffer is released once it has grown past this.
const KEEP_CAPACITY: usize = 1 << 20;

/// How far a message may grow while it is inflated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InflateLimit {
    /// `max_message`: passing it is 1009.
    pub(crate) max_message: usize,
    /// The driver's budget for the message: passing it (below `max_message`) is 1013.
    pub(crate) budget: usize,
}

/// The inflater of received messages: one raw deflate stream, created with the first
/// compressed message and kept across messages unless the client asked for no context
/// takeover.
#[derive(Default)]
pub(crate) struct Inflater {
    state: Option<Box<InflateState>>,
    /// The stream saw a final deflate block: it is reset before the next message.
    ended: bool,
}

impl Inflater {
    /// Inflates compressed bytes onto `message`, never letting it grow past the limit (plus
    /// one byte, to notice): a small input that inflates to a huge message fails as soon as
    /// it passes the limit, with no more memory than the limit.
    ///
    /// Inflated text (`utf8` given) is validated as it comes out, every piece, the last one
    /// included: the inflated bytes within the limit are judged before the limit and the
    /// stream's integrity, so the error a bad message reports does not depend on how its input
    /// was cut.
    pub(crate) fn inflate(
        &mut self,
        mut input: &[u8],
        message: &mut Vec<u8>,
        limit: InflateLimit,
        mut utf8: Option<&mut Utf8Validator>,
    ) -> Result<(), WsError> {
        let max = limit.max_message.min(limit.budget);
        let state = self
            .state
            .get_or_insert_with(|| InflateState::new_boxed(DataFormat::Raw));
        loop {
            let start = message.len();
            let room = max.saturating_add(1).saturating_sub(start);
            let spare = room.min(input.len().saturating_mul(4).max(4096));
            message.resize(start + spare, 0);
            let output = message.get_mut(start..).unwrap_or_default();
            let result = inflate(state, input, output, MZFlush::None);
            message.truncate(start + result.bytes_written);
            input = input.get(result.bytes_consumed..).unwrap_or(&[]);
            if let Some(utf8) = utf8.as_deref_mut() {
                let within = message.len().min(max);
                if let Some(new) = message.get(start..within) {
                    if utf8.feed(new).is_err() {
                        return Err(WsError::InvalidUtf8);
                    }
                }
            }
            if message.len() > max {
                return Err(if max == limit.max_message {
                    WsError::MessageTooLarge
                } else {
                    WsError::OverBudget
                });
            }
            match result.status {
                Ok(MZStatus::StreamEnd) => {
                    self.ended = true;
                    return Ok(());
                }
                Ok(_) => {}
                // No progress possible without more input.
                Err(MZError::Buf) => return Ok(()),
                Err(_) => return Err(WsError::InvalidCompressedData),
            }
            let output_full = result.bytes_written == spare;
            let stalled = result.bytes_consumed == 0 && result.bytes_written == 0;
            if (input.is_empty() && !output_full) || stalled {
                return Ok(());
            }
        }
    }

    /// A compressed message ended: the stream starts over when the client does not keep its
    /// context (`no_context_takeover`) or it ended with a final block.
    pub(crate) fn end_message(&mut self, no_context_takeover: bool) {
        if no_context_takeover || self.ended {
            if let Some(state) = self.state.as_mut() {
                state.reset_as(ZeroReset);
            }
            self.ended = false;
        }
    }
}

/// The compressor of sent messages, created with the first compressed one, and its reusable
/// output buffer.
#[derive(Default)]
pub(crate) struct Compressor {
    state: Option<Box<CompressorOxide>>,
    out: Vec<u8>,
}

impl Compressor {
    /// Compresses a message (RFC 7692 section 7.2.1: a sync flush, its empty stored block
    /// removed). `None` when the compressor failed: it is reset (so later messages cannot
    /// refer to this one) and the message goes out uncompressed.
    ///
    /// miniz_oxide always compresses with a 32 KiB window. When the client limited the
    /// server's window (`server_max_window_bits` below 15), the RLE strategy is used: its
    /// matches are at distance 1, valid in any window, so the client can inflate with the
    /// window it asked for.
    pub(crate) fn compress(&mut self, payload: &[u8], deflate: &DeflateConfig) -> Option<&[u8]> {
        let compressor = self.state.get_or_insert_with(|| {
            let flags = if deflate.server_max_window_bits < 15 {
                // Level 2, not 1: level 1 takes a fast path that ignores the RLE flag.
                create_comp_flags_from_zip_params(2, -15, CompressionStrategy::RLE as i32)
            } else {
                create_comp_flags_from_zip_params(1, -15, CompressionStrategy::Default as i32)
            };
            Box::new(CompressorOxide::new(flags))
        });
        let compressed = &mut self.out;
        compressed.clear();
        let (status, consumed) =
            compress_to_output(compressor, payload, TDEFLFlush::Sync, |chunk| {
                compressed.extend_from_slice(chunk);
                true
            });
        let ok = status == TDEFLStatus::Okay
            && consumed == payload.len()
            && compressed.ends_with(&DEFLATE_TAIL);
        if ok {
            compressed.truncate(compressed.len() - DEFLATE_TAIL.len());
        }
        if !ok || deflate.server_no_context_takeover {
            compressor.reset();
        }
        ok.then_some(compressed.as_slice())
    }

    /// Releases the output buffer when a large message made it grow past its keep size.
    pub(crate) fn trim(&mut self) {
        if self.out.capacity() > KEEP_CAPACITY {
            self.out = Vec::new();
        }
    }

    /// Bytes held by the output buffer.
    pub(crate) fn capacity(&self) -> usize {
        self.out.capacity()
    }
}
