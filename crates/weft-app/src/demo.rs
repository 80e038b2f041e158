//! The demo application the `weft` binary serves, built on the router and the middleware
//! chain:
//!
//! | route | answer |
//! |---|---|
//! | `GET /hello` | `Hello, world!` |
//! | `POST /echo` | the request body streamed back |
//! | `GET /sheep?n=N&ms=M` | N lines, one every M ms, chunked (gzip/deflate when negotiated, flushed per line) |
//! | `GET /api/users/:id` | `{"id":ID,"name":"User ID"}` for a canonical decimal id, else 404 |
//! | `GET /api/greet/:name` | `{"hello":NAME}` (the decoded parameter, JSON-escaped) |
//! | `GET /api/path/*rest` | `{"raw":RAW,"decoded":DECODED or null}` (the wildcard) |
//! | `GET /api/fail` | the handler fails: 500, the connection lives on |
//! | `GET /api/fail/stream` | fails after the head and one chunk: the connection is aborted |
//! | `GET /ws/echo` | WebSocket: every message echoed (text and binary) |
//! | `GET /ws/chat[?room=NAME]` | WebSocket: each text message broadcast to every member of the room |
//! | anything else | files from ROOT (the embedded demo site without ROOT), GET/HEAD |
//!
//! Middleware, outermost first: access log (unless quiet), security headers, CORS (when
//! origins are configured).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use weft_core::{BodyKind, Framing, Method, RequestHead};

use crate::chat::{self, ChatRoom};
use crate::compressor::{BodyEncoder, Compressor};
use crate::middleware::{AccessLog, Chain, Cors, SecurityHeaders};
use crate::router::{not_found, HandlerResult, MethodSet, Request, Router};
use crate::{
    App, AppError, Completed, Output, Produce, Responder, StaticFiles, StaticOptions, WsOptions,
};

const TEXT: &[u8] = b"text/plain; charset=utf-8";
const JSON: &[u8] = b"application/json";
/// How the demo is set up (the `weft serve` options that reach the application).
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Files from here; else `site`.
    pub root: Option<PathBuf>,
    /// Files compiled in, `(path, bytes)`, served when there is no `root`; the embedded demo
    /// site when both are `None`.
    pub site: Option<&'static [(&'static str, &'static [u8])]>,
    /// The access log middleware (`--quiet` turns it off).
    pub access_log: bool,
    /// CORS origins (`--cors-origin`, repeatable; `*` for any); none: no CORS middleware.
    pub cors_origins: Vec<String>,
    /// The static file service (listing, Cache-Control, ETag flavour).
    pub files: StaticOptions,
    /// The `/ws/echo` session options (limits, ping timing, permessage-deflate).
    pub ws_echo: WsOptions,
    /// The `/ws/chat` session options.
    pub ws_chat: WsOptions,
    /// The chat room, shared by every worker.
    pub chat_room: Arc<ChatRoom>,
    /// The origins allowed to open WebSocket sessions (empty: any); already applied to
    /// `ws_echo` and `ws_chat` by [`crate::demo_options::apply`].
    pub ws_origins: Vec<String>,
}

/// Messages in the chat room are short: a smaller limit than the echo's.
pub const CHAT_MAX_MESSAGE: usize = 64 * 1024;

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            root: None,
            site: None,
            access_log: true,
            cors_origins: Vec::new(),
            files: StaticOptions::default(),
            ws_echo: WsOptions::default(),
            ws_chat: chat_options(),
            chat_room: Arc::new(ChatRoom::default()),
            ws_origins: Vec::new(),
        }
    }
}

/// The chat's session options: the defaults with [`CHAT_MAX_MESSAGE`].
pub fn chat_options() -> WsOptions {
    let mut options = WsOptions::default();
    options.config.max_message = CHAT_MAX_MESSAGE;
    options.config.max_frame = CHAT_MAX_MESSAGE;
    options
}

/// The demo: its router wrapped in the middleware chain.
pub struct DemoApp {
    chain: Chain,
}

impl DemoApp {
    /// Builds the demo; `Err` ([`AppError::Config`]) for an invalid CORS origin.
    pub fn new(config: DemoConfig) -> Result<DemoApp, AppError> {
        let router = demo_router(&config).map_err(|e| AppError::Config(e.to_string()))?;
        let mut chain = Chain::new(router);
        if config.access_log {
            chain = chain.with(AccessLog);
        }
        chain = chain.with(SecurityHeaders::default());
        if !config.cors_origins.is_empty() {
            chain = chain.with(Cors::new(&config.cors_origins)?);
        }
        Ok(DemoApp { chain })
    }
}

impl App for DemoApp {
    fn start(&self, head: &RequestHead<'_>, out: &mut Output<'_>) -> HandlerResult {
        self.chain.start(head, out)
    }

    fn failed(&self, err: &AppError, out: &mut Output<'_>, log: &mut Vec<u8>) {
        self.chain.failed(err, out, log);
    }

    fn complete(&self, done: &Completed<'_>, log: &mut Vec<u8>) {
        self.chain.complete(done, log);
    }
}

/// The demo routes, files as the fallback.
pub fn demo_router(config: &DemoConfig) -> Result<Router, crate::router::PatternError> {
    let mut router = Router::new();
    let echo_options = config.ws_echo.clone();
    let chat_options = config.ws_chat.clone();
    let room = Arc::clone(&config.chat_room);
    let compressor = Arc::new(Compressor::new(config.files.compress.clone()));
    router
        .get("/hello", hello)?
        .post("/echo", echo)?
        .get("/sheep", move |req: &Request<'_>, out: &mut Output<'_>| {
            sheep(req, out, &compressor)
        })?
        .get("/api/users/:id", user)?
        .get("/api/greet/:name", greet)?
        .get("/api/path/*rest", wildcard)?
        .get(
            "/api/fail",
            |_: &Request<'_>, _: &mut Output<'_>| -> HandlerResult {
                Err(AppError::handler("GET /api/fail fails on purpose"))
            },
        )?
        .get("/api/fail/stream", fail_stream)?
        .get(
            "/ws/echo",
            move |req: &Request<'_>, out: &mut Output<'_>| -> HandlerResult {
                out.accept_websocket(req.head, &echo_options, Box::new(chat::Echo))?;
                Ok(None)
            },
        )?
        .get(
            "/ws/chat",
            move |req: &Request<'_>, out: &mut Output<'_>| -> HandlerResult {
                let channel = req.query().and_then(|q| query_param(Some(q), "room"));
                let member = chat::ChatMember::new(Arc::clone(&room), channel.unwrap_or(""));
                out.accept_websocket(req.head, &chat_options, Box::new(member))?;
                Ok(None)
            },
        )?;
    let files = Arc::new(match (&config.root, config.site) {
        (None, Some(site)) => StaticFiles::embedded(site, config.files.clone()),
        (root, _) => StaticFiles::new(root.clone(), config.files.clone()),
    });
    router.fallback(
        MethodSet::GET,
        move |req: &Request<'_>, out: &mut Output<'_>| files.serve(req.head, req.head.path(), out),
    );
    Ok(router)
}

fn hello(_req: &Request<'_>, out: &mut Output<'_>) -> HandlerResult {
    out.full(200, &[("Content-Type", TEXT)], b"Hello, world!")?;
    Ok(None)
}

fn echo(req: &Request<'_>, _out: &mut Output<'_>) -> HandlerResult {
    let head = req.head;
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
    // The head waits for the first body event, so `Expect: 100-continue` gets its interim
    // answer when the body is actually read.
    Ok(Some(Box::new(Echo {
        content_type,
        body,
        head_sent: false,
    })))
}

fn sheep(req: &Request<'_>, out: &mut Output<'_>, compressor: &Compressor) -> HandlerResult {
    let count = query_param(req.query(), "n").and_then(|v| v.parse::<u32>().ok());
    let ms = query_param(req.query(), "ms").and_then(|v| v.parse::<u64>().ok());
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
    let Some(body) = compressor.stream(req.head, out, 200, &[("Content-Type", TEXT)])? else {
        return Ok(None);
    };
    if req.method() == Method::Head {
        // The body would be discarded: do not spend its timers.
        out.end()?;
        return Ok(None);
    }
    Ok(Some(Box::new(Sheep {
        next: 1,
        count,
        interval: Duration::from_millis(ms),
        due: None,
        body,
    })))
}

fn user(req: &Request<'_>, out: &mut Output<'_>) -> HandlerResult {
    let id_text = req.param("id").unwrap_or("");
    match id_text.parse::<u64>() {
        Ok(id) if id.to_string() == id_text => {
            let body = format!("{{\"id\":{id},\"name\":\"User {id}\"}}");
            out.full(200, &[("Content-Type", JSON)], body.as_bytes())?;
            Ok(None)
        }
        _ => not_found(out),
    }
}

fn greet(req: &Request<'_>, out: &mut Output<'_>) -> HandlerResult {
    let mut body = String::from("{\"hello\":");
    json_string(&mut body, req.param("name").unwrap_or(""));
    body.push('}');
    out.full(200, &[("Content-Type", JSON)], body.as_bytes())?;
    Ok(None)
}

fn wildcard(req: &Request<'_>, out: &mut Output<'_>) -> HandlerResult {
    let mut body = String::from("{\"raw\":");
    json_string(&mut body, req.raw_param("rest").unwrap_or(""));
    body.push_str(",\"decoded\":");
    match req.param("rest") {
        Some(decoded) => json_string(&mut body, decoded),
        None => body.push_str("null"),
    }
    body.push('}');
    out.full(200, &[("Content-Type", JSON)], body.as_bytes())?;
    Ok(None)
}

fn fail_stream(_req: &Request<'_>, out: &mut Output<'_>) -> HandlerResult {
    out.head(200, &[("Content-Type", TEXT)], BodyKind::Stream)?;
    out.data(b"partial\n")?;
    Ok(Some(Box::new(FailLater)))
}

/// A responder whose next step fails (after its head and a first chunk went out).
struct FailLater;

impl Responder for FailLater {
    fn produce(&mut self, _out: &mut Output<'_>) -> Result<Produce, AppError> {
        Err(AppError::handler("GET /api/fail/stream fails on purpose"))
    }
}

/// Appends `s` as a JSON string literal.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The value of `key` in a query string (no decoding: the demo parameters are numbers).
fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
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

/// `GET /sheep?n=N&ms=M`: the "count sheep" generator of James Smith's book *Build Your Own
/// Web Server From Scratch in Node.js* (build-your-own.org, 2024), one line every M ms.
struct Sheep {
    next: u32,
    count: u32,
    interval: Duration,
    due: Option<std::time::Instant>,
    /// The body's coding; each line is flushed through it, so it arrives decodable.
    body: BodyEncoder,
}

impl Responder for Sheep {
    fn produce(&mut self, out: &mut Output<'_>) -> Result<Produce, AppError> {
        let now = out.now().instant;
        if self.next > self.count {
            self.body.end(out)?;
            return Ok(Produce::Done);
        }
        let due = *self.due.get_or_insert(now);
        if now < due {
            return Ok(Produce::WaitUntil(due));
        }
        let line = format!("{} sheep\n", self.next);
        self.body.data(out, line.as_bytes(), true)?;
        self.next += 1;
        if self.next > self.count {
            self.body.end(out)?;
            return Ok(Produce::Done);
        }
        self.due = Some(due + self.interval);
        Ok(Produce::More)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::testing::run;

    fn demo() -> DemoApp {
        DemoApp::new(DemoConfig {
            access_log: false,
            ..DemoConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn echo_streams_the_body_back() {
        let body = "x".repeat(100_000);
        let req = format!(
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let r = run(&demo(), req.as_bytes()).response();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/x"));
        assert!(r.complete);
        assert_eq!(r.body, body.as_bytes());
        // Chunked in, chunked out.
        let req = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
                   3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = run(&demo(), req.as_bytes()).response();
        assert_eq!(r.body, b"abcde");
        assert!(r.chunks.is_some());
    }

    #[test]
    fn sheep_waits_between_lines() {
        // Timer-driven: the driver's clock moves to each `WaitUntil`.
        let r = run(&demo(), b"GET /sheep?n=3&ms=50 HTTP/1.1\r\nHost: a\r\n\r\n").response();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"1 sheep\n2 sheep\n3 sheep\n");
    }

    #[test]
    fn failures_before_and_after_the_head() {
        let r = run(&demo(), b"GET /api/fail HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.responses[0].status, 500);
        assert!(
            r.log.contains("GET /api/fail fails on purpose"),
            "{}",
            r.log
        );
        let r = run(&demo(), b"GET /api/fail/stream HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(r.closed);
        assert!(!r.responses[0].complete);
    }
}
