//! The demo application the `weft` binary serves: `/hello`, `POST /echo`, `/sheep`,
//! `/api/users/:id`, and files from ROOT (or the embedded demo site when ROOT is omitted).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use weft_core::{BodyKind, Framing, Method, RequestHead};

use crate::{App, AppError, Output, Produce, Responder};

const TEXT: &[u8] = b"text/plain; charset=utf-8";
/// Largest read from a file per produce step.
const FILE_CHUNK: usize = 64 * 1024;

/// The embedded demo site: (path, content type, bytes).
const EMBEDDED: &[(&str, &str, &[u8])] = &[
    (
        "/index.html",
        "text/html; charset=utf-8",
        include_bytes!("../site/index.html"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_bytes!("../site/style.css"),
    ),
];

pub struct DemoApp {
    root: Option<PathBuf>,
}

impl DemoApp {
    /// Serves files from `root`, or the embedded site when `None`.
    pub fn new(root: Option<PathBuf>) -> DemoApp {
        DemoApp { root }
    }
}

fn method_not_allowed(out: &mut Output<'_>, allow: &str) -> Result<(), AppError> {
    let headers: [(&str, &[u8]); 2] = [("Allow", allow.as_bytes()), ("Content-Type", TEXT)];
    out.full(405, &headers, b"method not allowed\n")
}

fn not_found(out: &mut Output<'_>) -> Result<(), AppError> {
    out.full(404, &[("Content-Type", TEXT)], b"not found\n")
}

/// The value of `key` in a query string (no decoding: the demo parameters are numbers).
fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

impl App for DemoApp {
    fn start(
        &self,
        head: &RequestHead<'_>,
        out: &mut Output<'_>,
    ) -> Result<Option<Box<dyn Responder>>, AppError> {
        let path = head.path();
        let get_like = matches!(head.method, Method::Get | Method::Head);
        if let Method::Other(_) | Method::Connect | Method::Trace = head.method {
            out.full(501, &[("Content-Type", TEXT)], b"method not implemented\n")?;
            return Ok(None);
        }
        if head.target == "*" {
            // OPTIONS * : what the server supports in general.
            out.full(204, &[("Allow", b"GET, HEAD, POST, OPTIONS")], b"")?;
            return Ok(None);
        }
        match path {
            "/hello" => {
                if !get_like {
                    method_not_allowed(out, "GET, HEAD")?;
                } else {
                    out.full(200, &[("Content-Type", TEXT)], b"Hello, world!")?;
                }
                Ok(None)
            }
            "/echo" => {
                if head.method != Method::Post {
                    method_not_allowed(out, "POST")?;
                    return Ok(None);
                }
                let content_type = head
                    .headers
                    .get("content-type")
                    .unwrap_or(b"application/octet-stream")
                    .to_vec();
                let body = match head.framing {
                    Framing::None => BodyKind::Length(0),
                    Framing::Length(n) => BodyKind::Length(n),
                    Framing::Chunked => BodyKind::Stream,
                };
                // The head waits for the first body event, so `Expect: 100-continue` gets its
                // interim answer when the body is actually read.
                Ok(Some(Box::new(Echo {
                    content_type,
                    body,
                    head_sent: false,
                })))
            }
            "/sheep" => {
                if !get_like {
                    method_not_allowed(out, "GET, HEAD")?;
                    return Ok(None);
                }
                let count = query_param(head.query(), "n").and_then(|v| v.parse::<u32>().ok());
                let ms = query_param(head.query(), "ms").and_then(|v| v.parse::<u64>().ok());
                let count = count.unwrap_or(10);
                let ms = ms.unwrap_or(1000);
                if count > 100_000 || ms > 60_000 {
                    out.full(
                        400,
                        &[("Content-Type", TEXT)],
                        b"n <= 100000 and ms <= 60000\n",
                    )?;
                    return Ok(None);
                }
                out.head(200, &[("Content-Type", TEXT)], BodyKind::Stream)?;
                Ok(Some(Box::new(Sheep {
                    next: 1,
                    count,
                    interval: Duration::from_millis(ms),
                    due: None,
                })))
            }
            _ if path.starts_with("/api/users/") => {
                if !get_like {
                    method_not_allowed(out, "GET, HEAD")?;
                    return Ok(None);
                }
                let id_text = path.trim_start_matches("/api/users/");
                match id_text.parse::<u64>() {
                    Ok(id) if id.to_string() == id_text => {
                        let body = format!("{{\"id\":{id},\"name\":\"User {id}\"}}");
                        out.full(
                            200,
                            &[("Content-Type", b"application/json")],
                            body.as_bytes(),
                        )?;
                    }
                    _ => not_found(out)?,
                }
                Ok(None)
            }
            _ => {
                if !get_like {
                    method_not_allowed(out, "GET, HEAD")?;
                    return Ok(None);
                }
                self.serve_file(head, out)
            }
        }
    }
}

impl DemoApp {
    fn serve_file(
        &self,
        head: &RequestHead<'_>,
        out: &mut Output<'_>,
    ) -> Result<Option<Box<dyn Responder>>, AppError> {
        let Some(rel) = safe_relative_path(head.path()) else {
            not_found(out)?;
            return Ok(None);
        };
        let is_dir_request = head.path().ends_with('/');
        let Some(root) = &self.root else {
            let wanted = if is_dir_request {
                format!(
                    "/{}index.html",
                    rel.iter().map(|s| format!("{s}/")).collect::<String>()
                )
            } else {
                format!("/{}", rel.join("/"))
            };
            match EMBEDDED.iter().find(|(p, _, _)| *p == wanted) {
                Some((_, mime, bytes)) => {
                    out.full(200, &[("Content-Type", mime.as_bytes())], bytes)?
                }
                None => not_found(out)?,
            }
            return Ok(None);
        };
        let mut path = root.clone();
        for segment in &rel {
            path.push(segment);
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            not_found(out)?;
            return Ok(None);
        };
        if meta.is_dir() {
            if !is_dir_request {
                // The query names the same resource below the directory: keep it.
                let location = match head.query() {
                    Some(query) => format!("{}/?{query}", head.path()),
                    None => format!("{}/", head.path()),
                };
                let headers: [(&str, &[u8]); 2] =
                    [("Location", location.as_bytes()), ("Content-Type", TEXT)];
                out.full(301, &headers, b"moved permanently\n")?;
                return Ok(None);
            }
            path.push("index.html");
        } else if is_dir_request {
            // `/file/` names a directory that does not exist.
            not_found(out)?;
            return Ok(None);
        }
        let Ok(file) = File::open(&path) else {
            not_found(out)?;
            return Ok(None);
        };
        let Ok(meta) = file.metadata() else {
            not_found(out)?;
            return Ok(None);
        };
        if !meta.is_file() {
            not_found(out)?;
            return Ok(None);
        }
        let len = meta.len();
        out.head(
            200,
            &[("Content-Type", mime_for(&path))],
            BodyKind::Length(len),
        )?;
        if head.method == Method::Head || len == 0 {
            out.end()?;
            return Ok(None);
        }
        Ok(Some(Box::new(FileBody {
            file,
            remaining: len,
            buf: Vec::new(),
        })))
    }
}

/// Maps a request path to segments below the root: percent-decoded once; refuses NUL,
/// backslash, encoded slashes, non-UTF-8 and any `..` segment, so nothing can leave ROOT.
pub fn safe_relative_path(path: &str) -> Option<Vec<String>> {
    if !path.starts_with('/') {
        return None;
    }
    let mut segments = Vec::new();
    for raw in path.split('/') {
        let decoded = percent_decode(raw)?;
        let segment = String::from_utf8(decoded).ok()?;
        if segment.contains(['\0', '\\', '/']) || segment == ".." {
            return None;
        }
        if segment.is_empty() || segment == "." {
            continue;
        }
        segments.push(segment);
    }
    Some(segments)
}

/// Decodes `%XX` escapes; `None` for a malformed escape.
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

fn mime_for(path: &Path) -> &'static [u8] {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => b"text/html; charset=utf-8",
        "css" => b"text/css; charset=utf-8",
        "js" | "mjs" => b"text/javascript; charset=utf-8",
        "json" => b"application/json",
        "txt" => TEXT,
        "xml" => b"application/xml",
        "svg" => b"image/svg+xml",
        "png" => b"image/png",
        "jpg" | "jpeg" => b"image/jpeg",
        "gif" => b"image/gif",
        "webp" => b"image/webp",
        "ico" => b"image/x-icon",
        "wasm" => b"application/wasm",
        "pdf" => b"application/pdf",
        "woff2" => b"font/woff2",
        _ => b"application/octet-stream",
    }
}

/// `POST /echo`: request body bytes go straight back out, pulled only while the output has
/// room, so any size streams in constant memory.
struct Echo {
    content_type: Vec<u8>,
    body: BodyKind,
    head_sent: bool,
}

impl Echo {
    fn send_head(&mut self, out: &mut Output<'_>) -> Result<(), AppError> {
        if !self.head_sent {
            self.head_sent = true;
            out.head(200, &[("Content-Type", &self.content_type)], self.body)?;
        }
        Ok(())
    }
}

impl Responder for Echo {
    fn wants_body(&self) -> bool {
        true
    }

    fn body_data(&mut self, data: &[u8], out: &mut Output<'_>) -> Result<(), AppError> {
        self.send_head(out)?;
        out.data(data)
    }

    fn body_end(&mut self, out: &mut Output<'_>) -> Result<(), AppError> {
        self.send_head(out)?;
        out.end()
    }

    fn produce(&mut self, _out: &mut Output<'_>) -> Result<Produce, AppError> {
        Ok(Produce::WaitForBody)
    }
}

/// `GET /sheep?n=N&ms=M`: the reference book's generator, one line every M ms.
struct Sheep {
    next: u32,
    count: u32,
    interval: Duration,
    due: Option<std::time::Instant>,
}

impl Responder for Sheep {
    fn produce(&mut self, out: &mut Output<'_>) -> Result<Produce, AppError> {
        let now = out.now().instant;
        if self.next > self.count {
            out.end()?;
            return Ok(Produce::Done);
        }
        let due = *self.due.get_or_insert(now);
        if now < due {
            return Ok(Produce::WaitUntil(due));
        }
        out.data(format!("{} sheep\n", self.next).as_bytes())?;
        self.next += 1;
        if self.next > self.count {
            out.end()?;
            return Ok(Produce::Done);
        }
        self.due = Some(due + self.interval);
        Ok(Produce::More)
    }
}

/// A file body read in bounded chunks as the socket takes them. The file handle is closed when
/// this is dropped: on completion, on error and when the client goes away.
struct FileBody {
    file: File,
    remaining: u64,
    buf: Vec<u8>,
}

impl Responder for FileBody {
    fn produce(&mut self, out: &mut Output<'_>) -> Result<Produce, AppError> {
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(FILE_CHUNK)
            .min(out.room().max(4096));
        self.buf.resize(want, 0);
        let n = self.file.read(&mut self.buf)?;
        if n == 0 {
            return Err(AppError("file shrank while being sent".into()));
        }
        out.data(self.buf.get(..n).unwrap_or(&[]))?;
        self.remaining -= n as u64;
        if self.remaining == 0 {
            out.end()?;
            return Ok(Produce::Done);
        }
        Ok(Produce::More)
    }
}
