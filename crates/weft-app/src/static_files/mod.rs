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
//!
//! The module's parts, in the order a request meets them:
//! - this file: the options, the service, the mapping of a path onto an embedded file, a
//!   file below the root, or a directory (index or listing);
//! - `lookup`: finding names below the root (symbolic links, dot names) and reading a
//!   directory for its listing;
//! - `representation`: what is answered ([`Representation`]: type, length, validators, where
//!   the bytes are) and how a file's validators are made;
//! - `respond`: the decision order (content coding, preconditions, ranges) and the answer;
//! - `stream`: the body, read in bounded pieces as the socket takes them.

mod lookup;
mod representation;
mod respond;
mod stream;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weft_core::{BodyKind, Method, RequestHead};

use crate::compressor::{CompressOptions, Compressor, Negotiation, VARY};
use crate::conditional::Validators;
use crate::file_cache::{Cached, FileCache, Stamp};
use crate::listing;
use crate::mapping::{is_hidden, map_path, MappedPath};
use crate::mime;
use crate::{AppError, Output};

use lookup::{lookup, read_entries, Refusal};
use representation::{date_seconds, file_validators, http_date, Body, Memory, Origin};
use representation::{Representation, TEXT};
use respond::{preconditions, redirect_to_dir, refuse, respond, Answer};
use stream::{Piece, Stream};

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
    ("index.html", include_bytes!("../../site/index.html")),
    ("chat.html", include_bytes!("../../site/chat.html")),
    ("style.css", include_bytes!("../../site/style.css")),
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
    /// Made at the first request for the file (hashing every file up front would cost each
    /// fresh instance of a wasi:http component the whole site).
    etag: std::sync::OnceLock<Arc<str>>,
}

impl EmbeddedFile {
    fn etag(&self) -> Arc<str> {
        let tag = self
            .etag
            .get_or_init(|| Arc::from(format!("\"e-{:016x}\"", fnv1a(&[self.bytes]))));
        Arc::clone(tag)
    }
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

impl StaticFiles {
    /// Serves the files below `root`, or the embedded demo site when `None`.
    pub fn new(root: Option<PathBuf>, options: StaticOptions) -> StaticFiles {
        match root {
            None => StaticFiles::embedded(EMBEDDED, options),
            Some(root) => {
                #[cfg(not(target_os = "wasi"))]
                let canonical = std::fs::canonicalize(&root).ok();
                #[cfg(target_os = "wasi")]
                let canonical = None;
                StaticFiles::with_source(Source::Disk { root, canonical }, options)
            }
        }
    }

    /// Serves files compiled in: `(path below the root, bytes)`, paths separated by `/`.
    pub fn embedded(
        files: &'static [(&'static str, &'static [u8])],
        options: StaticOptions,
    ) -> StaticFiles {
        let files = files
            .iter()
            .map(|&(name, bytes)| EmbeddedFile {
                name,
                bytes,
                etag: std::sync::OnceLock::new(),
            })
            .collect();
        StaticFiles::with_source(Source::Embedded(files), options)
    }

    fn with_source(source: Source, options: StaticOptions) -> StaticFiles {
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
    pub fn serve(&self, head: &RequestHead<'_>, path: &str, out: &mut Output<'_>) -> Answer {
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
    ) -> Answer {
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
            match find(&index) {
                Some(file) => Some(file),
                None if !self.options.listing => return refuse(out, Refusal::Forbidden),
                None => {
                    let entries = self.embedded_entries(files, &joined);
                    return self.listing_page(&entries, false, &mapped.segments, head, out);
                }
            }
        } else if mapped.dir {
            None
        } else {
            find(&joined)
        };
        let Some(file) = file else {
            return refuse(out, Refusal::NotFound);
        };
        let validators = Validators {
            etag: Some(file.etag()),
            last_modified: None,
        };
        let rep = Representation::new(
            mime::content_type(file.name),
            self.options.cache_control_for(file.name),
            file.bytes.len() as u64,
            validators,
            Body::Memory(Memory::Static(file.bytes)),
            Origin::Embedded(file.name),
        );
        respond(head, rep, &self.compressor, out)
    }

    /// The entries of the embedded directory `dir` (`""`: the root): its files and the
    /// directories their paths go through, sorted as a listing shows them.
    fn embedded_entries(&self, files: &[EmbeddedFile], dir: &str) -> Vec<listing::Entry> {
        let mut entries: Vec<listing::Entry> = Vec::new();
        for file in files {
            let rest = match dir {
                "" => Some(file.name),
                _ => file
                    .name
                    .strip_prefix(dir)
                    .and_then(|r| r.strip_prefix('/')),
            };
            let Some(rest) = rest else {
                continue;
            };
            let (name, is_dir) = match rest.split_once('/') {
                Some((sub, _)) => (sub, true),
                None => (rest, false),
            };
            if (name.starts_with('.') && !self.options.allow_dotfiles)
                || entries.iter().any(|e| e.name == name)
            {
                continue;
            }
            entries.push(listing::Entry {
                name: name.to_string(),
                is_dir,
                size: if is_dir { 0 } else { file.bytes.len() as u64 },
                modified: None,
            });
        }
        listing::sort(&mut entries);
        entries
    }

    fn serve_disk(
        &self,
        root: &Path,
        canonical: Option<&Path>,
        head: &RequestHead<'_>,
        mapped: &MappedPath,
        out: &mut Output<'_>,
    ) -> Answer {
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

    /// Serves the regular file at `path`; `found` is its metadata from the lookup. A small
    /// unchanged file comes from the memory cache (no open, no read); a small file the cache
    /// wants is read whole and cached; anything else is answered from the open file.
    fn serve_file(
        &self,
        path: &Path,
        name: &str,
        found: &Metadata,
        head: &RequestHead<'_>,
        out: &mut Output<'_>,
    ) -> Answer {
        let cache_control = self.options.cache_control_for(name);
        if let Some(stamp) = Stamp::of(found) {
            if let Some(c) = self.cache.get(path, &stamp) {
                let rep = Representation::cached(c, cache_control, Origin::disk(path, found));
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
            if let Some(c) = self.read_into_cache(&mut file, path, name, &meta, stamp, now)? {
                let rep = Representation::cached(c, cache_control, Origin::disk(path, &meta));
                return respond(head, rep, &self.compressor, out);
            }
            // Written while being read (or no usable times): serve it from the file as it
            // is now, uncached.
            file.seek(SeekFrom::Start(0))?;
            meta = file.metadata()?;
        }
        let rep = Representation::new(
            mime::content_type(name),
            cache_control,
            meta.len(),
            file_validators(&meta, now, self.options.etag_inode),
            Body::File(file),
            Origin::disk(path, &meta),
        );
        respond(head, rep, &self.compressor, out)
    }

    /// Reads a small file whole and puts it in the memory cache; `None` when it changed while
    /// being read or has no usable times (then it is not cached).
    fn read_into_cache(
        &self,
        file: &mut File,
        path: &Path,
        name: &str,
        meta: &Metadata,
        stamp: Stamp,
        now: u64,
    ) -> Result<Option<Cached>, AppError> {
        let mut bytes = Vec::with_capacity(usize::try_from(stamp.size()).unwrap_or(0));
        file.by_ref().take(stamp.size()).read_to_end(&mut bytes)?;
        // Cached only when the file is still the version read (not written meanwhile).
        if bytes.len() as u64 != stamp.size() || Stamp::of(&file.metadata()?) != Some(stamp) {
            return Ok(None);
        }
        let validators = file_validators(meta, now, self.options.etag_inode);
        let (Some(etag), Some(lm)) = (validators.etag, validators.last_modified) else {
            return Ok(None);
        };
        let cached = Cached {
            bytes: Arc::from(bytes),
            content_type: mime::content_type(name),
            etag,
            last_modified: lm,
            last_modified_text: Arc::from(http_date(lm)),
        };
        self.cache.insert(path, stamp, cached.clone());
        Ok(Some(cached))
    }

    fn serve_listing(
        &self,
        dir: &Path,
        canonical: Option<&Path>,
        segments: &[String],
        head: &RequestHead<'_>,
        out: &mut Output<'_>,
    ) -> Answer {
        let (entries, omitted) = match read_entries(dir, canonical, self.options.allow_dotfiles) {
            Ok(read) => read,
            Err(e) => return refuse(out, Refusal::from(e)),
        };
        self.listing_page(&entries, omitted, segments, head, out)
    }

    /// Answers with the listing page of a directory's `entries` (sorted here).
    fn listing_page(
        &self,
        entries: &[listing::Entry],
        omitted: bool,
        segments: &[String],
        head: &RequestHead<'_>,
        out: &mut Output<'_>,
    ) -> Answer {
        let mut url_path = String::from("/");
        for s in segments {
            url_path.push_str(s);
            url_path.push('/');
        }
        let page = listing::render(&url_path, entries, omitted).into_bytes();
        let mut rep = Representation::page(
            Cow::Borrowed("text/html; charset=utf-8"),
            &self.options.cache_control,
            page.len() as u64,
        );
        let negotiation =
            self.compressor
                .negotiate(head, rep.content_type.as_bytes(), Some(rep.len), false);
        // A 304 of a negotiable page says so too.
        rep.vary = negotiation != Negotiation::Fixed;
        // Conditions still apply (If-None-Match: * is 304, If-Match: "x" is 412); ranges do not.
        if let Some(answer) = preconditions(head, &rep, out) {
            return answer;
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
        let body = Body::Memory(Memory::Static(&[]));
        Ok(Some(Box::new(Stream::new(body, vec![Piece::Bytes(page)]))))
    }
}
