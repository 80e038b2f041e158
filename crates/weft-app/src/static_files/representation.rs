//! What the service answers with: a [`Representation`] (type, length, validators, where its
//! bytes are, what it is for its compressed variants), and the validators of a file.

use std::borrow::Cow;
use std::fs::{File, Metadata};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::conditional::{self, Validators};
use crate::file_cache::Cached;
use crate::Output;

pub(super) const TEXT: &[u8] = b"text/plain; charset=utf-8";

/// A representation ready to be answered.
pub(super) struct Representation<'a> {
    pub content_type: Cow<'a, str>,
    pub cache_control: &'a str,
    pub len: u64,
    pub validators: Validators,
    /// `validators.last_modified` as an HTTP-date.
    pub last_modified: Option<Arc<str>>,
    pub body: Body,
    /// Where it comes from (the key of its compressed variants, its `.gz` sidecar).
    pub origin: Origin<'a>,
    /// Whether the coding was negotiated (`Vary: Accept-Encoding`).
    pub vary: bool,
}

impl<'a> Representation<'a> {
    /// `len` bytes of `body`; `Last-Modified` is formatted from the validators.
    pub fn new(
        content_type: Cow<'a, str>,
        cache_control: &'a str,
        len: u64,
        validators: Validators,
        body: Body,
        origin: Origin<'a>,
    ) -> Representation<'a> {
        let last_modified = validators.last_modified.map(|lm| Arc::from(http_date(lm)));
        Representation {
            content_type,
            cache_control,
            len,
            validators,
            last_modified,
            body,
            origin,
            vary: false,
        }
    }

    /// A small file from the memory cache (its `Last-Modified` text is kept there too).
    pub fn cached(c: Cached, cache_control: &'a str, origin: Origin<'a>) -> Representation<'a> {
        let validators = Validators {
            etag: Some(c.etag),
            last_modified: Some(c.last_modified),
        };
        Representation {
            content_type: c.content_type,
            cache_control,
            len: c.bytes.len() as u64,
            validators,
            // Formatted when it was cached.
            last_modified: Some(c.last_modified_text),
            body: Body::Memory(Memory::Shared(c.bytes)),
            origin,
            vary: false,
        }
    }

    /// The body, moved out (what is left describes the response: its header fields can
    /// borrow from it while the body goes to the responder).
    pub fn take_body(&mut self) -> Body {
        std::mem::replace(&mut self.body, Body::Memory(Memory::Static(&[])))
    }

    /// A page made here (a listing): no validators (it changes whenever what it shows does),
    /// never compressed as a file is; the bytes are sent by the caller.
    pub fn page(
        content_type: Cow<'a, str>,
        cache_control: &'a str,
        len: u64,
    ) -> Representation<'a> {
        let body = Body::Memory(Memory::Static(&[]));
        Representation::new(
            content_type,
            cache_control,
            len,
            Validators::default(),
            body,
            Origin::Page,
        )
    }
}

/// What a representation is, for its compressed variants.
pub(super) enum Origin<'a> {
    Embedded(&'static str),
    Disk {
        path: &'a Path,
        mtime: Option<SystemTime>,
    },
    /// Made here (a listing): not compressed.
    Page,
}

impl<'a> Origin<'a> {
    /// The file at `path` with its metadata.
    pub fn disk(path: &'a Path, meta: &Metadata) -> Origin<'a> {
        Origin::Disk {
            path,
            mtime: meta.modified().ok(),
        }
    }

    /// The key of the variant cache.
    pub fn key(&self) -> Option<Cow<'_, str>> {
        match self {
            Origin::Embedded(name) => Some(Cow::Owned(format!("embedded:{name}"))),
            Origin::Disk { path, .. } => Some(path.to_string_lossy()),
            Origin::Page => None,
        }
    }
}

/// Where the bytes of a representation come from.
pub(super) enum Body {
    File(File),
    Memory(Memory),
}

/// Bytes held in memory: an embedded file, a cached small file, a page made here.
#[derive(Clone)]
pub(super) enum Memory {
    Static(&'static [u8]),
    Shared(Arc<[u8]>),
}

impl Memory {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Memory::Static(b) => b,
            Memory::Shared(b) => b,
        }
    }
}

/// The `Date` of the response being built, in seconds since the epoch.
pub(super) fn date_seconds(out: &Output<'_>) -> u64 {
    conditional::parse_date(out.now().date.as_bytes()).unwrap_or(0)
}

/// `Last-Modified` as text.
pub(super) fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// `ETag` and `Last-Modified` of a file from its metadata (`etag_inode`: the inode number is
/// part of the tag, unix only); `now` is the response's `Date`.
pub(super) fn file_validators(meta: &Metadata, now: u64, etag_inode: bool) -> Validators {
    let Some(mtime) = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
    else {
        // No usable modification time: no validator can be trusted.
        return Validators::default();
    };
    let mut etag = format!(
        "\"{:x}-{:x}-{:x}",
        meta.len(),
        mtime.as_secs(),
        mtime.subsec_nanos()
    );
    #[cfg(unix)]
    if etag_inode {
        use std::os::unix::fs::MetadataExt;
        etag.push_str(&format!("-{:x}", meta.ino()));
    }
    #[cfg(not(unix))]
    let _ = etag_inode;
    etag.push('"');
    Validators {
        etag: Some(Arc::from(etag)),
        // Never later than the response's Date (RFC 9110 section 8.8.2.1).
        last_modified: Some(mtime.as_secs().min(now)),
    }
}
