//! The decision order for a representation (RFC 9110): the content coding, the preconditions
//! (section 13.2.2), then ranges (GET only, from the identity), then the answer: with the head
//! when small, else a [`Stream`] (or, for a large compressed variant, [`Compressing`]).

use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use weft_core::{BodyKind, Method, RequestHead};

use super::lookup::Refusal;
use super::representation::{date_seconds, Body, Memory, Origin, Representation, TEXT};
use super::stream::{Compressing, Piece, Stream};
use super::{fnv1a, INLINE_MAX, WHOLE_MAX};
use crate::compressor::{self, variant_tag, Compressor, Negotiation, VARY};
use crate::conditional::{self, Precondition};
use crate::deflate_encoder::Coding;
use crate::range::{self, ByteRange, RangeOutcome};
use crate::{AppError, Output, Responder};

/// What the service answers: `None` when the response went out whole, else the responder
/// that sends the rest of its body.
pub(super) type Answer = Result<Option<Box<dyn Responder>>, AppError>;

pub(super) fn refuse(out: &mut Output<'_>, refusal: Refusal) -> Answer {
    let (status, body): (u16, &[u8]) = match refusal {
        Refusal::NotFound => (404, b"not found\n"),
        Refusal::Forbidden => (403, b"forbidden\n"),
    };
    out.full(status, &[("Content-Type", TEXT)], body)?;
    Ok(None)
}

/// `/dir` -> `301 /dir/`, keeping the query.
pub(super) fn redirect_to_dir(head: &RequestHead<'_>, out: &mut Output<'_>) -> Answer {
    let location = match head.query() {
        Some(query) => format!("{}/?{query}", head.path()),
        None => format!("{}/", head.path()),
    };
    let headers: [(&str, &[u8]); 2] = [("Location", location.as_bytes()), ("Content-Type", TEXT)];
    out.full(301, &headers, b"moved permanently\n")?;
    Ok(None)
}

/// Appends the validator and cache fields every file response carries (304 included).
fn push_validators<'h>(headers: &mut Vec<(&'static str, &'h [u8])>, rep: &'h Representation<'_>) {
    if let Some(lm) = &rep.last_modified {
        headers.push(("Last-Modified", lm.as_bytes()));
    }
    if let Some(etag) = &rep.validators.etag {
        headers.push(("ETag", etag.as_bytes()));
    }
    headers.push(("Cache-Control", rep.cache_control.as_bytes()));
    if rep.vary {
        headers.push(VARY);
    }
}

/// The preconditions of the request against `rep`'s validators: `Some` when they answered
/// (`304` or `412`), `None` to go on.
pub(super) fn preconditions(
    head: &RequestHead<'_>,
    rep: &Representation<'_>,
    out: &mut Output<'_>,
) -> Option<Answer> {
    match conditional::evaluate(&head.headers, head.method, &rep.validators) {
        Precondition::Proceed => None,
        Precondition::NotModified => {
            let mut headers = Vec::with_capacity(4);
            push_validators(&mut headers, rep);
            Some(out.full(304, &headers, b"").map(|()| None))
        }
        Precondition::Failed => Some(
            out.full(412, &[("Content-Type", TEXT)], b"precondition failed\n")
                .map(|()| None),
        ),
    }
}

/// What a `200` or `206` says besides the validators, and its body as pieces.
struct Plan {
    status: u16,
    /// Instead of the representation's (multipart).
    content_type: Option<String>,
    content_range: Option<String>,
    pieces: Vec<Piece>,
    len: u64,
}

/// Answers a representation: the content coding, preconditions, then ranges (GET only, from
/// the identity), then the body.
pub(super) fn respond(
    head: &RequestHead<'_>,
    mut rep: Representation<'_>,
    comp: &Compressor,
    out: &mut Output<'_>,
) -> Answer {
    if !matches!(rep.origin, Origin::Page) {
        // A range is served from the identity bytes (when the client accepts them).
        let range = head.method == Method::Get && head.headers.get("range").is_some();
        match comp.negotiate(head, rep.content_type.as_bytes(), Some(rep.len), range) {
            Negotiation::Fixed => {}
            Negotiation::Identity => rep.vary = true,
            Negotiation::NotAcceptable => {
                compressor::not_acceptable(out)?;
                return Ok(None);
            }
            Negotiation::Encode(coding) => return respond_encoded(head, rep, coding, comp, out),
        }
    }
    if let Some(answer) = preconditions(head, &rep, out) {
        return answer;
    }
    let Some(plan) = plan(head, &rep, out) else {
        let range = format!("bytes */{}", rep.len);
        let mut headers: Vec<(&str, &[u8])> =
            vec![("Content-Range", range.as_bytes()), ("Content-Type", TEXT)];
        if rep.vary {
            headers.push(VARY);
        }
        out.full(416, &headers, b"range not satisfiable\n")?;
        return Ok(None);
    };
    let body = rep.take_body();
    let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(7);
    let content_type = plan.content_type.as_deref().unwrap_or(&rep.content_type);
    headers.push(("Content-Type", content_type.as_bytes()));
    if let Some(range) = &plan.content_range {
        headers.push(("Content-Range", range.as_bytes()));
    }
    push_validators(&mut headers, &rep);
    headers.push(("Accept-Ranges", b"bytes"));
    let is_head = head.method == Method::Head;
    send_body(
        out,
        plan.status,
        &headers,
        is_head,
        body,
        plan.pieces,
        plan.len,
    )
}

/// The range decision as a plan for the body; `None` when the range is not satisfiable.
fn plan(head: &RequestHead<'_>, rep: &Representation<'_>, out: &Output<'_>) -> Option<Plan> {
    let plan = match range_outcome(head, rep, out) {
        RangeOutcome::Full => Plan {
            status: 200,
            content_type: None,
            content_range: None,
            pieces: vec![Piece::Range(0, rep.len)],
            len: rep.len,
        },
        RangeOutcome::Unsatisfiable => return None,
        RangeOutcome::Partial(ranges) => match ranges.as_slice() {
            [one] => Plan {
                status: 206,
                content_type: None,
                content_range: Some(content_range(one, rep.len)),
                pieces: vec![Piece::Range(one.start, one.len())],
                len: one.len(),
            },
            _ => {
                let boundary = boundary(rep, &ranges);
                let pieces = multipart_pieces(&ranges, rep.len, &rep.content_type, &boundary);
                Plan {
                    status: 206,
                    content_type: Some(format!("multipart/byteranges; boundary={boundary}")),
                    content_range: None,
                    len: pieces.iter().map(Piece::len).sum(),
                    pieces,
                }
            }
        },
    };
    Some(plan)
}

/// Sends a response whose body is `pieces` of `body`, `len` bytes in all: only the head for
/// HEAD (or an empty body), the body with the head when small, else streamed in bounded
/// chunks.
fn send_body(
    out: &mut Output<'_>,
    status: u16,
    headers: &[(&str, &[u8])],
    is_head: bool,
    body: Body,
    pieces: Vec<Piece>,
    len: u64,
) -> Answer {
    if is_head || len == 0 {
        out.head(status, headers, BodyKind::Length(len))?;
        out.end()?;
        return Ok(None);
    }
    let small = len <= INLINE_MAX && usize::try_from(len).is_ok_and(|n| n <= out.room());
    if !small {
        out.head(status, headers, BodyKind::Length(len))?;
        return Ok(Some(Box::new(Stream::new(body, pieces))));
    }
    // In memory and one piece: straight from there, with the head, in one go.
    if let (Body::Memory(memory), [Piece::Range(start, n)]) = (&body, pieces.as_slice()) {
        let start = usize::try_from(*start).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(*n).unwrap_or(usize::MAX));
        let Some(bytes) = memory.as_slice().get(start..end) else {
            return Err(AppError::Internal("range outside the bytes in memory"));
        };
        out.full(status, headers, bytes)?;
        return Ok(None);
    }
    // Small: read it all now and send head and body in one go.
    let bytes = Stream::new(body, pieces).read_all(len)?;
    out.full(status, headers, &bytes)?;
    Ok(None)
}

/// Answers the compressed variant of a representation: its own `ETag` (the identity's with
/// `-gzip`/`-deflate`, or the `.gz` sidecar's), preconditions against it, no ranges (no
/// `Accept-Ranges`), the body from a fresh `.gz` sidecar, the variant cache, compressed
/// whole (up to [`WHOLE_MAX`]: `Content-Length`) or compressed while sent (chunked).
fn respond_encoded(
    head: &RequestHead<'_>,
    mut rep: Representation<'_>,
    coding: Coding,
    comp: &Compressor,
    out: &mut Output<'_>,
) -> Answer {
    rep.vary = true;
    let identity_tag = rep.validators.etag.clone();
    let sidecar = match (&rep.origin, coding) {
        (Origin::Disk { path, mtime }, Coding::Gzip) => fresh_sidecar(path, *mtime),
        _ => None,
    };
    rep.validators.etag = identity_tag.as_ref().map(|tag| match &sidecar {
        Some((_, meta)) => Arc::from(sidecar_tag(tag, meta)),
        None => Arc::from(variant_tag(tag.as_bytes(), coding)),
    });
    if let Some(answer) = preconditions(head, &rep, out) {
        return answer;
    }
    let body = rep.take_body();
    let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(7);
    headers.push(("Content-Type", rep.content_type.as_bytes()));
    headers.push(("Content-Encoding", coding.name().as_bytes()));
    push_validators(&mut headers, &rep);
    let is_head = head.method == Method::Head;
    if let Some((file, meta)) = sidecar {
        let len = meta.len();
        return send_body(
            out,
            200,
            &headers,
            is_head,
            Body::File(file),
            whole(len),
            len,
        );
    }
    if rep.len <= WHOLE_MAX {
        let key = rep.origin.key();
        // Cached only with a tag to check it by, and (for files) once the file has not
        // changed for two seconds: coarse timestamps could hide a rewrite within one tick.
        let settled = rep
            .validators
            .last_modified
            .is_none_or(|lm| lm.saturating_add(2) <= date_seconds(out));
        let cache = match (&key, &identity_tag) {
            (Some(key), Some(tag)) if comp.caches() && settled => Some((key.as_ref(), tag)),
            _ => None,
        };
        let bytes = compress_whole(comp, coding, body, rep.len, cache)?;
        let len = bytes.len() as u64;
        let encoded = Body::Memory(Memory::Shared(bytes));
        return send_body(out, 200, &headers, is_head, encoded, whole(len), len);
    }
    // Large: compressed while it is sent; the length is not known beforehand.
    out.head(200, &headers, BodyKind::Stream)?;
    if is_head {
        out.end()?;
        return Ok(None);
    }
    Ok(Some(Box::new(Compressing {
        stream: Stream::new(body, whole(rep.len)),
        encoder: comp.encoder(coding),
        buf: Vec::new(),
    })))
}

/// All of a body of `len` bytes, as pieces.
fn whole(len: u64) -> Vec<Piece> {
    vec![Piece::Range(0, len)]
}

/// The compressed variant of all of `body` (`len` bytes): from the variant cache when `cache`
/// (key and identity tag) finds it there, else compressed now (and remembered under `cache`).
fn compress_whole(
    comp: &Compressor,
    coding: Coding,
    body: Body,
    len: u64,
    cache: Option<(&str, &Arc<str>)>,
) -> Result<Arc<[u8]>, AppError> {
    if let Some(bytes) = cache.and_then(|(key, tag)| comp.cached(key, coding, tag)) {
        return Ok(bytes);
    }
    let identity = Stream::new(body, whole(len)).read_all(len)?;
    let encoded: Arc<[u8]> = Arc::from(comp.compress(coding, &identity)?);
    if let Some((key, tag)) = cache {
        comp.remember(key, coding, tag, &encoded);
    }
    Ok(encoded)
}

/// The precompressed `PATH.gz` next to a file, when it is a regular file (not a link) at least
/// as new as the file.
fn fresh_sidecar(path: &Path, mtime: Option<SystemTime>) -> Option<(File, Metadata)> {
    let mtime = mtime?;
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    let sidecar = PathBuf::from(name);
    if !std::fs::symlink_metadata(&sidecar).ok()?.is_file() {
        return None;
    }
    let file = File::open(&sidecar).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.modified().ok()? < mtime {
        return None;
    }
    Some((file, meta))
}

/// The tag of a sidecar variant: the identity's tag plus the sidecar's size and mtime, so it
/// changes with either file.
fn sidecar_tag(identity: &str, sidecar: &Metadata) -> String {
    let core = identity.strip_suffix('"').unwrap_or(identity);
    let mtime = sidecar
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    format!(
        "{core}-gzip-{:x}-{:x}-{:x}\"",
        sidecar.len(),
        mtime.as_secs(),
        mtime.subsec_nanos()
    )
}

/// The range decision for a GET (HEAD and others ignore `Range`, RFC 9110 section 14.2).
fn range_outcome(
    head: &RequestHead<'_>,
    rep: &Representation<'_>,
    out: &Output<'_>,
) -> RangeOutcome {
    if head.method != Method::Get {
        return RangeOutcome::Full;
    }
    let mut fields = head.headers.get_all("range");
    let Some(value) = fields.next() else {
        return RangeOutcome::Full;
    };
    if fields.next().is_some() {
        // Range is not a list field: two of them is an invalid request, ignored.
        return RangeOutcome::Full;
    }
    if head.headers.get("if-range").is_some()
        && !conditional::if_range_holds(&head.headers, &rep.validators, date_seconds(out))
    {
        return RangeOutcome::Full;
    }
    range::evaluate(value, rep.len)
}

fn content_range(r: &ByteRange, len: u64) -> String {
    format!("bytes {}-{}/{}", r.start, r.end, len)
}

/// A multipart boundary that is the same for the same representation and ranges (so answers
/// are reproducible) and unlikely to occur in the content.
fn boundary(rep: &Representation<'_>, ranges: &[ByteRange]) -> String {
    let tag = rep.validators.etag.as_deref().unwrap_or("");
    let mut spans = Vec::with_capacity(ranges.len() * 16);
    for r in ranges {
        spans.extend_from_slice(&r.start.to_le_bytes());
        spans.extend_from_slice(&r.end.to_le_bytes());
    }
    format!(
        "weft-{:016x}",
        fnv1a(&[tag.as_bytes(), &rep.len.to_le_bytes(), &spans])
    )
}

/// The body of a `multipart/byteranges` response (RFC 9110 section 14.6) as pieces: each
/// part's header section, then its bytes; the closing delimiter last.
fn multipart_pieces(
    ranges: &[ByteRange],
    len: u64,
    content_type: &str,
    boundary: &str,
) -> Vec<Piece> {
    let mut pieces = Vec::with_capacity(ranges.len() * 2 + 1);
    for (i, r) in ranges.iter().enumerate() {
        let lead = if i == 0 { "" } else { "\r\n" };
        let part_head = format!(
            "{lead}--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
            content_range(r, len)
        );
        pieces.push(Piece::Bytes(part_head.into_bytes()));
        pieces.push(Piece::Range(r.start, r.len()));
    }
    pieces.push(Piece::Bytes(format!("\r\n--{boundary}--\r\n").into_bytes()));
    pieces
}
