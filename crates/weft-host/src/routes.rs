//! The host's own application: weft's demo routes that need no state beyond one connection,
//! with the answers weft's demo gives (same status, fields and bodies; the middleware fields
//! weft adds, `Server` and the like, are not the engine's business and are left out).
//!
//! | route | answer |
//! |---|---|
//! | `GET /hello` | `Hello, world!` |
//! | `POST /echo` | the request body streamed back |
//! | `GET /sheep?n=N&ms=M` | N lines, one every M ms, chunked |
//! | `GET /api/users/:id` | `{"id":ID,"name":"User ID"}` for a canonical decimal id, else 404 |
//! | `GET /ws/echo` | WebSocket: every message echoed |
//! | `GET /ws/chat[?room=NAME]` | WebSocket: each text message broadcast to the room's members |
//! | other paths | files below `--root` (GET, HEAD) when it is given, else 404 |
//!
//! Method rules as weft's router: HEAD wherever GET is, `OPTIONS` is 204 with `Allow`, a known
//! path with another method is 405 with `Allow`, an unknown method 501, `OPTIONS *` lists all.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TEXT: &str = "text/plain; charset=utf-8";
/// The longest chat room name (longer ones are cut, as weft does).
const MAX_ROOM: usize = 64;
const JSON: &str = "application/json";

/// A request head as the engine reported it.
pub struct Head<'a> {
    pub method: &'a str,
    pub target: &'a str,
    /// The target's path (the engine found it in origin or absolute form).
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The fields, names as sent.
    pub fields: &'a [(String, Vec<u8>)],
    /// The request body: `None` without one, `Some(None)` chunked, else its length.
    pub body: Option<Option<u64>>,
}

impl Head<'_> {
    /// The first value of field `name` (any case).
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// How a response body is framed (the engine writes the framing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    Length(u64),
    Stream,
}

/// What to answer a request with.
pub enum Answer {
    /// A complete response.
    Full {
        status: u16,
        fields: Vec<(&'static str, Vec<u8>)>,
        body: Vec<u8>,
    },
    /// `POST /echo`: the head goes out with the first body event, then the body comes back
    /// as it is read.
    Echo { content_type: Vec<u8>, body: Body },
    /// `GET /sheep`: a chunked line every `interval`.
    Sheep(Sheep),
    /// A file of the root, `len` bytes (HEAD: no body is sent, the engine knows that).
    File {
        content_type: &'static str,
        file: File,
        len: u64,
    },
    /// `GET /ws/echo` (`chat: None`) or `/ws/chat` (`chat: Some(room)`): the engine checks
    /// the handshake; the origin policy was applied.
    WebSocket { chat: Option<String> },
}

fn full(status: u16, fields: Vec<(&'static str, Vec<u8>)>, body: &[u8]) -> Answer {
    Answer::Full {
        status,
        fields,
        body: body.to_vec(),
    }
}

fn text(status: u16, body: &[u8]) -> Answer {
    full(status, vec![("Content-Type", TEXT.into())], body)
}

/// The host's settings for the application.
#[derive(Clone, Debug, Default)]
pub struct AppConfig {
    /// Files from here for paths no route takes.
    pub root: Option<PathBuf>,
    /// Origins allowed to open a WebSocket (empty: any); handshakes without `Origin` pass.
    pub ws_origins: Vec<String>,
}

const GET: u8 = 1;
const HEAD: u8 = 2;
const POST: u8 = 4;
const OPTIONS: u8 = 8;

/// `Allow` for a set (HEAD with GET, OPTIONS always), names in alphabetical order.
fn allow(set: u8) -> Vec<u8> {
    let set = set | OPTIONS | if set & GET != 0 { HEAD } else { 0 };
    let names = [
        (GET, "GET"),
        (HEAD, "HEAD"),
        (OPTIONS, "OPTIONS"),
        (POST, "POST"),
    ];
    let list: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| set & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    list.join(", ").into_bytes()
}

/// Routes a request.
pub fn answer(config: &AppConfig, head: &Head<'_>) -> Answer {
    let method = match head.method {
        "GET" => GET,
        "HEAD" => HEAD,
        "POST" => POST,
        "OPTIONS" => OPTIONS,
        "PUT" | "DELETE" | "PATCH" => 0,
        _ => return text(501, b"method not implemented\n"),
    };
    let all = GET | POST;
    if head.target == "*" {
        if method == OPTIONS {
            return full(204, vec![("Allow", allow(all))], b"");
        }
        return not_found();
    }
    let path = head.path;
    let routed = match path {
        "/hello" | "/sheep" | "/ws/echo" | "/ws/chat" => Some(GET),
        "/echo" => Some(POST),
        p if p
            .strip_prefix("/api/users/")
            .is_some_and(|id| !id.contains('/')) =>
        {
            Some(GET)
        }
        _ => None,
    };
    let takes = |set: u8| set & method != 0 || (set & GET != 0 && method == HEAD);
    match routed {
        Some(set) if takes(set) => route(config, head, path),
        Some(set) => refuse(method, set),
        None if config.root.is_some() && takes(GET) => file(config, path),
        None if config.root.is_some() => refuse(method, GET),
        None => not_found(),
    }
}

fn refuse(method: u8, set: u8) -> Answer {
    if method == OPTIONS {
        return full(204, vec![("Allow", allow(set))], b"");
    }
    full(
        405,
        vec![("Allow", allow(set)), ("Content-Type", TEXT.into())],
        b"method not allowed\n",
    )
}

fn not_found() -> Answer {
    text(404, b"not found\n")
}

fn route(config: &AppConfig, head: &Head<'_>, path: &str) -> Answer {
    match path {
        "/hello" => text(200, b"Hello, world!"),
        "/echo" => {
            let content_type = head
                .field("content-type")
                .unwrap_or(b"application/octet-stream")
                .to_vec();
            // The response is framed as the request was.
            let body = match head.body {
                None => Body::Length(0),
                Some(Some(n)) => Body::Length(n),
                Some(None) => Body::Stream,
            };
            Answer::Echo { content_type, body }
        }
        "/sheep" => sheep(head),
        "/ws/echo" | "/ws/chat" => {
            let allowed = config.ws_origins.is_empty()
                || head.field("origin").is_none_or(|o| {
                    config
                        .ws_origins
                        .iter()
                        .any(|a| a.as_bytes().eq_ignore_ascii_case(o))
                });
            if !allowed {
                return text(403, b"this origin may not open a WebSocket here\n");
            }
            let chat = (path == "/ws/chat").then(|| {
                let mut room = query_param(head.query, "room").unwrap_or("");
                let mut end = room.len().min(MAX_ROOM);
                while !room.is_char_boundary(end) {
                    end -= 1;
                }
                room = room.get(..end).unwrap_or("");
                room.to_string()
            });
            Answer::WebSocket { chat }
        }
        _ => user(
            &percent_decode(path.strip_prefix("/api/users/").unwrap_or("")).unwrap_or_default(),
        ),
    }
}

fn user(id_text: &str) -> Answer {
    // The parameter is percent-decoded (as weft's router does); a malformed one is no id.
    match id_text.parse::<u64>() {
        Ok(id) if id.to_string() == id_text => {
            let body = format!("{{\"id\":{id},\"name\":\"User {id}\"}}");
            full(200, vec![("Content-Type", JSON.into())], body.as_bytes())
        }
        _ => not_found(),
    }
}

/// `GET /sheep?n=N&ms=M`: the "count sheep" generator (N lines, one every M ms).
pub struct Sheep {
    pub next: u32,
    pub count: u32,
    pub interval: Duration,
    /// Monotonic ns of the next line (set at the first step).
    pub due: Option<u64>,
}

impl Sheep {
    /// The next line when it is due at `now_ns`: `Ok(Some(line))`; `Err(due)` when it is not
    /// yet due; `Ok(None)` when the body is complete.
    pub fn step(&mut self, now_ns: u64) -> Result<Option<String>, u64> {
        if self.next > self.count {
            return Ok(None);
        }
        let due = *self.due.get_or_insert(now_ns);
        if now_ns < due {
            return Err(due);
        }
        let line = format!("{} sheep\n", self.next);
        self.next += 1;
        let step = u64::try_from(self.interval.as_nanos()).unwrap_or(u64::MAX);
        self.due = Some(due.saturating_add(step));
        Ok(Some(line))
    }
}

fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn sheep(head: &Head<'_>) -> Answer {
    let count = query_param(head.query, "n").map_or(Some(10), |v| v.parse::<u32>().ok());
    let ms = query_param(head.query, "ms").map_or(Some(1000), |v| v.parse::<u64>().ok());
    let count = count.unwrap_or(10);
    let ms = ms.unwrap_or(1000);
    if count > 100_000 || ms > 60_000 {
        return text(400, b"n <= 100000 and ms <= 60000\n");
    }
    Answer::Sheep(Sheep {
        next: 1,
        count,
        interval: Duration::from_millis(ms),
        due: None,
    })
}

/// Decodes `%XX` escapes; `None` for a malformed one or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A file below the root: names decoded, dot names and `..` refused (404), a directory
/// without its `/` redirected, `index.html` for a directory.
fn file(config: &AppConfig, path: &str) -> Answer {
    let Some(root) = config.root.as_deref() else {
        return not_found();
    };
    let Some(decoded) = percent_decode(path) else {
        return not_found();
    };
    let mut full_path = root.to_path_buf();
    for name in decoded.split('/').filter(|n| !n.is_empty()) {
        if name.starts_with('.') || name.contains('\0') || name.contains('\\') {
            return not_found();
        }
        full_path.push(name);
    }
    if !inside(root, &full_path) {
        return not_found();
    }
    if full_path.is_dir() {
        if !decoded.ends_with('/') {
            let mut location = path.as_bytes().to_vec();
            location.push(b'/');
            return full(
                301,
                vec![("Location", location), ("Content-Type", TEXT.into())],
                b"moved permanently\n",
            );
        }
        full_path.push("index.html");
    }
    let Ok(file) = File::open(&full_path) else {
        return not_found();
    };
    match file.metadata() {
        Ok(m) if m.is_file() => Answer::File {
            content_type: content_type(&full_path),
            file,
            len: m.len(),
        },
        _ => not_found(),
    }
}

/// Whether `path` (links resolved) stays below `root`.
fn inside(root: &Path, path: &Path) -> bool {
    match (root.canonicalize(), path.canonicalize()) {
        (Ok(r), Ok(p)) => p.starts_with(r),
        // A missing file: the open fails later, 404 either way.
        (Ok(_), Err(_)) => true,
        _ => false,
    }
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("txt") => TEXT,
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("json") => JSON,
        Some("svg") => "image/svg+xml; charset=utf-8",
        Some("png") => "image/png",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head<'a>(method: &'a str, target: &'a str) -> Head<'a> {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        Head {
            method,
            target,
            path: path.strip_prefix("http://localhost").unwrap_or(path),
            query,
            fields: &[],
            body: None,
        }
    }

    fn status(a: &Answer) -> u16 {
        match a {
            Answer::Full { status, .. } => *status,
            Answer::File { .. } | Answer::Echo { .. } | Answer::Sheep(_) => 200,
            Answer::WebSocket { .. } => 101,
        }
    }

    fn allow_of(a: &Answer) -> Option<String> {
        match a {
            Answer::Full { fields, .. } => fields
                .iter()
                .find(|(n, _)| *n == "Allow")
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
            _ => None,
        }
    }

    #[test]
    fn methods_like_weft() {
        let site = AppConfig {
            root: Some(PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../conformance/fixtures/site"
            ))),
            ..AppConfig::default()
        };
        let a = answer(&site, &head("POST", "/hello"));
        assert_eq!(status(&a), 405);
        assert_eq!(allow_of(&a).as_deref(), Some("GET, HEAD, OPTIONS"));
        let a = answer(&site, &head("GET", "/echo"));
        assert_eq!(allow_of(&a).as_deref(), Some("OPTIONS, POST"));
        assert_eq!(status(&answer(&site, &head("BREW", "/hello"))), 501);
        let a = answer(&site, &head("OPTIONS", "*"));
        assert_eq!(allow_of(&a).as_deref(), Some("GET, HEAD, OPTIONS, POST"));
        assert_eq!(status(&answer(&site, &head("GET", "/hello.txt"))), 200);
        assert_eq!(status(&answer(&site, &head("GET", "/hello%2Etxt"))), 200);
        assert_eq!(status(&answer(&site, &head("GET", "/.private"))), 404);
        assert_eq!(status(&answer(&site, &head("GET", "/../Cargo.toml"))), 404);
        assert_eq!(status(&answer(&site, &head("GET", "/sub"))), 301);
        assert_eq!(status(&answer(&site, &head("DELETE", "/hello.txt"))), 405);
        assert_eq!(status(&answer(&site, &head("GET", "/api/users/007"))), 404);
        assert_eq!(status(&answer(&site, &head("GET", "/api/users/7"))), 200);
        assert_eq!(
            status(&answer(&site, &head("GET", "http://localhost/hello?a"))),
            200
        );
        let bare = AppConfig::default();
        assert_eq!(status(&answer(&bare, &head("GET", "/hello.txt"))), 404);
    }

    #[test]
    fn sheep_lines_are_spaced() {
        let Answer::Sheep(mut s) = sheep(&head("GET", "/sheep?n=2&ms=10")) else {
            panic!("not sheep");
        };
        assert_eq!(s.step(5).unwrap().as_deref(), Some("1 sheep\n"));
        assert_eq!(s.step(6), Err(10_000_005));
        assert_eq!(s.step(10_000_005).unwrap().as_deref(), Some("2 sheep\n"));
        assert_eq!(s.step(10_000_006).unwrap(), None);
    }
}
