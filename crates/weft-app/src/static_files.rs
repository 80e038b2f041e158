//! The static file service: maps request paths below a root directory (or onto the embedded
//! demo site), answers with validators, conditional requests and byte ranges, and streams
//! bodies in bounded chunks as the socket takes them.
//!
//! The full set of rules and decisions is in docs/STATIC.md; in short:
//! - methods: GET and HEAD; anything else is 405 with `Allow: GET, HEAD`;
//! - paths: [`crate::mapping`] (lexical, every target); on native targets a path that goes
//!   through a symbolic link must also resolve inside the (canonical) root; refused or missing
//!   paths are `404 not found`, unreadable files `403 forbidden`;
//! - dot names: unless `allow_dotfiles`, a path with a name starting with `.` is that same 404
//!   ([`crate::mapping::is_hidden`]; `/.well-known/` excepted), checked before any lookup, and
//!   also on the resolved path of a symbolic link; listings leave such names out;
//! - directories: `/dir` is `301` to `/dir/` (query kept), `/dir/` serves `dir/index.html`, else
//!   a listing page (or `403` when listings are off);
//! - validators: `ETag` `"<size>-<mtime seconds>-<mtime nanoseconds>"` in hex (plus
//!   `-<inode>` with `etag_inode` on unix), `Last-Modified` (never later than `Date`);
//!   embedded files: `ETag` from a hash of their bytes, no `Last-Modified`;
//! - conditional requests: [`crate::conditional`]; ranges: [`crate::range`].

use std::borrow::Cow;
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use weft_core::{BodyKind, Method, RequestHead};

use crate::compressor::{self, variant_tag, CompressOptions, Compressor, Negotiation, VARY};
use crate::conditional::{self, Precondition, Validators};
use crate::deflate_encoder::{Coding, Encoder, Flush};
use crate::file_cache::{Cached, FileCache, Stamp};
use crate::listing::{self, Entry};
use crate::mapping::{is_hidden, map_path, MappedPath};
use crate::mime;
use crate::range::{self, ByteRange, RangeOutcome};
use crate::{AppError, Output, Produce, Responder};

const TEXT: &[u8] = b"text/plain; charset=utf-8";
/// Largest read from a file per produce step.
const FILE_CHUNK: usize = 64 * 1024;
/// Bodies up to this size are read at once and sent with the head (one copy, no responder).
const INLINE_MAX: u64 = 16 * 1024;
/// Files up to this size are compressed whole in memory (so the variant has a
/// `Content-Length` and can be cached); larger ones are compressed while they are sent.
const WHOLE_MAX: u64 = 1024 * 1024;
/// The index file of a directory.
const INDEX: &str = "index.html";
/// `Allow` on a 405 from the file service.
pub const ALLOW: &str = "GET, HEAD";

/// The embedded demo site: (path, bytes).
const EMBEDDED: &[(&str, &[u8])] = &[
    ("index.html", include_bytes!("../site/index.html")),
    ("chat.html", include_bytes!("../site/chat.html")),
    ("style.css", include_bytes!("../site/style.css")),
];

/// How the file service behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticOptions {
    /// Directory listing pages for directories without `index.html` (else 403).
    pub listing: bool,
    /// `Cache-Control` of every file response unless its extension has its own.
    pub cache_control: String,
    /// `Cache-Control` per file extension (lower case, no dot), checked before the default.
    pub cache_control_by_ext: Vec<(String, String)>,
    /// Mix the inode number into the `ETag` (unix only; off by default so that the same files
    /// get the same tags on every target and every copy of the site).
    pub etag_inode: bool,
    /// Bytes of small files kept in memory per event loop (unix only; 0: off). See
    /// [`crate::file_cache`].
    pub memory_cache: usize,
    /// Response compression (level, threshold, variant cache). See [`crate::compressor`].
    pub compress: CompressOptions,
    /// Serve paths with a name starting with `.` (and list such names).
    pub allow_dotfiles: bool,
}

/// The default size of the small-file cache of one event loop.
pub const DEFAULT_MEMORY_CACHE: usize = 8 * 1024 * 1024;

/// The default `Cache-Control`: caches may store files but must revalidate before each reuse
/// (a cheap 304 with the validators), since file names are not content-addressed.
pub const DEFAULT_CACHE_CONTROL: &str = "no-cache";

impl Default for StaticOptions {
    fn default() -> StaticOptions {
        StaticOptions {
            listing: true,
            cache_control: DEFAULT_CACHE_CONTROL.to_string(),
            cache_control_by_ext: Vec::new(),
            etag_inode: false,
            memory_cache: DEFAULT_MEMORY_CACHE,
            compress: CompressOptions::default(),
            allow_dotfiles: false,
        }
    }
}

impl StaticOptions {
    /// The `Cache-Control` value for a file name.
    pub fn cache_control_for(&self, name: &str) -> &str {
        if self.cache_control_by_ext.is_empty() {
            return &self.cache_control;
        }
        if let Some(ext) = mime::extension(name) {
            for (e, value) in &self.cache_control_by_ext {
                if e.eq_ignore_ascii_case(ext) {
                    return value;
                }
            }
        }
        &self.cache_control
    }
}

struct EmbeddedFile {
    name: &'static str,
    bytes: &'static [u8],
    etag: Arc<str>,
}

enum Source {
    Embedded(Vec<EmbeddedFile>),
    Disk {
        root: PathBuf,
        /// The canonical root (native targets): a path through a symbolic link must resolve
        /// below it. `None` when the root could not be resolved (then no link is followed).
        canonical: Option<PathBuf>,
    },
}

/// The static file service.
pub struct StaticFiles {
    source: Source,
    options: StaticOptions,
    cache: FileCache,
    compressor: Compressor,
}

/// FNV-1a, 64 bits: a small stable hash for tags and boundaries (not a security measure).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Why a lookup found nothing to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    NotFound,
    Forbidden,
}

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Refusal {
        if e.kind() == io::ErrorKind::PermissionDenied {
            Refusal::Forbidden
        } else {
            Refusal::NotFound
        }
    }
}

/// A representation ready to be answered.
struct Representation<'a> {
    content_type: Cow<'a, str>,
    cache_control: &'a str,
    len: u64,
    validators: Validators,
    /// `validators.last_modified` as an HTTP-date.
    last_modified: Option<Arc<str>>,
    body: Body,
    /// Where it comes from (the key of its compressed variants, its `.gz` sidecar).
    origin: Origin<'a>,
    /// Whether the coding was negotiated (`Vary: Accept-Encoding`).
    vary: bool,
}

/// What a representation is, for its compressed variants.
enum Origin<'a> {
    Embedded(&'static str),
    Disk {
        path: &'a Path,
        mtime: Option<SystemTime>,
    },
    /// Made here (a listing): not compressed.
    Page,
}

impl Origin<'_> {
    /// The key of the variant cache.
    fn key(&self) -> Option<Cow<'_, str>> {
        match self {
            Origin::Embedded(name) => Some(Cow::Owned(format!("embedded:{name}"))),
            Origin::Disk { path, .. } => Some(path.to_string_lossy()),
            Origin::Page => None,
        }
    }
}

/// Where the bytes of a representation come from.
enum Body {
    File(File),
    Memory(Memory),
}

/// Bytes held in memory: an embedded file, a cached small file, a page made here.
#[derive(Clone)]
enum Memory {
    Static(&'static [u8]),
    Shared(Arc<[u8]>),
}

impl Memory {
    fn as_slice(&self) -> &[u8] {
        match self {
            Memory::Static(b) => b,
            Memory::Shared(b) => b,
        }
    }
}

impl StaticFiles {
    /// Serves the files below `root`, or the embedded demo site when `None`.
    pub fn new(root: Option<PathBuf>, options: StaticOptions) -> StaticFiles {
        let source = match root {
            None => Source::Embedded(
                EMBEDDED
                    .iter()
                    .map(|&(name, bytes)| EmbeddedFile {
                        name,
                        bytes,
                        etag: Arc::from(format!("\"e-{:016x}\"", fnv1a(&[bytes]))),
                    })
                    .collect(),
            ),
            Some(root) => {
                #[cfg(not(target_os = "wasi"))]
                let canonical = std::fs::canonicalize(&root).ok();
                #[cfg(target_os = "wasi")]
                let canonical = None;
                Source::Disk { root, canonical }
            }
        };
        let cache = FileCache::new(options.memory_cache);
        let compressor = Compressor::new(options.compress.clone());
        StaticFiles {
            source,
            options,
            cache,
            compressor,
        }
    }

    /// The options in force.
    pub fn options(&self) -> &StaticOptions {
        &self.options
    }

    /// Answers a request for `path` (the still percent-encoded path of the target, starting
    /// with `/`; relative to the root). `head.path()` is used for redirects.
    pub fn serve(
        &self,
        head: &RequestHead<'_>,
        path: &str,
        out: &mut Output<'_>,
    ) -> Result<Option<Box<dyn Responder>>, AppError> {
        if !matches!(head.method, Method::Get | Method::Head) {
            let headers: [(&str, &[u8]); 2] = [("Allow", ALLOW.as_bytes()), ("Content-Type", TEXT)];
            out.full(405, &headers, b"method not allowed\n")?;
            return Ok(None);
        }
        let Some(mapped) = map_path(path) else {
            return refuse(out, Refusal::NotFound);
        };
        // Dot names are refused before anything is looked up (so no index, sidecar or cache
        // can lead to them), with the answer of a missing file.
        if !self.options.allow_dotfiles && is_hidden(&mapped.segments) {
            return refuse(out, Refusal::NotFound);
        }
        match &self.source {
            Source::Embedded(files) => self.serve_embedded(files, head, &mapped, out),
            Source::Disk { root, canonical } => {
                self.serve_disk(root, canonical.as_deref(), head, &mapped, out)
            }
        }
    }

    fn serve_embedded(
        &self,
        files: &[EmbeddedFile],
        head: &RequestHead<'_>,
        mapped: &MappedPath,
        out: &mut Output<'_>,
    ) -> Result<Option<Box<dyn Responder>>, AppError> {
        let joined = mapped.segments.join("/");
        let find = |name: &str| files.iter().find(|f| f.name == name);
        let is_dir = joined.is_empty()
            || files.iter().any(|f| {
                f.name
                    .strip_prefix(joined.as_str())
                    .is_some_and(|r| r.starts_with('/'))
            });
        let file = if is_dir {
            if !mapped.dir {
                return redirect_to_dir(head, out);
            }
            let index = if joined.is_empty() {
                INDEX.to_string()
            } else {
                format!("{joined}/{INDEX}")
            };
            find(&index)
        } else if mapped.dir {
            None
        } else {
            find(&joined)
        };
        let Some(file) = file else {
            return refuse(out, Refusal::NotFound);
        };
        let rep = Representation {
            content_type: mime::content_type(file.name),
            cache_control: self.options.cache_control_for(file.name),
            len: file.bytes.len() as u64,
            validators: Validators {
                etag: Some(Arc::clone(&file.etag)),
                last_modified: None,
            },
            last_modified: None,
            body: Body::Memory(Memory::Static(file.bytes)),
            origin: Origin::Embedded(file.name),
            vary: false,
        };
        respond(head, rep, &self.compressor, out)
    }

    fn serve_disk(
        &self,
        root: &Path,
        canonical: Option<&Path>,
        head: &RequestHead<'_>,
        mapped: &MappedPath,
        out: &mut Output<'_>,
    ) -> Result<Option<Box<dyn Responder>>, AppError> {
        let names: Vec<&str> = mapped.segments.iter().map(String::as_str).collect();
        let allow_dotfiles = self.options.allow_dotfiles;
        let (path, meta) = match lookup(root, canonical, &names, allow_dotfiles) {
            Ok(found) => found,
            Err(refusal) => return refuse(out, refusal),
        };
        if meta.is_dir() {
            if !mapped.dir {
                return redirect_to_dir(head, out);
            }
            let mut index_names = names.clone();
            index_names.push(INDEX);
            match lookup(root, canonical, &index_names, allow_dotfiles) {
                Ok((index, m)) if m.is_file() => {
                    return self.serve_file(&index, INDEX, &m, head, out)
                }
                Ok(_) | Err(Refusal::NotFound) => {}
                Err(refusal) => return refuse(out, refusal),
            }
            if !self.options.listing {
                return refuse(out, Refusal::Forbidden);
            }
            return self.serve_listing(&path, canonical, &mapped.segments, head, out);
        }
        if mapped.dir || !meta.is_file() {
            return refuse(out, Refusal::NotFound);
        }
        let name = names.last().copied().unwrap_or(INDEX);
        self.serve_file(&path, name, &meta, head, out)
    }

    /// Serves the regular file at `path`; `found` is its metadata from the lookup.
    fn serve_file(
        &self,
        path: &Path,
        name: &str,
        found: &Metadata,
        head: &RequestHead<'_>,
        out: &mut Output<'_>,
    ) -> Result<Option<Box<dyn Responder>>, AppError> {
        // A small file that has not changed since it was cached: no open, no read.
        if let Some(stamp) = Stamp::of(found) {
            if let Some(c) = self.cache.get(path, &stamp) {
                let rep = Representation {
                    content_type: c.content_type,
                    cache_control: self.options.cache_control_for(name),
                    len: c.bytes.len() as u64,
                    validators: Validators {
                        etag: Some(c.etag),
                        last_modified: Some(c.last_modified),
                    },
                    last_modified: Some(c.last_modified_text),
                    body: Body::Memory(Memory::Shared(c.bytes)),
                    origin: Origin::Disk {
                        path,
                        mtime: found.modified().ok(),
                    },
                    vary: false,
                };
                return respond(head, rep, &self.compressor, out);
            }
        }
        let now = date_seconds(out);
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) => return refuse(out, Refusal::from(e)),
        };
        let mut meta = file.metadata()?;
        if !meta.is_file() {
            return refuse(out, Refusal::NotFound);
        }
        if let Some(stamp) = Stamp::of(&meta).filter(|s| self.cache.wants(s, now)) {
            let mut bytes = Vec::with_capacity(usize::try_from(stamp.size()).unwrap_or(0));
            (&mut file).take(stamp.size()).read_to_end(&mut bytes)?;
            // Cached only when the file is still the version read (not written meanwhile).
            if bytes.len() as u64 == stamp.size() && Stamp::of(&file.metadata()?) == Some(stamp) {
                let validators = self.file_validators(&meta, now);
                if let (Some(etag), Some(lm)) = (&validators.etag, validators.last_modified) {
                    let cached = Cached {
                        bytes: Arc::from(bytes),
                        content_type: mime::content_type(name),
                        etag: Arc::clone(etag),
                        last_modified: lm,
                        last_modified_text: Arc::from(http_date(lm)),
                    };
                    self.cache.insert(path, stamp, cached.clone());
                    let rep = Representation {
                        content_type: cached.content_type,
                        cache_control: self.options.cache_control_for(name),
                        len: stamp.size(),
                        validators,
                        last_modified: Some(cached.last_modified_text),
                        body: Body::Memory(Memory::Shared(cached.bytes)),
                        origin: Origin::Disk {
                            path,
                            mtime: meta.modified().ok(),
                        },
                        vary: false,
                    };
                    return respond(head, rep, &self.compressor, out);
                }
            }
            // Written while being read (or no usable times): serve it from the file as it
            // is now, uncached.
            file.seek(SeekFrom::Start(0))?;
            meta = file.metadata()?;
        }
        let validators = self.file_validators(&meta, now);
        let rep = Representation {
            content_type: mime::content_type(name),
            cache_control: self.options.cache_control_for(name),
            len: meta.len(),
            last_modified: validators.last_modified.map(|lm| Arc::from(http_date(lm))),
            validators,
            origin: Origin::Disk {
                path,
                mtime: meta.modified().ok(),
            },
            vary: false,
            body: Body::File(file),
        };
        respond(head, rep, &self.compressor, out)
    }

    /// `ETag` and `Last-Modified` of a file from its metadata; `now` is the response's `Date`.
    fn file_validators(&self, meta: &Metadata, now: u64) -> Validators {
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
        if self.options.etag_inode {
            use std::os::unix::fs::MetadataExt;
            etag.push_str(&format!("-{:x}", meta.ino()));
        }
        etag.push('"');
        Validators {
            etag: Some(Arc::from(etag)),
            // Never later than the response's Date (RFC 9110 section 8.8.2.1).
            last_modified: Some(mtime.as_secs().min(now)),
        }
    }

    fn serve_listing(
        &self,
        dir: &Path,
        canonical: Option<&Path>,
        segments: &[String],
        head: &RequestHead<'_>,
        out: &mut Output<'_>,
    ) -> Result<Option<Box<dyn Responder>>, AppError> {
        let (entries, omitted) = match read_entries(dir, canonical, self.options.allow_dotfiles) {
            Ok(read) => read,
            Err(e) => return refuse(out, Refusal::from(e)),
        };
        let mut url_path = String::from("/");
        for s in segments {
            url_path.push_str(s);
            url_path.push('/');
        }
        let page = listing::render(&url_path, &entries, omitted).into_bytes();
        let mut rep = Representation {
            content_type: Cow::Borrowed("text/html; charset=utf-8"),
            cache_control: &self.options.cache_control,
            len: page.len() as u64,
            // A listing changes whenever the directory does: no validators.
            validators: Validators::default(),
            last_modified: None,
            body: Body::Memory(Memory::Static(&[])),
            origin: Origin::Page,
            vary: false,
        };
        let negotiation =
            self.compressor
                .negotiate(head, rep.content_type.as_bytes(), Some(rep.len), false);
        // A 304 of a negotiable page says so too.
        rep.vary = negotiation != Negotiation::Fixed;
        // Conditions still apply (If-None-Match: * is 304, If-Match: "x" is 412); ranges do not.
        match conditional::evaluate(&head.headers, head.method, &rep.validators) {
            Precondition::Proceed => {}
            Precondition::NotModified => return not_modified(&rep, out),
            Precondition::Failed => return precondition_failed(out),
        }
        let mut headers: Vec<(&str, &[u8])> = vec![
            ("Content-Type", rep.content_type.as_bytes()),
            ("Cache-Control", rep.cache_control.as_bytes()),
        ];
        // The page is in memory: the generic helper negotiates and compresses it (a listing
        // has no validators, so there is no variant tag to make).
        if page.len() as u64 <= INLINE_MAX
            || head.method == Method::Head
            || matches!(
                negotiation,
                Negotiation::Encode(_) | Negotiation::NotAcceptable
            )
        {
            self.compressor.full(head, out, 200, &headers, &page)?;
            return Ok(None);
        }
        if negotiation == Negotiation::Identity {
            headers.push(VARY);
        }
        out.head(200, &headers, BodyKind::Length(rep.len))?;
        Ok(Some(Box::new(Stream::new(
            None,
            Memory::Static(&[]),
            vec![Piece::Bytes(page)],
        ))))
    }
}

/// The `Date` of the response being built, in seconds since the epoch.
fn date_seconds(out: &Output<'_>) -> u64 {
    conditional::parse_date(out.now().date.as_bytes()).unwrap_or(0)
}

/// Finds `names` below `root`: the path and its metadata (links followed). On native targets
/// every component is checked with `lstat`; when one is a symbolic link, the whole path is
/// resolved and must stay inside the canonical root (and, unless `allow_dotfiles`, not lead to
/// a dot name below it). Every failure is "not found", whatever the reason (missing, a link
/// leaving the root, a host sandbox refusing the path, a directory that may not be searched):
/// nothing about the filesystem is revealed.
fn lookup(
    root: &Path,
    canonical: Option<&Path>,
    names: &[&str],
    allow_dotfiles: bool,
) -> Result<(PathBuf, Metadata), Refusal> {
    find(root, canonical, names, allow_dotfiles).map_err(|_| Refusal::NotFound)
}

/// Whether `real`, a canonical path, lies inside the canonical root and, unless
/// `allow_dotfiles`, has no hidden name below it ([`is_hidden`]).
#[cfg(not(target_os = "wasi"))]
fn resolves_inside(real: &Path, canonical: Option<&Path>, allow_dotfiles: bool) -> bool {
    let Some(below) = canonical.and_then(|c| real.strip_prefix(c).ok()) else {
        return false;
    };
    allow_dotfiles || !is_hidden(below.components().map(|c| c.as_os_str().as_encoded_bytes()))
}

fn find(
    root: &Path,
    canonical: Option<&Path>,
    names: &[&str],
    allow_dotfiles: bool,
) -> io::Result<(PathBuf, Metadata)> {
    let mut path = root.to_path_buf();
    #[cfg(not(target_os = "wasi"))]
    {
        let mut linked = false;
        let mut last = None;
        for name in names {
            path.push(name);
            if !linked {
                let m = std::fs::symlink_metadata(&path)?;
                if m.file_type().is_symlink() {
                    linked = true;
                } else {
                    last = Some(m);
                }
            }
        }
        if linked {
            let real = std::fs::canonicalize(&path)?;
            if !resolves_inside(&real, canonical, allow_dotfiles) {
                return Err(io::ErrorKind::NotFound.into());
            }
            let meta = std::fs::metadata(&path)?;
            return Ok((path, meta));
        }
        let meta = match last {
            Some(m) => m,
            None => std::fs::metadata(&path)?,
        };
        Ok((path, meta))
    }
    #[cfg(target_os = "wasi")]
    {
        let _ = (canonical, allow_dotfiles);
        for name in names {
            path.push(name);
        }
        let meta = std::fs::metadata(&path)?;
        Ok((path, meta))
    }
}

/// Reads a directory for its listing: at most [`listing::MAX_ENTRIES`] entries (the flag says
/// whether more were left out), names that are not UTF-8 skipped, dot names skipped unless
/// `allow_dotfiles`, links that could not be served (native: leaving the root, or leading to a
/// dot name unless `allow_dotfiles`) skipped.
fn read_entries(
    dir: &Path,
    canonical: Option<&Path>,
    allow_dotfiles: bool,
) -> io::Result<(Vec<Entry>, bool)> {
    let mut entries = Vec::new();
    let mut omitted = false;
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else {
            continue;
        };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') && !allow_dotfiles {
            continue;
        }
        if entries.len() == listing::MAX_ENTRIES {
            omitted = true;
            break;
        }
        let path = entry.path();
        #[cfg(not(target_os = "wasi"))]
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            let inside = std::fs::canonicalize(&path)
                .is_ok_and(|real| resolves_inside(&real, canonical, allow_dotfiles));
            if !inside {
                continue;
            }
        }
        #[cfg(target_os = "wasi")]
        let _ = canonical;
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        entries.push(Entry {
            name,
            is_dir: meta.is_dir(),
            size: meta.len(),
            modified,
        });
    }
    listing::sort(&mut entries);
    Ok((entries, omitted))
}

fn refuse(out: &mut Output<'_>, refusal: Refusal) -> Result<Option<Box<dyn Responder>>, AppError> {
    let (status, body): (u16, &[u8]) = match refusal {
        Refusal::NotFound => (404, b"not found\n"),
        Refusal::Forbidden => (403, b"forbidden\n"),
    };
    out.full(status, &[("Content-Type", TEXT)], body)?;
    Ok(None)
}

/// `/dir` -> `301 /dir/`, keeping the query.
fn redirect_to_dir(
    head: &RequestHead<'_>,
    out: &mut Output<'_>,
) -> Result<Option<Box<dyn Responder>>, AppError> {
    let location = match head.query() {
        Some(query) => format!("{}/?{query}", head.path()),
        None => format!("{}/", head.path()),
    };
    let headers: [(&str, &[u8]); 2] = [("Location", location.as_bytes()), ("Content-Type", TEXT)];
    out.full(301, &headers, b"moved permanently\n")?;
    Ok(None)
}

fn precondition_failed(out: &mut Output<'_>) -> Result<Option<Box<dyn Responder>>, AppError> {
    out.full(412, &[("Content-Type", TEXT)], b"precondition failed\n")?;
    Ok(None)
}

/// `Last-Modified` as text.
fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Appends the validator and cache fields every file response carries (304 included);
/// `last_modified` is `validators.last_modified` formatted.
fn push_validators<'h>(
    headers: &mut Vec<(&'static str, &'h [u8])>,
    validators: &'h Validators,
    cache_control: &'h str,
    last_modified: &'h Option<Arc<str>>,
    vary: bool,
) {
    if let Some(lm) = last_modified {
        headers.push(("Last-Modified", lm.as_bytes()));
    }
    if let Some(etag) = &validators.etag {
        headers.push(("ETag", etag.as_bytes()));
    }
    headers.push(("Cache-Control", cache_control.as_bytes()));
    if vary {
        headers.push(VARY);
    }
}

fn not_modified(
    rep: &Representation<'_>,
    out: &mut Output<'_>,
) -> Result<Option<Box<dyn Responder>>, AppError> {
    let mut headers = Vec::with_capacity(4);
    push_validators(
        &mut headers,
        &rep.validators,
        rep.cache_control,
        &rep.last_modified,
        rep.vary,
    );
    out.full(304, &headers, b"")?;
    Ok(None)
}

/// Answers a representation: the content coding, preconditions, then ranges (GET only, from
/// the identity), then the body.
fn respond(
    head: &RequestHead<'_>,
    mut rep: Representation<'_>,
    comp: &Compressor,
    out: &mut Output<'_>,
) -> Result<Option<Box<dyn Responder>>, AppError> {
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
    match conditional::evaluate(&head.headers, head.method, &rep.validators) {
        Precondition::Proceed => {}
        Precondition::NotModified => return not_modified(&rep, out),
        Precondition::Failed => return precondition_failed(out),
    }
    let outcome = range_outcome(head, &rep, out);
    // What the head says besides the validators, and the body as pieces.
    let (status, content_type, content_range, pieces, len) = match outcome {
        RangeOutcome::Full => (200, None, None, vec![Piece::Range(0, rep.len)], rep.len),
        RangeOutcome::Unsatisfiable => {
            let range = format!("bytes */{}", rep.len);
            let mut headers: Vec<(&str, &[u8])> =
                vec![("Content-Range", range.as_bytes()), ("Content-Type", TEXT)];
            if rep.vary {
                headers.push(VARY);
            }
            out.full(416, &headers, b"range not satisfiable\n")?;
            return Ok(None);
        }
        RangeOutcome::Partial(ranges) => match ranges.as_slice() {
            [one] => (
                206,
                None,
                Some(content_range(one, rep.len)),
                vec![Piece::Range(one.start, one.len())],
                one.len(),
            ),
            _ => {
                let boundary = boundary(&rep, &ranges);
                let pieces = multipart_pieces(&ranges, rep.len, &rep.content_type, &boundary);
                let len = pieces.iter().map(Piece::len).sum();
                let content_type = format!("multipart/byteranges; boundary={boundary}");
                (206, Some(content_type), None, pieces, len)
            }
        },
    };
    let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(7);
    headers.push((
        "Content-Type",
        content_type
            .as_deref()
            .unwrap_or(&rep.content_type)
            .as_bytes(),
    ));
    if let Some(range) = &content_range {
        headers.push(("Content-Range", range.as_bytes()));
    }
    push_validators(
        &mut headers,
        &rep.validators,
        rep.cache_control,
        &rep.last_modified,
        rep.vary,
    );
    headers.push(("Accept-Ranges", b"bytes"));
    if head.method == Method::Head || len == 0 {
        out.head(status, &headers, BodyKind::Length(len))?;
        out.end()?;
        return Ok(None);
    }
    let small = len <= INLINE_MAX && usize::try_from(len).is_ok_and(|n| n <= out.room());
    match (&rep.body, pieces.as_slice()) {
        // In memory and one piece: straight from there, with the head, in one go.
        (Body::Memory(memory), [Piece::Range(start, n)]) if small => {
            let start = usize::try_from(*start).unwrap_or(usize::MAX);
            let end = start.saturating_add(usize::try_from(*n).unwrap_or(usize::MAX));
            let Some(body) = memory.as_slice().get(start..end) else {
                return Err(AppError("range outside the bytes in memory".into()));
            };
            out.full(status, &headers, body)?;
            return Ok(None);
        }
        _ => {}
    }
    let mut stream = match rep.body {
        Body::File(file) => Stream::new(Some(file), Memory::Static(&[]), pieces),
        Body::Memory(memory) => Stream::new(None, memory, pieces),
    };
    if small {
        // Small: read it all now and send head and body in one go.
        let mut body = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        stream.read_all(&mut body)?;
        if body.len() as u64 != len {
            return Err(AppError("file shrank while being read".into()));
        }
        out.full(status, &headers, &body)?;
        return Ok(None);
    }
    out.head(status, &headers, BodyKind::Length(len))?;
    Ok(Some(Box::new(stream)))
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
) -> Result<Option<Box<dyn Responder>>, AppError> {
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
    match conditional::evaluate(&head.headers, head.method, &rep.validators) {
        Precondition::Proceed => {}
        Precondition::NotModified => return not_modified(&rep, out),
        Precondition::Failed => return precondition_failed(out),
    }
    let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(7);
    headers.push(("Content-Type", rep.content_type.as_bytes()));
    headers.push(("Content-Encoding", coding.name().as_bytes()));
    push_validators(
        &mut headers,
        &rep.validators,
        rep.cache_control,
        &rep.last_modified,
        true,
    );
    let is_head = head.method == Method::Head;
    if let Some((file, meta)) = sidecar {
        return send_whole(out, &headers, is_head, meta.len(), Body::File(file));
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
            (Some(key), Some(tag)) if comp.caches() && settled => Some((key, tag)),
            _ => None,
        };
        let found = cache.and_then(|(key, tag)| comp.cached(key, coding, tag));
        let bytes = match found {
            Some(bytes) => bytes,
            None => {
                let mut identity = Vec::with_capacity(usize::try_from(rep.len).unwrap_or(0));
                let mut stream = match rep.body {
                    Body::File(file) => Stream::new(
                        Some(file),
                        Memory::Static(&[]),
                        vec![Piece::Range(0, rep.len)],
                    ),
                    Body::Memory(memory) => {
                        Stream::new(None, memory, vec![Piece::Range(0, rep.len)])
                    }
                };
                stream.read_all(&mut identity)?;
                if identity.len() as u64 != rep.len {
                    return Err(AppError("file shrank while being read".into()));
                }
                let encoded: Arc<[u8]> = Arc::from(comp.compress(coding, &identity)?);
                if let Some((key, tag)) = cache {
                    comp.remember(key, coding, tag, &encoded);
                }
                encoded
            }
        };
        let len = bytes.len() as u64;
        return send_whole(
            out,
            &headers,
            is_head,
            len,
            Body::Memory(Memory::Shared(bytes)),
        );
    }
    // Large: compressed while it is sent; the length is not known beforehand.
    out.head(200, &headers, BodyKind::Stream)?;
    if is_head {
        out.end()?;
        return Ok(None);
    }
    let pieces = vec![Piece::Range(0, rep.len)];
    let stream = match rep.body {
        Body::File(file) => Stream::new(Some(file), Memory::Static(&[]), pieces),
        Body::Memory(memory) => Stream::new(None, memory, pieces),
    };
    Ok(Some(Box::new(Compressing {
        stream,
        encoder: comp.encoder(coding),
        buf: Vec::new(),
    })))
}

/// Sends a `200` whose body is all of `body` (`len` bytes): with the head when small, else
/// streamed in bounded chunks.
fn send_whole(
    out: &mut Output<'_>,
    headers: &[(&str, &[u8])],
    is_head: bool,
    len: u64,
    body: Body,
) -> Result<Option<Box<dyn Responder>>, AppError> {
    if is_head || len == 0 {
        out.head(200, headers, BodyKind::Length(len))?;
        out.end()?;
        return Ok(None);
    }
    let pieces = vec![Piece::Range(0, len)];
    let mut stream = match body {
        Body::Memory(memory) => Stream::new(None, memory, pieces),
        Body::File(file) => Stream::new(Some(file), Memory::Static(&[]), pieces),
    };
    let small = len <= INLINE_MAX && usize::try_from(len).is_ok_and(|n| n <= out.room());
    if small {
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        stream.read_all(&mut bytes)?;
        if bytes.len() as u64 != len {
            return Err(AppError("file shrank while being read".into()));
        }
        out.full(200, headers, &bytes)?;
        return Ok(None);
    }
    out.head(200, headers, BodyKind::Length(len))?;
    Ok(Some(Box::new(stream)))
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

/// A large file compressed while it is sent: one bounded read per step, only while the
/// socket keeps up, so at most one chunk and the compressor's window are held.
struct Compressing {
    stream: Stream,
    encoder: Encoder,
    buf: Vec<u8>,
}

impl Responder for Compressing {
    fn produce(&mut self, out: &mut Output<'_>) -> Result<Produce, AppError> {
        let max = FILE_CHUNK.min(out.room().max(4096));
        self.buf.clear();
        match self.stream.next_chunk(max)? {
            Some(chunk) => {
                self.encoder
                    .write(chunk, Flush::None, &mut self.buf)
                    .map_err(|e| AppError(e.to_string()))?;
                if !self.buf.is_empty() {
                    out.data(&self.buf)?;
                }
                Ok(Produce::More)
            }
            None => {
                self.encoder
                    .finish(&mut self.buf)
                    .map_err(|e| AppError(e.to_string()))?;
                out.data(&self.buf)?;
                out.end()?;
                Ok(Produce::Done)
            }
        }
    }
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

/// A part of a response body.
enum Piece {
    /// Bytes made here (multipart headers, a listing page).
    Bytes(Vec<u8>),
    /// `len` bytes of the representation from `offset`.
    Range(u64, u64),
}

impl Piece {
    fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::Range(_, len) => *len,
        }
    }
}

/// A response body produced piece by piece in bounded chunks as the socket takes them. The
/// file handle is closed when this is dropped: on completion, on error and when the client
/// goes away.
struct Stream {
    file: Option<File>,
    memory: Memory,
    pieces: Vec<Piece>,
    /// The current piece and how much of it was sent.
    index: usize,
    done: u64,
    /// Where the file's cursor is (to seek only when needed).
    file_pos: u64,
    buf: Vec<u8>,
}

impl Stream {
    fn new(file: Option<File>, memory: Memory, pieces: Vec<Piece>) -> Stream {
        Stream {
            file,
            memory,
            pieces,
            index: 0,
            done: 0,
            file_pos: 0,
            buf: Vec::new(),
        }
    }

    /// The next chunk of at most `max` bytes into `self.buf`, or `None` at the end.
    fn next_chunk(&mut self, max: usize) -> Result<Option<&[u8]>, AppError> {
        loop {
            let Some(piece) = self.pieces.get(self.index) else {
                return Ok(None);
            };
            let remaining = piece.len().saturating_sub(self.done);
            if remaining == 0 {
                self.index += 1;
                self.done = 0;
                continue;
            }
            let want = usize::try_from(remaining).unwrap_or(usize::MAX).min(max);
            let start = self.done;
            let n = match piece {
                Piece::Bytes(b) => {
                    let from = usize::try_from(start).unwrap_or(usize::MAX);
                    let chunk = b.get(from..from.saturating_add(want)).unwrap_or(&[]);
                    self.buf.clear();
                    self.buf.extend_from_slice(chunk);
                    chunk.len()
                }
                Piece::Range(offset, _) => {
                    let at = offset.saturating_add(start);
                    match self.file.as_mut() {
                        Some(file) => {
                            if self.file_pos != at {
                                file.seek(SeekFrom::Start(at))?;
                                self.file_pos = at;
                            }
                            self.buf.resize(want, 0);
                            let n = file.read(&mut self.buf)?;
                            self.file_pos += n as u64;
                            self.buf.truncate(n);
                            n
                        }
                        None => {
                            let from = usize::try_from(at).unwrap_or(usize::MAX);
                            let chunk = self
                                .memory
                                .as_slice()
                                .get(from..from.saturating_add(want))
                                .unwrap_or(&[]);
                            self.buf.clear();
                            self.buf.extend_from_slice(chunk);
                            chunk.len()
                        }
                    }
                }
            };
            if n == 0 {
                return Err(AppError("file shrank while being sent".into()));
            }
            self.done += n as u64;
            return Ok(Some(&self.buf));
        }
    }

    /// Everything that is left, appended to `body` (for small bodies).
    fn read_all(&mut self, body: &mut Vec<u8>) -> Result<(), AppError> {
        while let Some(chunk) = self.next_chunk(FILE_CHUNK)? {
            body.extend_from_slice(chunk);
        }
        Ok(())
    }
}

impl Responder for Stream {
    fn produce(&mut self, out: &mut Output<'_>) -> Result<Produce, AppError> {
        let max = FILE_CHUNK.min(out.room().max(4096));
        match self.next_chunk(max)? {
            Some(chunk) => {
                out.data(chunk)?;
                if self.index + 1 >= self.pieces.len()
                    && self
                        .pieces
                        .get(self.index)
                        .is_some_and(|p| self.done >= p.len())
                {
                    out.end()?;
                    return Ok(Produce::Done);
                }
                Ok(Produce::More)
            }
            None => {
                out.end()?;
                Ok(Produce::Done)
            }
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant, SystemTime};
    use weft_core::{Connection, Event, HttpDate, Limits, Now};

    use crate::deflate_encoder::compress_all;
    use crate::deflate_encoder::tests::decode;
    use crate::ExchangeStats;

    /// Mon, 01 Jan 2024 00:00:00 GMT, plus 5 ns.
    const MTIME: u64 = 1_704_067_200;

    /// A fresh directory with a few files, all modified at MTIME + 5 ns.
    /// A temporary site, removed when dropped.
    struct Site(PathBuf);

    impl Drop for Site {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    impl std::ops::Deref for Site {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    fn site() -> Site {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "weft-static-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join("empty-dir")).unwrap();
        std::fs::create_dir_all(dir.join("list/inner")).unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for (name, bytes) in [
            ("hello.txt", &b"hello world\n"[..]),
            ("index.html", b"<p>root</p>\n"),
            ("sub/index.html", b"<p>sub</p>\n"),
            ("digits.txt", b"0123456789"),
            ("empty.txt", b""),
            ("big.bin", &big),
            ("list/a&b<c>.txt", b"escaped\n"),
            ("list/.hidden", b"secret\n"),
        ] {
            std::fs::write(dir.join(name), bytes).unwrap();
            let f = File::options().write(true).open(dir.join(name)).unwrap();
            f.set_modified(UNIX_EPOCH + Duration::new(MTIME, 5))
                .unwrap();
        }
        Site(dir)
    }

    struct Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        raw: Vec<u8>,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// Sends one request (a whole head) to the service through a real `Connection` and
    /// collects the response, driving a responder with a small transmit window.
    fn request(files: &StaticFiles, req: &str) -> Answer {
        let start = Instant::now();
        let now = Now {
            instant: start,
            date: HttpDate::from_system_time(SystemTime::now()),
        };
        let mut conn = Connection::new(Limits::default(), start);
        let input = req.as_bytes().to_vec();
        let (event, _) = conn.next_event(&input, now).unwrap();
        let Event::Request(head) = event else {
            panic!("not a request: {req}");
        };
        let mut stats = ExchangeStats::default();
        let mut raw = Vec::new();
        let responder = {
            let mut out = Output::new(&mut conn, now, &mut stats);
            files.serve(&head, head.path(), &mut out).unwrap()
        };
        if let Some(mut r) = responder {
            let mut rounds = 0;
            loop {
                rounds += 1;
                assert!(rounds < 100_000);
                let mut out = Output::new(&mut conn, now, &mut stats);
                let step = if out.room() > 0 {
                    r.produce(&mut out).unwrap()
                } else {
                    Produce::More
                };
                // The producer never overfills the window by more than one chunk.
                assert!(conn.transmit().len() <= WRITE_LIMIT + FILE_CHUNK);
                let n = conn.transmit().len().min(7000);
                raw.extend_from_slice(&conn.transmit()[..n]);
                conn.advance_transmit(n, start);
                if step == Produce::Done {
                    break;
                }
            }
        }
        raw.extend_from_slice(conn.transmit());
        parse(raw, head.method == Method::Head)
    }

    const WRITE_LIMIT: usize = crate::WRITE_HIGH_WATER;

    fn parse(raw: Vec<u8>, head_request: bool) -> Answer {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let text = std::str::from_utf8(&raw[..end]).unwrap();
        let mut lines = text.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        let body = raw[end + 4..].to_vec();
        let answer = Answer {
            status,
            headers,
            body,
            raw: raw.clone(),
        };
        if !head_request {
            if let Some(len) = answer.header("content-length") {
                assert_eq!(len.parse::<usize>().unwrap(), answer.body.len());
            }
        }
        answer
    }

    fn get(files: &StaticFiles, path: &str, fields: &[&str]) -> Answer {
        method(files, "GET", path, fields)
    }

    fn method(files: &StaticFiles, m: &str, path: &str, fields: &[&str]) -> Answer {
        let mut req = format!("{m} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for f in fields {
            req.push_str(f);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        request(files, &req)
    }

    fn disk() -> (StaticFiles, Site) {
        let dir = site();
        (
            StaticFiles::new(Some(dir.to_path_buf()), StaticOptions::default()),
            dir,
        )
    }

    #[test]
    fn plain_file_with_validators() {
        let (files, _dir) = disk();
        let a = get(&files, "/hello.txt", &[]);
        assert_eq!(a.status, 200);
        assert_eq!(a.body, b"hello world\n");
        assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(a.header("etag"), Some("\"c-65920080-5\""));
        assert_eq!(
            a.header("last-modified"),
            Some("Mon, 01 Jan 2024 00:00:00 GMT")
        );
        assert_eq!(a.header("cache-control"), Some("no-cache"));
        assert_eq!(a.header("accept-ranges"), Some("bytes"));
    }

    #[test]
    fn head_has_get_headers_without_body() {
        let (files, _dir) = disk();
        for path in ["/hello.txt", "/big.bin", "/", "/list/"] {
            let g = get(&files, path, &[]);
            let h = method(&files, "HEAD", path, &[]);
            let no_date = |a: &Answer| -> Vec<(String, String)> {
                a.headers
                    .iter()
                    .filter(|(n, _)| n != "Date")
                    .cloned()
                    .collect()
            };
            assert_eq!(no_date(&g), no_date(&h), "{path}");
            assert!(h.body.is_empty());
        }
        // HEAD ignores Range (RFC 9110 section 14.2).
        let h = method(&files, "HEAD", "/digits.txt", &["Range: bytes=0-1"]);
        assert_eq!(h.status, 200);
        assert_eq!(h.header("content-length"), Some("10"));
    }

    #[test]
    fn other_methods_are_405() {
        let (files, _dir) = disk();
        for m in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let a = method(&files, m, "/hello.txt", &["Content-Length: 0"]);
            assert_eq!(a.status, 405, "{m}");
            assert_eq!(a.header("allow"), Some("GET, HEAD"));
        }
    }

    #[test]
    fn big_file_streams_in_bounded_chunks() {
        let (files, dir) = disk();
        let a = get(&files, "/big.bin", &[]);
        assert_eq!(a.status, 200);
        assert_eq!(a.body, std::fs::read(dir.join("big.bin")).unwrap());
        let a = get(&files, "/big.bin", &["Range: bytes=100000-"]);
        assert_eq!(a.status, 206);
        assert_eq!(
            a.header("content-range"),
            Some("bytes 100000-199999/200000")
        );
        assert_eq!(
            a.body,
            std::fs::read(dir.join("big.bin")).unwrap()[100_000..]
        );
    }

    #[test]
    fn ranges() {
        let (files, _dir) = disk();
        let a = get(&files, "/digits.txt", &["Range: bytes=2-4"]);
        assert_eq!((a.status, a.body.as_slice()), (206, &b"234"[..]));
        assert_eq!(a.header("content-range"), Some("bytes 2-4/10"));
        let a = get(&files, "/digits.txt", &["Range: bytes=-3"]);
        assert_eq!(a.body, b"789");
        let a = get(&files, "/digits.txt", &["Range: bytes=7-"]);
        assert_eq!(a.body, b"789");
        let a = get(&files, "/digits.txt", &["Range: bytes=8-100"]);
        assert_eq!(
            (a.body.as_slice(), a.header("content-range")),
            (&b"89"[..], Some("bytes 8-9/10"))
        );
        let a = get(&files, "/digits.txt", &["Range: bytes=10-"]);
        assert_eq!(a.status, 416);
        assert_eq!(a.header("content-range"), Some("bytes */10"));
        let a = get(&files, "/digits.txt", &["Range: lines=1-2"]);
        assert_eq!((a.status, a.body.as_slice()), (200, &b"0123456789"[..]));
        let a = get(
            &files,
            "/digits.txt",
            &["Range: bytes=0-1", "Range: bytes=2-3"],
        );
        assert_eq!(a.status, 200);
        let a = get(&files, "/empty.txt", &["Range: bytes=0-"]);
        assert_eq!(a.status, 200);
    }

    #[test]
    fn multipart() {
        let (files, _dir) = disk();
        let a = get(&files, "/digits.txt", &["Range: bytes=0-1,5-6"]);
        assert_eq!(a.status, 206);
        let ct = a.header("content-type").unwrap();
        let boundary = ct.strip_prefix("multipart/byteranges; boundary=").unwrap();
        let expected = format!(
            "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-1/10\r\n\r\n01\r\n\
             --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 5-6/10\r\n\r\n56\r\n\
             --{boundary}--\r\n"
        );
        assert_eq!(String::from_utf8(a.body.clone()).unwrap(), expected);
        assert!(a.header("content-range").is_none());
        // Deterministic.
        let b = get(&files, "/digits.txt", &["Range: bytes=0-1,5-6"]);
        assert_eq!(a.raw[a.raw.len() - 200..], b.raw[b.raw.len() - 200..]);
        // Overlapping ranges coalesce into one part.
        let a = get(&files, "/digits.txt", &["Range: bytes=0-3,2-5"]);
        assert_eq!((a.status, a.body.as_slice()), (206, &b"012345"[..]));
        // A big multipart streams.
        let a = get(&files, "/big.bin", &["Range: bytes=0-99999,150000-"]);
        assert_eq!(a.status, 206);
        assert!(a.body.len() > 150_000);
    }

    #[test]
    fn conditionals() {
        let (files, _dir) = disk();
        let etag = get(&files, "/hello.txt", &[])
            .header("etag")
            .unwrap()
            .to_string();
        let a = get(&files, "/hello.txt", &[&format!("If-None-Match: {etag}")]);
        assert_eq!(a.status, 304);
        assert!(a.body.is_empty());
        assert_eq!(a.header("etag"), Some(etag.as_str()));
        assert_eq!(a.header("cache-control"), Some("no-cache"));
        assert!(a.header("last-modified").is_some());
        assert!(a.header("content-length").is_none());
        assert!(a.header("content-type").is_none());
        let a = get(
            &files,
            "/hello.txt",
            &["If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT"],
        );
        assert_eq!(a.status, 304);
        let a = get(&files, "/hello.txt", &["If-Match: \"nope\""]);
        assert_eq!(a.status, 412);
        let a = get(
            &files,
            "/hello.txt",
            &["If-Unmodified-Since: Sun, 31 Dec 2023 00:00:00 GMT"],
        );
        assert_eq!(a.status, 412);
        // If-Range.
        let a = get(
            &files,
            "/digits.txt",
            &["Range: bytes=0-0", "If-Range: \"nope\""],
        );
        assert_eq!(a.status, 200);
        let etag = get(&files, "/digits.txt", &[])
            .header("etag")
            .unwrap()
            .to_string();
        let a = get(
            &files,
            "/digits.txt",
            &["Range: bytes=0-0", &format!("If-Range: {etag}")],
        );
        assert_eq!(a.status, 206);
        let a = get(
            &files,
            "/digits.txt",
            &[
                "Range: bytes=0-0",
                "If-Range: Mon, 01 Jan 2024 00:00:00 GMT",
            ],
        );
        assert_eq!(a.status, 206);
        let a = get(
            &files,
            "/digits.txt",
            &[
                "Range: bytes=0-0",
                "If-Range: Mon, 01 Jan 2024 00:00:01 GMT",
            ],
        );
        assert_eq!(a.status, 200);
    }

    #[test]
    fn directories() {
        let (files, _dir) = disk();
        let a = get(&files, "/", &[]);
        assert_eq!((a.status, a.body.as_slice()), (200, &b"<p>root</p>\n"[..]));
        assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
        let a = get(&files, "/sub", &[]);
        assert_eq!((a.status, a.header("location")), (301, Some("/sub/")));
        let a = get(&files, "/sub?x=1", &[]);
        assert_eq!(a.header("location"), Some("/sub/?x=1"));
        let a = get(&files, "/sub/", &[]);
        assert_eq!(a.body, b"<p>sub</p>\n");
        let a = get(&files, "/hello.txt/", &[]);
        assert_eq!(a.status, 404);
        let a = get(&files, "/list/", &[]);
        assert_eq!(a.status, 200);
        let page = String::from_utf8(a.body).unwrap();
        assert!(page.contains("<a href=\"a%26b%3Cc%3E.txt\">a&amp;b&lt;c&gt;.txt</a>"));
        assert!(page.contains("<a href=\"inner/\">inner/</a>"));
        assert!(!page.contains("hidden"));
        assert!(page.contains("2024-01-01 00:00:00"));
        // The escaped name is served.
        let a = get(&files, "/list/a%26b%3Cc%3E.txt", &[]);
        assert_eq!(a.body, b"escaped\n");
        // Listing off: 403.
        let dir = site();
        let off = StaticFiles::new(
            Some(dir.to_path_buf()),
            StaticOptions {
                listing: false,
                ..StaticOptions::default()
            },
        );
        assert_eq!(get(&off, "/list/", &[]).status, 403);
        assert_eq!(get(&off, "/", &[]).status, 200);
    }

    #[test]
    fn refused_paths() {
        let (files, _dir) = disk();
        for path in [
            "/../hello.txt",
            "/sub/../hello.txt",
            "/%2e%2e/hello.txt",
            "/sub%2f..%2fhello.txt",
            "/sub%5cindex.html",
            "/hello.txt%00",
            "/%252e%252e/hello.txt",
            "/%c0%ae%c0%ae/hello.txt",
            "/missing",
            "/hello.txt/x",
        ] {
            let a = get(&files, path, &[]);
            assert_eq!(
                (a.status, a.body.as_slice()),
                (404, &b"not found\n"[..]),
                "{path}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_must_stay_inside() {
        let (files, dir) = disk();
        let outside = site();
        std::os::unix::fs::symlink(outside.join("hello.txt"), dir.join("out.txt")).unwrap();
        std::os::unix::fs::symlink(&*outside, dir.join("outdir")).unwrap();
        std::os::unix::fs::symlink(dir.join("hello.txt"), dir.join("in.txt")).unwrap();
        std::os::unix::fs::symlink(dir.join("sub"), dir.join("indir")).unwrap();
        assert_eq!(get(&files, "/out.txt", &[]).status, 404);
        assert_eq!(get(&files, "/outdir/hello.txt", &[]).status, 404);
        assert_eq!(get(&files, "/outdir/", &[]).status, 404);
        assert_eq!(get(&files, "/in.txt", &[]).body, b"hello world\n");
        assert_eq!(get(&files, "/indir/", &[]).body, b"<p>sub</p>\n");
        // A listing leaves out links that leave the root.
        std::os::unix::fs::symlink(outside.join("hello.txt"), dir.join("list/out.txt")).unwrap();
        std::os::unix::fs::symlink(&*outside, dir.join("list/outdir")).unwrap();
        std::os::unix::fs::symlink(dir.join("hello.txt"), dir.join("list/in.txt")).unwrap();
        std::os::unix::fs::symlink(dir.join("sub"), dir.join("list/indir")).unwrap();
        let page = String::from_utf8(get(&files, "/list/", &[]).body).unwrap();
        assert!(page.contains("href=\"in.txt\""));
        assert!(page.contains("href=\"indir/\""));
        assert!(!page.contains("out.txt"));
        assert!(!page.contains("outdir"));
    }

    /// `site()` plus dot files and directories at several depths, `/.well-known/`, and a dot
    /// file with a fresh `.gz` sidecar; the big text is the dot file's content.
    fn dot_site() -> (Site, Vec<u8>, Vec<u8>) {
        let dir = site();
        for d in [
            ".git",
            "a/.hidden",
            ".well-known/acme",
            ".well-known/.private",
        ] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let secret = text(100);
        let gz = compress_all(Coding::Gzip, 9, &secret).unwrap();
        for (name, bytes) in [
            (".env", &b"KEY=secret\n"[..]),
            (".git/config", b"[core]\n"),
            (".git/index.html", b"<p>git</p>\n"),
            ("a/.hidden/b.txt", b"b\n"),
            ("a/c.txt", b"c\n"),
            (".well-known/example.txt", b"example\n"),
            (".well-known/.secret", b"secret\n"),
            (".well-known/acme/token", b"token\n"),
            (".well-known/.private/x", b"x\n"),
            (".secret.txt", &secret),
        ] {
            write_at(&dir.join(name), bytes, Duration::new(MTIME, 5));
        }
        write_at(
            &dir.join(".secret.txt.gz"),
            &gz,
            Duration::new(MTIME + 10, 0),
        );
        (dir, secret, gz)
    }

    /// Paths with a dot name: refused unless dot files are allowed.
    const DOT_PATHS: &[&str] = &[
        "/.env",
        "/%2eenv",
        "/%2Eenv",
        "/./.env",
        "/.git",
        "/.git/",
        "/.git/.",
        "/.git/config",
        "/%2egit/config",
        "/%2Egit/config",
        "/.git/index.html",
        "/a/.hidden",
        "/a/.hidden/",
        "/a/.hidden/b.txt",
        "/a/%2ehidden/b.txt",
        "/a/%2e/.hidden/b.txt",
        "/list/.hidden",
        "/.well-known/.secret",
        "/.well-known/%2esecret",
        "/.well-known/.private/",
        "/.well-known/.private/x",
        "/.secret.txt",
        "/.secret.txt.gz",
    ];

    /// The response without its `Date` line.
    fn without_date(a: &Answer) -> String {
        String::from_utf8_lossy(&a.raw)
            .split("\r\n")
            .filter(|l| !l.starts_with("Date:"))
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    #[test]
    fn dot_files_are_404_by_default() {
        let (dir, _, _) = dot_site();
        let files = StaticFiles::new(Some(dir.to_path_buf()), StaticOptions::default());
        for fields in [
            &[][..],
            &["Accept-Encoding: gzip"],
            &["Range: bytes=0-1"],
            &["If-None-Match: *"],
        ] {
            let missing = without_date(&get(&files, "/missing", fields));
            for path in DOT_PATHS {
                let a = get(&files, path, fields);
                assert_eq!(
                    (a.status, a.body.as_slice()),
                    (404, &b"not found\n"[..]),
                    "{path}"
                );
                // The same answer as any missing file: nothing tells whether it exists.
                assert_eq!(without_date(&a), missing, "{path} {fields:?}");
            }
        }
        let missing = without_date(&method(&files, "HEAD", "/missing", &[]));
        for path in DOT_PATHS {
            assert_eq!(
                without_date(&method(&files, "HEAD", path, &[])),
                missing,
                "{path}"
            );
        }
        // `/.well-known/` is served (RFC 8615), dot names below it are not listed.
        assert_eq!(
            get(&files, "/.well-known/example.txt", &[]).body,
            b"example\n"
        );
        assert_eq!(
            get(&files, "/%2ewell-known/example.txt", &[]).body,
            b"example\n"
        );
        assert_eq!(get(&files, "/.well-known/acme/token", &[]).body, b"token\n");
        let a = get(&files, "/.well-known", &[]);
        assert_eq!(
            (a.status, a.header("location")),
            (301, Some("/.well-known/"))
        );
        let page = String::from_utf8(get(&files, "/.well-known/", &[]).body).unwrap();
        assert!(page.contains("href=\"example.txt\""));
        assert!(page.contains("href=\"acme/\""));
        assert!(!page.contains("secret") && !page.contains("private"));
        // Files beside dot names are served; listings leave dot names out.
        assert_eq!(get(&files, "/a/c.txt", &[]).body, b"c\n");
        let page = String::from_utf8(get(&files, "/a/", &[]).body).unwrap();
        assert!(page.contains("href=\"c.txt\"") && !page.contains("hidden"));
        // A root below a dot directory is fine: only names below the root count.
        let inside = StaticFiles::new(Some(dir.join(".git")), StaticOptions::default());
        assert_eq!(get(&inside, "/config", &[]).body, b"[core]\n");
    }

    #[test]
    fn dot_files_are_served_when_allowed() {
        let (dir, secret, gz) = dot_site();
        let files = StaticFiles::new(
            Some(dir.to_path_buf()),
            StaticOptions {
                allow_dotfiles: true,
                ..StaticOptions::default()
            },
        );
        for path in DOT_PATHS {
            let a = get(&files, path, &[]);
            assert!(matches!(a.status, 200 | 301), "{path}: {}", a.status);
        }
        assert_eq!(get(&files, "/.env", &[]).body, b"KEY=secret\n");
        assert_eq!(get(&files, "/%2egit/config", &[]).body, b"[core]\n");
        assert_eq!(get(&files, "/.git/", &[]).body, b"<p>git</p>\n");
        assert_eq!(get(&files, "/.git", &[]).header("location"), Some("/.git/"));
        assert_eq!(get(&files, "/.secret.txt", &[]).body, secret);
        // The sidecar too.
        assert_eq!(
            get(&files, "/.secret.txt", &["Accept-Encoding: gzip"]).body,
            gz
        );
        // Listings show dot names.
        let page = String::from_utf8(get(&files, "/list/", &[]).body).unwrap();
        assert!(page.contains("href=\".hidden\""));
        let page = String::from_utf8(get(&files, "/.well-known/", &[]).body).unwrap();
        assert!(page.contains("href=\".secret\"") && page.contains("href=\".private/\""));
    }

    #[cfg(unix)]
    #[test]
    fn links_into_dot_names_are_404_by_default() {
        let (dir, _, _) = dot_site();
        let link = |target: &str, name: &str| {
            std::os::unix::fs::symlink(dir.join(target), dir.join(name)).unwrap();
        };
        link(".env", "env-link");
        link(".git", "git-link");
        link(".well-known/.secret", "secret-link");
        link(".well-known/example.txt", "example-link");
        link(".well-known", "wk-link");
        link(".env", "list/env-link");
        link(".git", "list/git-link");
        link("hello.txt", "list/hello-link");
        link("hello.txt", ".well-known/hello-link");
        let files = StaticFiles::new(Some(dir.to_path_buf()), StaticOptions::default());
        for path in [
            "/env-link",
            "/git-link/config",
            "/git-link/",
            "/secret-link",
            "/wk-link/.secret",
            "/list/env-link",
            "/list/git-link/config",
        ] {
            assert_eq!(get(&files, path, &[]).status, 404, "{path}");
        }
        assert_eq!(get(&files, "/example-link", &[]).body, b"example\n");
        assert_eq!(get(&files, "/wk-link/example.txt", &[]).body, b"example\n");
        assert_eq!(
            get(&files, "/.well-known/hello-link", &[]).body,
            b"hello world\n"
        );
        let page = String::from_utf8(get(&files, "/list/", &[]).body).unwrap();
        assert!(page.contains("href=\"hello-link\""));
        assert!(!page.contains("env-link") && !page.contains("git-link"));
        // Allowed: followed like any link inside the root, and listed.
        let files = StaticFiles::new(
            Some(dir.to_path_buf()),
            StaticOptions {
                allow_dotfiles: true,
                ..StaticOptions::default()
            },
        );
        assert_eq!(get(&files, "/env-link", &[]).body, b"KEY=secret\n");
        assert_eq!(get(&files, "/git-link/config", &[]).body, b"[core]\n");
        let page = String::from_utf8(get(&files, "/list/", &[]).body).unwrap();
        assert!(page.contains("env-link") && page.contains("git-link"));
    }

    #[cfg(unix)]
    #[test]
    fn memory_cache_follows_changes() {
        let (files, dir) = disk();
        // Freshly written files are not cached (their ctime is too recent).
        assert_eq!(get(&files, "/hello.txt", &[]).body, b"hello world\n");
        assert_eq!(files.cache.usage().0, 0);
        std::thread::sleep(Duration::from_millis(2100));
        assert_eq!(get(&files, "/hello.txt", &[]).body, b"hello world\n");
        assert_eq!(files.cache.usage(), (1, 12));
        // Served from memory, with the same headers.
        let cached = get(&files, "/hello.txt", &["Range: bytes=0-4"]);
        assert_eq!(
            (cached.status, cached.body.as_slice()),
            (206, &b"hello"[..])
        );
        assert_eq!(cached.header("etag"), Some("\"c-65920080-5\""));
        // Rewritten in place with the same size and the old mtime: ctime differs, so the new
        // bytes are served.
        std::fs::write(dir.join("hello.txt"), b"HELLO WORLD\n").unwrap();
        File::options()
            .write(true)
            .open(dir.join("hello.txt"))
            .unwrap()
            .set_modified(UNIX_EPOCH + Duration::new(MTIME, 5))
            .unwrap();
        assert_eq!(get(&files, "/hello.txt", &[]).body, b"HELLO WORLD\n");
        // Replaced by another file (rename over it).
        std::fs::write(dir.join("new.txt"), b"replaced!!!\n").unwrap();
        std::fs::rename(dir.join("new.txt"), dir.join("hello.txt")).unwrap();
        assert_eq!(get(&files, "/hello.txt", &[]).body, b"replaced!!!\n");
        // Removed.
        std::fs::remove_file(dir.join("hello.txt")).unwrap();
        assert_eq!(get(&files, "/hello.txt", &[]).status, 404);
        // Off.
        let off = StaticFiles::new(
            Some(dir.to_path_buf()),
            StaticOptions {
                memory_cache: 0,
                ..StaticOptions::default()
            },
        );
        assert_eq!(get(&off, "/digits.txt", &[]).body, b"0123456789");
        assert_eq!(off.cache.usage(), (0, 0));
    }

    #[test]
    fn embedded_site() {
        let files = StaticFiles::new(None, StaticOptions::default());
        let a = get(&files, "/", &[]);
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
        let etag = a.header("etag").unwrap().to_string();
        assert!(etag.starts_with("\"e-"));
        assert!(a.header("last-modified").is_none());
        let a = get(&files, "/index.html", &[&format!("If-None-Match: {etag}")]);
        assert_eq!(a.status, 304);
        let a = get(&files, "/style.css", &["Range: bytes=0-3"]);
        assert_eq!((a.status, a.body.len()), (206, 4));
        let a = get(&files, "/chat.html", &[]);
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(get(&files, "/nope", &[]).status, 404);
        assert_eq!(get(&files, "/index.html/", &[]).status, 404);
    }

    #[test]
    fn cache_control_per_extension() {
        let dir = site();
        let files = StaticFiles::new(
            Some(dir.to_path_buf()),
            StaticOptions {
                cache_control: "public, max-age=60".into(),
                cache_control_by_ext: vec![(
                    "bin".into(),
                    "public, max-age=31536000, immutable".into(),
                )],
                ..StaticOptions::default()
            },
        );
        assert_eq!(
            get(&files, "/big.bin", &[]).header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(
            get(&files, "/hello.txt", &[]).header("cache-control"),
            Some("public, max-age=60")
        );
    }

    #[cfg(unix)]
    #[test]
    fn etag_with_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = site();
        let ino = std::fs::metadata(dir.join("hello.txt")).unwrap().ino();
        let files = StaticFiles::new(
            Some(dir.to_path_buf()),
            StaticOptions {
                etag_inode: true,
                ..StaticOptions::default()
            },
        );
        let expected = format!("\"c-65920080-5-{ino:x}\"");
        assert_eq!(
            get(&files, "/hello.txt", &[]).header("etag"),
            Some(expected.as_str())
        );
    }

    fn dechunk(mut body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let line = body.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&body[..line]).unwrap(), 16).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&body[line + 2..line + 2 + n]);
            body = &body[line + 2 + n + 2..];
        }
    }

    fn write_at(path: &Path, bytes: &[u8], mtime: Duration) {
        std::fs::write(path, bytes).unwrap();
        let f = File::options().write(true).open(path).unwrap();
        f.set_modified(UNIX_EPOCH + mtime).unwrap();
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("{i:06} the weft and the warp\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn compressed_variants_are_cached_per_tag() {
        let (files, dir) = disk();
        let body = text(200);
        write_at(&dir.join("t.txt"), &body, Duration::new(MTIME, 7));
        let a = get(&files, "/t.txt", &["Accept-Encoding: gzip"]);
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-encoding"), Some("gzip"));
        assert_eq!(a.header("vary"), Some("Accept-Encoding"));
        assert_eq!(a.header("accept-ranges"), None);
        let tag = format!("\"{:x}-65920080-7\"", body.len());
        assert_eq!(
            a.header("etag"),
            Some(&*variant_tag(tag.as_bytes(), Coding::Gzip))
        );
        assert_eq!(decode(Coding::Gzip, &a.body), body);
        let key = dir.join("t.txt").to_string_lossy().into_owned();
        let cached = files.compressor.cached(&key, Coding::Gzip, &tag).unwrap();
        assert_eq!(&*cached, &a.body[..]);
        // The same bytes again, and HEAD has the same length.
        assert_eq!(
            get(&files, "/t.txt", &["Accept-Encoding: gzip"]).body,
            a.body
        );
        let h = method(&files, "HEAD", "/t.txt", &["Accept-Encoding: gzip"]);
        assert_eq!(h.header("content-length"), a.header("content-length"));
        assert!(h.body.is_empty());
        // The file changes: a new tag, a new variant from the new bytes.
        let body2 = text(300);
        write_at(&dir.join("t.txt"), &body2, Duration::new(MTIME, 9));
        let b = get(&files, "/t.txt", &["Accept-Encoding: deflate, gzip;q=0.5"]);
        assert_eq!(b.header("content-encoding"), Some("deflate"));
        assert_eq!(decode(Coding::Deflate, &b.body), body2);
        let b = get(&files, "/t.txt", &["Accept-Encoding: gzip"]);
        assert_eq!(decode(Coding::Gzip, &b.body), body2);
        // Uncached: the same answer, nothing kept.
        let opts = StaticOptions {
            compress: CompressOptions {
                cache_bytes: 0,
                ..CompressOptions::default()
            },
            ..StaticOptions::default()
        };
        let uncached = StaticFiles::new(Some(dir.to_path_buf()), opts);
        let c = get(&uncached, "/t.txt", &["Accept-Encoding: gzip"]);
        assert_eq!(c.body, b.body);
        assert!(uncached
            .compressor
            .cached(&key, Coding::Gzip, b.header("etag").unwrap_or(""))
            .is_none());
    }

    #[test]
    fn sidecar_only_when_fresh_and_not_a_link() {
        let (files, dir) = disk();
        let body = text(100);
        let sidecar = compress_all(Coding::Gzip, 1, &body).unwrap();
        write_at(&dir.join("s.txt"), &body, Duration::new(MTIME, 5));
        // Older than the file: stale, ignored.
        write_at(
            &dir.join("s.txt.gz"),
            &sidecar,
            Duration::new(MTIME - 10, 0),
        );
        let a = get(&files, "/s.txt", &["Accept-Encoding: gzip"]);
        assert_ne!(a.body, sidecar);
        assert_eq!(decode(Coding::Gzip, &a.body), body);
        // Fresh: served as it is, with its own tag.
        write_at(
            &dir.join("s.txt.gz"),
            &sidecar,
            Duration::new(MTIME + 10, 0),
        );
        let b = get(&files, "/s.txt", &["Accept-Encoding: gzip"]);
        assert_eq!(b.body, sidecar);
        let tag = b.header("etag").unwrap().to_string();
        assert!(tag.contains("-gzip-") && tag != a.header("etag").unwrap());
        // Its tag revalidates; deflate does not use it.
        let nm = get(
            &files,
            "/s.txt",
            &["Accept-Encoding: gzip", &format!("If-None-Match: {tag}")],
        );
        assert_eq!(nm.status, 304);
        let d = get(&files, "/s.txt", &["Accept-Encoding: deflate"]);
        assert_eq!(decode(Coding::Deflate, &d.body), body);
        // A symbolic link as the sidecar is not followed.
        #[cfg(unix)]
        {
            std::fs::remove_file(dir.join("s.txt.gz")).unwrap();
            write_at(
                &dir.join("elsewhere.gz"),
                &sidecar,
                Duration::new(MTIME + 10, 0),
            );
            std::os::unix::fs::symlink(dir.join("elsewhere.gz"), dir.join("s.txt.gz")).unwrap();
            let e = get(&files, "/s.txt", &["Accept-Encoding: gzip"]);
            assert_ne!(e.body, sidecar);
            assert_eq!(decode(Coding::Gzip, &e.body), body);
        }
    }

    #[test]
    fn large_files_are_compressed_while_sent() {
        let (files, dir) = disk();
        let body = text(60_000); // 1.8 MB, above WHOLE_MAX
        assert!(body.len() as u64 > WHOLE_MAX);
        write_at(&dir.join("big.txt"), &body, Duration::new(MTIME, 5));
        // `request` checks that the producer never overfills the transmit window.
        let a = get(&files, "/big.txt", &["Accept-Encoding: gzip"]);
        assert_eq!(a.status, 200);
        assert_eq!(a.header("transfer-encoding"), Some("chunked"));
        assert_eq!(a.header("content-length"), None);
        assert_eq!(decode(Coding::Gzip, &dechunk(&a.body)), body);
        let h = method(&files, "HEAD", "/big.txt", &["Accept-Encoding: gzip"]);
        assert_eq!(h.header("transfer-encoding"), Some("chunked"));
        assert!(h.body.is_empty());
    }

    #[test]
    fn negotiation_rules_for_files() {
        let (files, dir) = disk();
        let body = text(200);
        write_at(&dir.join("n.txt"), &body, Duration::new(MTIME, 5));
        // Range: identity 206 with Vary; identity excluded: the range is ignored.
        let r = get(
            &files,
            "/n.txt",
            &["Accept-Encoding: gzip", "Range: bytes=0-9"],
        );
        assert_eq!(r.status, 206);
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(r.body, &body[..10]);
        let r = get(
            &files,
            "/n.txt",
            &["Accept-Encoding: identity;q=0, gzip", "Range: bytes=0-9"],
        );
        assert_eq!(r.status, 200);
        assert_eq!(decode(Coding::Gzip, &r.body), body);
        // Nothing acceptable.
        assert_eq!(
            get(&files, "/n.txt", &["Accept-Encoding: *;q=0"]).status,
            406
        );
        // Below the threshold: identity with Vary.
        let small = get(&files, "/hello.txt", &["Accept-Encoding: gzip"]);
        assert_eq!(small.header("content-encoding"), None);
        assert_eq!(small.header("vary"), Some("Accept-Encoding"));
        // A type never compressed: no Vary, no 406.
        let bin = get(&files, "/big.bin", &["Accept-Encoding: identity;q=0, gzip"]);
        assert_eq!(bin.status, 200);
        assert_eq!(bin.header("vary"), None);
        // Compression off: nothing negotiated.
        let opts = StaticOptions {
            compress: CompressOptions {
                level: 0,
                ..CompressOptions::default()
            },
            ..StaticOptions::default()
        };
        let off = StaticFiles::new(Some(dir.to_path_buf()), opts);
        let o = get(&off, "/n.txt", &["Accept-Encoding: gzip"]);
        assert_eq!(
            (o.header("vary"), o.header("content-encoding")),
            (None, None)
        );
        assert_eq!(o.body, body);
        assert_eq!(
            get(&off, "/n.txt", &["Accept-Encoding: identity;q=0"]).status,
            200
        );
    }
}
