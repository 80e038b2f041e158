//! Response compression: the policy (level, size threshold, which types), the negotiation of
//! one response, a bounded cache of compressed variants, and helpers that handlers call.
//!
//! It is a helper handlers call, not a middleware: what a compressed variant is depends on
//! the handler's knowledge (its validators, whether a range applies, whether the bytes can be
//! cached, whether a precompressed file exists), so the handler negotiates and decides.
//! Three shapes are covered:
//!
//! - [`Compressor::full`]: any response held in memory (the `Output::full` shape);
//! - [`Compressor::stream`] + [`BodyEncoder`]: any streamed body (a responder's `data` calls
//!   go through the encoder, with a sync flush per produced piece when asked);
//! - the static file service, which also keeps per-variant validators, precompressed `.gz`
//!   sidecars and the variant cache (`static_files/`).
//!
//! Every response whose coding was negotiated carries `Vary: Accept-Encoding`, compressed or
//! not; responses of types that are never compressed do not.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex};

use weft_core::{BodyKind, RequestHead};

use crate::accept_encoding::{compressible_type, Choice, Preferences};
use crate::deflate_encoder::{compress_all, Coding, Encoder, Flush};
use crate::file_cache::Fnv;
use crate::{AppError, Output};

/// The `Vary` field of a negotiated response.
pub const VARY: (&str, &[u8]) = ("Vary", b"Accept-Encoding");

/// The default level: zlib's default, a good ratio at a moderate cost.
pub const DEFAULT_LEVEL: u8 = 6;
/// The default threshold: below about one TCP segment compression saves no round trip.
pub const DEFAULT_MIN_SIZE: u64 = 1024;
/// The default memory for compressed variants of one event loop.
pub const DEFAULT_CACHE_BYTES: usize = 16 * 1024 * 1024;
/// Most entries in the variant cache.
pub const MAX_CACHE_ENTRIES: usize = 1024;

/// How responses are compressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompressOptions {
    /// 1 (fastest) to 9 (best; 10 is miniz's slowest); 0: compression off (no negotiation, no
    /// `Vary`, no 406).
    pub level: u8,
    /// Bodies shorter than this are sent as they are (unless the client refuses the identity).
    pub min_size: u64,
    /// Bytes of compressed file variants kept in memory (0: every request compresses).
    pub cache_bytes: usize,
}

impl Default for CompressOptions {
    fn default() -> CompressOptions {
        CompressOptions {
            level: DEFAULT_LEVEL,
            min_size: DEFAULT_MIN_SIZE,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// What to do with one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Negotiation {
    /// Not negotiable (compression off, a type never compressed): as it is, no `Vary`.
    Fixed,
    /// The identity, with `Vary: Accept-Encoding`.
    Identity,
    /// This coding, with `Content-Encoding` and `Vary: Accept-Encoding`.
    Encode(Coding),
    /// 406: the client excludes the identity and every coding weft has.
    NotAcceptable,
}

/// The compression policy and the variant cache (one per event loop, like the file cache).
#[derive(Debug)]
pub struct Compressor {
    options: CompressOptions,
    cache: VariantCache,
}

impl Compressor {
    pub fn new(options: CompressOptions) -> Compressor {
        let cache = VariantCache::new(options.cache_bytes);
        Compressor { options, cache }
    }

    pub fn options(&self) -> &CompressOptions {
        &self.options
    }

    /// Whether compression is on at all.
    pub fn enabled(&self) -> bool {
        self.options.level > 0
    }

    /// Decides the coding of a response of `content_type` whose body is `len` bytes (`None`:
    /// unknown, a stream). `identity_first`: send the identity whenever the client accepts
    /// it (range requests are served from the identity bytes).
    pub fn negotiate(
        &self,
        head: &RequestHead<'_>,
        content_type: &[u8],
        len: Option<u64>,
        identity_first: bool,
    ) -> Negotiation {
        if !self.enabled() || !compressible_type(content_type) {
            return Negotiation::Fixed;
        }
        let prefs = Preferences::parse(head.headers.get_all("accept-encoding"));
        let wanted = !identity_first && len.is_none_or(|n| n >= self.options.min_size);
        match prefs.choose(wanted) {
            Choice::Identity => Negotiation::Identity,
            Choice::Encode(c) => Negotiation::Encode(c),
            Choice::NotAcceptable => Negotiation::NotAcceptable,
        }
    }

    /// A new encoder at the configured level.
    pub fn encoder(&self, coding: Coding) -> Encoder {
        Encoder::new(coding, self.options.level)
    }

    /// `bytes` compressed whole.
    pub fn compress(&self, coding: Coding, bytes: &[u8]) -> Result<Vec<u8>, AppError> {
        Ok(compress_all(coding, self.options.level, bytes)?)
    }

    /// The cached variant of `key` in `coding`, if it was made from the representation whose
    /// (identity) tag is `etag`.
    pub fn cached(&self, key: &str, coding: Coding, etag: &str) -> Option<Arc<[u8]>> {
        self.cache.get(key, coding, etag)
    }

    /// Keeps a variant (when the cache is on and has room for it).
    pub fn remember(&self, key: &str, coding: Coding, etag: &Arc<str>, bytes: &Arc<[u8]>) {
        self.cache.insert(key, coding, etag, bytes);
    }

    /// Whether variants are cached at all.
    pub fn caches(&self) -> bool {
        self.options.cache_bytes > 0
    }

    /// Sends a response held in memory, compressed when negotiated. Left as it is: statuses
    /// other than 200, responses that set `Content-Encoding` themselves (the handler's way to
    /// opt out, or its own coding), types never compressed. An `ETag` of the handler becomes
    /// the variant's own tag (`"x"` -> `"x-gzip"`). HEAD gets the same fields as GET.
    /// Conditional requests stay the handler's business: one that evaluates them should call
    /// [`Compressor::negotiate`] first and compare against [`variant_tag`] (as the static file
    /// service does).
    pub fn full(
        &self,
        head: &RequestHead<'_>,
        out: &mut Output<'_>,
        status: u16,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> Result<(), AppError> {
        let Some(content_type) = self.candidate(status, headers) else {
            return out.full(status, headers, body);
        };
        match self.negotiate(head, content_type, Some(body.len() as u64), false) {
            Negotiation::Fixed => out.full(status, headers, body),
            Negotiation::Identity => {
                let mut all = headers.to_vec();
                all.push(VARY);
                out.full(status, &all, body)
            }
            Negotiation::NotAcceptable => not_acceptable(out),
            Negotiation::Encode(coding) => {
                let encoded = self.compress(coding, body)?;
                let mut tags = Vec::new();
                let mut all: Vec<(&str, &[u8])> = Vec::with_capacity(headers.len() + 2);
                for &(name, value) in headers {
                    if name.eq_ignore_ascii_case("etag") {
                        tags.push((name, variant_tag(value, coding)));
                    } else {
                        all.push((name, value));
                    }
                }
                for (name, tag) in &tags {
                    all.push((name, tag.as_bytes()));
                }
                all.push(("Content-Encoding", coding.name().as_bytes()));
                all.push(VARY);
                out.full(status, &all, &encoded)
            }
        }
    }

    /// Starts a streamed response (`BodyKind::Stream`), compressed when negotiated; the body
    /// then goes through the returned [`BodyEncoder`]. `None`: the exchange is already
    /// answered (a 406). Same rules as [`Compressor::full`].
    pub fn stream(
        &self,
        head: &RequestHead<'_>,
        out: &mut Output<'_>,
        status: u16,
        headers: &[(&str, &[u8])],
    ) -> Result<Option<BodyEncoder>, AppError> {
        let negotiation = match self.candidate(status, headers) {
            Some(content_type) => self.negotiate(head, content_type, None, false),
            None => Negotiation::Fixed,
        };
        let mut all = headers.to_vec();
        let encoder = match negotiation {
            Negotiation::Fixed => None,
            Negotiation::Identity => {
                all.push(VARY);
                None
            }
            Negotiation::NotAcceptable => {
                not_acceptable(out)?;
                return Ok(None);
            }
            Negotiation::Encode(coding) => {
                all.push(("Content-Encoding", coding.name().as_bytes()));
                all.push(VARY);
                Some(self.encoder(coding))
            }
        };
        out.head(status, &all, BodyKind::Stream)?;
        Ok(Some(BodyEncoder {
            encoder,
            buf: Vec::new(),
        }))
    }

    /// The `Content-Type` of a response that may be compressed.
    fn candidate<'h>(&self, status: u16, headers: &[(&str, &'h [u8])]) -> Option<&'h [u8]> {
        if status != 200
            || headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-encoding"))
        {
            return None;
        }
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|&(_, v)| v)
    }
}

/// The 406 answer: nothing acceptable is left and the identity is excluded.
pub fn not_acceptable(out: &mut Output<'_>) -> Result<(), AppError> {
    let headers: [(&str, &[u8]); 2] = [("Content-Type", b"text/plain; charset=utf-8"), VARY];
    out.full(406, &headers, b"not acceptable: no content coding left\n")
}

/// The tag of a compressed variant: the identity's tag with `-<coding>` inside the quotes
/// (`"c-65920080-75bcd15"` -> `"c-65920080-75bcd15-gzip"`; a weak `W/"x"` stays weak). A
/// value that is not a quoted tag gets the suffix appended as it is.
pub fn variant_tag(tag: &[u8], coding: Coding) -> String {
    let text = String::from_utf8_lossy(tag);
    match text.strip_suffix('"') {
        Some(open) => format!("{open}-{}\"", coding.name()),
        None => format!("{text}-{}", coding.name()),
    }
}

/// The body of a streamed response, through the negotiated encoder (or as it is).
#[derive(Debug)]
pub struct BodyEncoder {
    encoder: Option<Encoder>,
    buf: Vec<u8>,
}

impl BodyEncoder {
    /// Whether the body is being compressed.
    pub fn compressing(&self) -> bool {
        self.encoder.is_some()
    }

    /// Sends a piece of the body. With `flush` the client can decode everything sent so far
    /// (a sync flush: a live stream shows each piece when it is produced); without, the
    /// compressor may hold bytes back for a better ratio. Output is bounded by the input of
    /// this call, so the caller's backpressure holds through the encoder.
    pub fn data(
        &mut self,
        out: &mut Output<'_>,
        bytes: &[u8],
        flush: bool,
    ) -> Result<(), AppError> {
        let Some(encoder) = self.encoder.as_mut() else {
            return if bytes.is_empty() {
                Ok(())
            } else {
                out.data(bytes)
            };
        };
        self.buf.clear();
        let mode = if flush { Flush::Sync } else { Flush::None };
        encoder.write(bytes, mode, &mut self.buf)?;
        if self.buf.is_empty() {
            return Ok(());
        }
        out.data(&self.buf)
    }

    /// Ends the body (the encoder's last bytes, then the end of the response).
    pub fn end(&mut self, out: &mut Output<'_>) -> Result<(), AppError> {
        if let Some(encoder) = self.encoder.as_mut() {
            self.buf.clear();
            encoder.finish(&mut self.buf)?;
            if !self.buf.is_empty() {
                out.data(&self.buf)?;
            }
        }
        out.end()
    }
}

/// Compressed variants by key (a file's path) and coding, each remembered with the tag of the
/// identity it was made from: an entry is used only while that tag is current, so a changed
/// file is compressed again. Bounded by bytes and [`MAX_CACHE_ENTRIES`]; arbitrary entries
/// are evicted when full.
#[derive(Debug)]
struct VariantCache {
    max_bytes: usize,
    inner: Mutex<CacheInner>,
}

type Variants = [Option<(Arc<str>, Arc<[u8]>)>; 2];

/// Keys are paths of existing files (a client cannot choose them freely): an unkeyed hash is
/// fine, and std's random seeding would add a `wasi:random` import to the component.
#[derive(Debug, Default)]
struct CacheInner {
    map: HashMap<String, Variants, BuildHasherDefault<Fnv>>,
    entries: usize,
    bytes: usize,
}

impl VariantCache {
    fn new(max_bytes: usize) -> VariantCache {
        VariantCache {
            max_bytes,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    fn get(&self, key: &str, coding: Coding, etag: &str) -> Option<Arc<[u8]>> {
        if self.max_bytes == 0 {
            return None;
        }
        let inner = self.inner.lock().ok()?;
        let (tag, bytes) = inner.map.get(key)?.get(coding.index())?.as_ref()?;
        (**tag == *etag).then(|| Arc::clone(bytes))
    }

    fn insert(&self, key: &str, coding: Coding, etag: &Arc<str>, bytes: &Arc<[u8]>) {
        // One entry may take at most an eighth of the cache.
        if bytes.len() > self.max_bytes / 8 {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let inner = &mut *inner;
        // Drop what this key and coding held before.
        if let Some(slot) = inner
            .map
            .get_mut(key)
            .and_then(|v| v.get_mut(coding.index()))
        {
            if let Some((_, old)) = slot.take() {
                inner.bytes -= old.len();
                inner.entries -= 1;
            }
        }
        while inner.bytes + bytes.len() > self.max_bytes || inner.entries >= MAX_CACHE_ENTRIES {
            let Some(victim) = inner.map.keys().next().cloned() else {
                break;
            };
            if let Some(variants) = inner.map.remove(&victim) {
                for (_, old) in variants.into_iter().flatten() {
                    inner.bytes -= old.len();
                    inner.entries -= 1;
                }
            }
        }
        let variants = inner.map.entry(key.to_string()).or_default();
        if let Some(slot) = variants.get_mut(coding.index()) {
            *slot = Some((Arc::clone(etag), Arc::clone(bytes)));
            inner.bytes += bytes.len();
            inner.entries += 1;
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use crate::deflate_encoder::tests::decode;
    use crate::testing::{self, Handler, Response};
    use crate::Produce;

    /// Runs `handler` for the request `req` through the shared driver; the response.
    fn run(
        req: &str,
        handler: impl Fn(&RequestHead<'_>, &mut Output<'_>) -> Result<(), AppError>,
    ) -> Response {
        let app = Handler(|head: &RequestHead<'_>, out: &mut Output<'_>| {
            handler(head, out).map(|()| None)
        });
        testing::run(&app, req.as_bytes()).response()
    }

    /// Head (status line and fields) and decoded body.
    fn split(r: Response) -> (String, Vec<u8>) {
        (r.head, r.body)
    }

    const TEXT: &[u8] = b"text/plain; charset=utf-8";

    fn text() -> Vec<u8> {
        (0..400)
            .flat_map(|i| format!("{i:04} words words\n").into_bytes())
            .collect()
    }

    #[test]
    fn full_compresses_negotiated_bodies() {
        let c = Compressor::new(CompressOptions::default());
        let body = text();
        for (ae, coding) in [
            ("gzip", Some(Coding::Gzip)),
            ("deflate", Some(Coding::Deflate)),
            ("br", None),
        ] {
            let raw = run(
                &format!("GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: {ae}\r\n\r\n"),
                |head, out| {
                    c.full(
                        head,
                        out,
                        200,
                        &[("Content-Type", TEXT), ("ETag", b"\"v1\"")],
                        &body,
                    )
                },
            );
            let (h, b) = split(raw);
            assert!(h.contains("\r\nVary: Accept-Encoding"), "{h}");
            match coding {
                Some(coding) => {
                    assert!(h.contains(&format!("\r\nContent-Encoding: {}", coding.name())));
                    assert!(h.contains(&format!("\r\nETag: \"v1-{}\"", coding.name())));
                    assert!(h.contains(&format!("\r\nContent-Length: {}", b.len())));
                    assert_eq!(decode(coding, &b), body);
                }
                None => {
                    assert!(!h.contains("Content-Encoding"));
                    assert!(h.contains("\r\nETag: \"v1\""));
                    assert_eq!(b, body);
                }
            }
        }
    }

    #[test]
    fn full_leaves_alone_what_it_must() {
        let c = Compressor::new(CompressOptions::default());
        let body = text();
        let req = "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n";
        // Small body: identity, but negotiated (Vary).
        let (h, b) = split(run(req, |head, out| {
            c.full(head, out, 200, &[("Content-Type", TEXT)], b"tiny")
        }));
        assert!(h.contains("Vary: Accept-Encoding") && !h.contains("Content-Encoding"));
        assert_eq!(b, b"tiny");
        // A compressed type: not negotiable.
        let (h, _) = split(run(req, |head, out| {
            c.full(head, out, 200, &[("Content-Type", b"image/png")], &body)
        }));
        assert!(!h.contains("Vary") && !h.contains("Content-Encoding"));
        // The handler set its own coding: opted out.
        let (h, b) = split(run(req, |head, out| {
            c.full(
                head,
                out,
                200,
                &[("Content-Type", TEXT), ("Content-Encoding", b"identity")],
                &body,
            )
        }));
        assert!(!h.contains("Vary") && b == body);
        // Not a 200.
        let (h, _) = split(run(req, |head, out| {
            c.full(head, out, 404, &[("Content-Type", TEXT)], &body)
        }));
        assert!(!h.contains("Vary"));
        // Level 0: off.
        let off = Compressor::new(CompressOptions {
            level: 0,
            ..CompressOptions::default()
        });
        let (h, _) = split(run(req, |head, out| {
            off.full(head, out, 200, &[("Content-Type", TEXT)], &body)
        }));
        assert!(!h.contains("Vary") && !h.contains("Content-Encoding"));
        // Identity excluded, nothing else: 406.
        let raw = run(
            "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: identity;q=0, br\r\n\r\n",
            |head, out| c.full(head, out, 200, &[("Content-Type", TEXT)], &body),
        );
        assert_eq!(raw.status, 406);
    }

    #[test]
    fn stream_flushes_each_piece() {
        let c = Compressor::new(CompressOptions::default());
        let lines: Vec<String> = (1..=5).map(|i| format!("{i} sheep\n")).collect();
        let raw = run(
            "GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n",
            |head, out| {
                let mut enc = c
                    .stream(head, out, 200, &[("Content-Type", TEXT)])?
                    .unwrap();
                assert!(enc.compressing());
                for l in &lines {
                    enc.data(out, l.as_bytes(), true)?;
                }
                enc.end(out)
            },
        );
        let chunks = raw.chunks.clone().unwrap();
        let (h, _) = split(raw);
        assert!(h.contains("Transfer-Encoding: chunked") && h.contains("Content-Encoding: gzip"));
        // One chunk per line, plus the end of the stream.
        assert_eq!(chunks.len(), lines.len() + 1);
        let mut state =
            miniz_oxide::inflate::stream::InflateState::new(miniz_oxide::DataFormat::Raw);
        let mut seen = Vec::new();
        for (i, chunk) in chunks.iter().enumerate().take(lines.len()) {
            let input = if i == 0 { &chunk[10..] } else { &chunk[..] };
            let mut buf = vec![0; 256];
            let r = miniz_oxide::inflate::stream::inflate(
                &mut state,
                input,
                &mut buf,
                miniz_oxide::MZFlush::None,
            );
            seen.extend_from_slice(&buf[..r.bytes_written]);
            assert_eq!(
                seen,
                lines[..=i].concat().as_bytes(),
                "line {i} decodable on arrival"
            );
        }
        assert_eq!(
            decode(Coding::Gzip, &chunks.concat()),
            lines.concat().as_bytes()
        );
        let _ = Produce::Done;
    }

    #[test]
    fn variant_tags() {
        assert_eq!(variant_tag(b"\"abc\"", Coding::Gzip), "\"abc-gzip\"");
        assert_eq!(
            variant_tag(b"W/\"abc\"", Coding::Deflate),
            "W/\"abc-deflate\""
        );
        assert_eq!(variant_tag(b"odd", Coding::Gzip), "odd-gzip");
    }

    #[test]
    fn cache_is_bounded_and_keyed_by_tag() {
        let cache = VariantCache::new(8 * 100);
        let tag: Arc<str> = Arc::from("\"t1\"");
        let bytes: Arc<[u8]> = Arc::from(vec![1u8; 100]);
        cache.insert("/a", Coding::Gzip, &tag, &bytes);
        assert!(cache.get("/a", Coding::Gzip, "\"t1\"").is_some());
        assert!(cache.get("/a", Coding::Gzip, "\"t2\"").is_none());
        assert!(cache.get("/a", Coding::Deflate, "\"t1\"").is_none());
        for i in 0..20 {
            cache.insert(&format!("/f{i}"), Coding::Gzip, &tag, &bytes);
            let inner = cache.inner.lock().unwrap();
            assert!(inner.bytes <= 800);
        }
        // Too big for one entry: not kept.
        let big: Arc<[u8]> = Arc::from(vec![0u8; 101]);
        cache.insert("/big", Coding::Gzip, &tag, &big);
        assert!(cache.get("/big", Coding::Gzip, "\"t1\"").is_none());
        // Replacing an entry keeps the count honest.
        let c2 = VariantCache::new(8 * 100);
        c2.insert("/a", Coding::Gzip, &tag, &bytes);
        c2.insert("/a", Coding::Gzip, &Arc::from("\"t2\""), &bytes);
        assert_eq!(c2.inner.lock().unwrap().bytes, 100);
        assert!(c2.get("/a", Coding::Gzip, "\"t2\"").is_some());
        // Off.
        let off = VariantCache::new(0);
        off.insert("/a", Coding::Gzip, &tag, &Arc::from(vec![]));
        assert!(off.get("/a", Coding::Gzip, "\"t1\"").is_none());
    }
}
