//! The middleware chain around the router, and the middleware weft ships.
//!
//! A [`Chain`] is an [`App`]: for each request it
//!
//! 1. records the request line when some middleware observes finished exchanges;
//! 2. runs every [`Middleware::response_headers`] hook, in order: the fields they add go out
//!    with every response head of the exchange, whoever sends it (an early answer of a
//!    `before` hook, the handler at once, a streaming responder later, the 500 of a failure);
//! 3. runs every [`Middleware::before`] hook, in order; one may answer early;
//! 4. dispatches to the [`Router`].
//!
//! When a handler or responder fails, [`answer_failure`] answers (the chain's error handling);
//! when the exchange is over, every [`Middleware::complete`] hook sees it. Responses the core
//! writes itself (400, 408, 413, 431 ... for malformed or refused requests) are not the
//! application's and carry no extra fields, but `complete` still sees them.
//!
//! Shipped middleware: [`AccessLog`], [`Cors`], [`SecurityHeaders`].

use std::fmt::Write as _;
use std::io::Write as _;

use weft_core::{trim_ows, Method, RequestHead};

use crate::router::{HandlerResult, Router};
use crate::{App, AppError, Completed, ExtraHeaders, Output, Responder, StaticFields};

/// What a `before` hook decided.
pub enum Flow {
    /// Go on to the next hook, then the router.
    Continue,
    /// The hook answered (at once: `None`, or through a responder).
    Answered(Option<Box<dyn Responder>>),
}

/// A layer of the chain. Every hook has a default that does nothing.
pub trait Middleware: Send + Sync {
    /// Adds header fields to every response head of this exchange.
    fn response_headers(&self, _head: &RequestHead<'_>, _headers: &mut ExtraHeaders) {}

    /// Runs before the handler. `router` tells which methods a path answers.
    fn before(
        &self,
        _head: &RequestHead<'_>,
        _router: &Router,
        _out: &mut Output<'_>,
    ) -> Result<Flow, AppError> {
        Ok(Flow::Continue)
    }

    /// Observes the finished exchange; `log` is the driver's log sink.
    fn complete(&self, _done: &Completed<'_>, _log: &mut Vec<u8>) {}

    /// Whether [`Middleware::complete`] reads the request line (the chain then records it).
    fn observes_requests(&self) -> bool {
        false
    }
}

/// The router wrapped in middleware (first added = outermost, runs first).
pub struct Chain {
    middleware: Vec<Box<dyn Middleware>>,
    router: Router,
    records: bool,
}

impl Chain {
    pub fn new(router: Router) -> Chain {
        Chain {
            middleware: Vec::new(),
            router,
            records: false,
        }
    }

    /// Adds a layer inside the ones added before.
    pub fn with(mut self, middleware: impl Middleware + 'static) -> Chain {
        self.records |= middleware.observes_requests();
        self.middleware.push(Box::new(middleware));
        self
    }

    pub fn router(&self) -> &Router {
        &self.router
    }
}

impl App for Chain {
    fn start(&self, head: &RequestHead<'_>, out: &mut Output<'_>) -> HandlerResult {
        if self.records {
            out.record_request(head);
        }
        let headers = out.extra_headers();
        for m in &self.middleware {
            m.response_headers(head, headers);
        }
        for m in &self.middleware {
            if let Flow::Answered(responder) = m.before(head, &self.router, out)? {
                return Ok(responder);
            }
        }
        self.router.dispatch(head, out)
    }

    fn failed(&self, err: &AppError, out: &mut Output<'_>, log: &mut Vec<u8>) {
        answer_failure(err, out, log);
    }

    fn complete(&self, done: &Completed<'_>, log: &mut Vec<u8>) {
        for m in &self.middleware {
            m.complete(done, log);
        }
    }
}

/// Error handling: a handler or responder failed. The error is logged; when no response has
/// started, the client gets a `500` with a short body (plus the exchange's extra fields) and
/// the connection lives on; after the head went out the framing cannot be finished honestly,
/// so the connection is aborted (closed once queued bytes are written).
pub fn answer_failure(err: &AppError, out: &mut Output<'_>, log: &mut Vec<u8>) {
    let _ = writeln!(log, "weft: handler error: {err}");
    if out.awaits_response() {
        let headers: [(&str, &[u8]); 1] = [("Content-Type", b"text/plain; charset=utf-8")];
        if out.full(500, &headers, b"internal server error\n").is_ok() {
            return;
        }
    }
    out.abort();
}

/// The access log: one line per exchange,
/// `PEER "METHOD TARGET VERSION" STATUS BODY_BYTES DURATION` (PEER `-` where the driver does
/// not know it), for example
/// `127.0.0.1:50000 "GET /hello HTTP/1.1" 200 13 0.021ms`; a request refused before its head
/// was complete shows `"-"`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccessLog;

impl Middleware for AccessLog {
    fn observes_requests(&self) -> bool {
        true
    }

    fn complete(&self, done: &Completed<'_>, log: &mut Vec<u8>) {
        let micros = done.duration.as_micros();
        let ex = done.exchange;
        let peer: &dyn std::fmt::Display = match &done.peer {
            Some(peer) => peer,
            None => &"-",
        };
        let _ = writeln!(
            log,
            "{} \"{}\" {} {} {}.{:03}ms",
            peer,
            ex.request.as_str().unwrap_or("-"),
            ex.stats.status,
            ex.stats.body_bytes,
            micros / 1000,
            micros % 1000
        );
    }
}

/// Response header fields every application response carries. The default set is what a
/// static server should send and nothing more:
///
/// - `Server: weft`;
/// - `X-Content-Type-Options: nosniff`: browsers use the declared `Content-Type` instead of
///   sniffing (a served `.txt` is never run as script);
/// - `X-Frame-Options: SAMEORIGIN`: pages cannot be framed by other sites (clickjacking).
///
/// Left out on purpose: `Strict-Transport-Security` (weft speaks plain HTTP; it belongs to the
/// TLS terminator), a `Content-Security-Policy` (depends on the site's own scripts), and
/// `Cross-Origin-Resource-Policy` (would stop other sites embedding files they may use).
#[derive(Clone, Debug)]
pub struct SecurityHeaders {
    fields: StaticFields,
}

/// The default fields of [`SecurityHeaders`].
pub const SECURITY_FIELDS: [(&str, &[u8]); 3] = [
    ("Server", b"weft"),
    ("X-Content-Type-Options", b"nosniff"),
    ("X-Frame-Options", b"SAMEORIGIN"),
];

impl Default for SecurityHeaders {
    fn default() -> Self {
        // The constants are valid (a unit test checks), so nothing is dropped here.
        SecurityHeaders {
            fields: StaticFields::new(SECURITY_FIELDS.to_vec()).unwrap_or_default(),
        }
    }
}

impl SecurityHeaders {
    /// Exactly these fields; `Err` names one that is not a valid field.
    pub fn with_fields(
        fields: Vec<(&'static str, &'static [u8])>,
    ) -> Result<SecurityHeaders, AppError> {
        Ok(SecurityHeaders {
            fields: StaticFields::new(fields)?,
        })
    }
}

impl Middleware for SecurityHeaders {
    fn response_headers(&self, _head: &RequestHead<'_>, headers: &mut ExtraHeaders) {
        headers.push_fields(&self.fields);
    }
}

/// Which origins may read responses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origins {
    /// `*`: every origin (no credentials).
    Any,
    /// These serialised origins (`scheme://host[:port]`, or `null`), compared
    /// ASCII-case-insensitively.
    List(Vec<String>),
}

/// Cross-origin resource sharing (the Fetch standard's CORS protocol), server side.
///
/// - Origins `*`: every response gets `Access-Control-Allow-Origin: *` (whether the request
///   carried `Origin` or not, so a cache can share it).
/// - A list: a request whose `Origin` is in the list gets `Access-Control-Allow-Origin` with
///   that origin; every response gets `Vary: Origin`, because it depends on the `Origin` of
///   the request (also those without the field: otherwise a shared cache could hand a
///   response without CORS fields to a cross-origin request). A disallowed origin gets no
///   CORS fields at all.
/// - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an allowed
///   origin to a path the router knows is answered `204` with `Access-Control-Allow-Methods`
///   (the path's methods, as in `Allow`), `Access-Control-Allow-Headers` (the requested
///   header names, echoed when they are a valid list of tokens) and `Access-Control-Max-Age`.
///   Preflights from other origins or to unknown paths go on to the router (an `OPTIONS`
///   answer with `Allow` and no CORS fields, or 404), which a browser treats as refusal.
/// - No credentials support (`Access-Control-Allow-Credentials` is never sent) and no
///   `Access-Control-Expose-Headers`.
#[derive(Clone, Debug)]
pub struct Cors {
    origins: Origins,
    max_age: u32,
}

impl Cors {
    /// Preflight results may be cached this long (seconds) by default.
    pub const DEFAULT_MAX_AGE: u32 = 600;

    /// CORS for `origins`; an entry `*` means [`Origins::Any`]. `Err` names an entry that is
    /// not `*`, `null` or `scheme://host[:port]` (no path, visible ASCII).
    pub fn new<S: AsRef<str>>(origins: &[S]) -> Result<Cors, AppError> {
        let mut list = Vec::new();
        for origin in origins {
            let origin = origin.as_ref();
            if origin == "*" {
                return Ok(Cors {
                    origins: Origins::Any,
                    max_age: Cors::DEFAULT_MAX_AGE,
                });
            }
            if !valid_origin(origin) {
                return Err(AppError::Config(format!(
                    "not an origin (scheme://host[:port], null or *): {origin}"
                )));
            }
            list.push(origin.to_string());
        }
        Ok(Cors {
            origins: Origins::List(list),
            max_age: Cors::DEFAULT_MAX_AGE,
        })
    }

    pub fn max_age(mut self, seconds: u32) -> Cors {
        self.max_age = seconds;
        self
    }

    pub fn origins(&self) -> &Origins {
        &self.origins
    }

    /// The request's `Origin` when it is allowed.
    fn allowed_origin<'h>(&self, head: &RequestHead<'h>) -> Option<&'h [u8]> {
        let origin = head.headers.get("origin")?;
        match &self.origins {
            Origins::Any => Some(origin),
            Origins::List(list) => list
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin))
                .then_some(origin),
        }
    }
}

fn valid_origin(origin: &str) -> bool {
    if origin == "null" {
        return true;
    }
    let Some((scheme, host)) = origin.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"/?#@,\"".contains(&b))
}

/// Whether `value` is a comma-separated list of field names (what
/// `Access-Control-Request-Headers` holds), so it can be echoed.
fn is_token_list(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    text.split(',')
        .map(|item| item.trim_matches([' ', '\t']))
        .all(|item| weft_core::is_token(item.as_bytes()))
}

impl Middleware for Cors {
    fn response_headers(&self, head: &RequestHead<'_>, headers: &mut ExtraHeaders) {
        match &self.origins {
            Origins::Any => {
                headers.push_static_trusted("Access-Control-Allow-Origin", b"*");
            }
            Origins::List(_) => {
                headers.push_static_trusted("Vary", b"Origin");
                if let Some(origin) = self.allowed_origin(head) {
                    // Equal (ignoring ASCII case) to a configured origin, which was checked.
                    headers.push_trusted("Access-Control-Allow-Origin", origin);
                }
            }
        }
    }

    fn before(
        &self,
        head: &RequestHead<'_>,
        router: &Router,
        out: &mut Output<'_>,
    ) -> Result<Flow, AppError> {
        if head.method != Method::Options
            || head.target == "*"
            || head.headers.get("access-control-request-method").is_none()
            || self.allowed_origin(head).is_none()
        {
            return Ok(Flow::Continue);
        }
        let Some(methods) = router.allowed(head.path()) else {
            return Ok(Flow::Continue);
        };
        let allow_methods = methods.allow_value();
        let mut max_age = String::new();
        let _ = write!(max_age, "{}", self.max_age);
        let mut fields: Vec<(&str, &[u8])> = vec![
            ("Access-Control-Allow-Methods", allow_methods.as_bytes()),
            ("Access-Control-Max-Age", max_age.as_bytes()),
        ];
        if let Some(requested) = head.headers.get("access-control-request-headers") {
            let requested = trim_ows(requested);
            if !requested.is_empty() && is_token_list(requested) {
                fields.push(("Access-Control-Allow-Headers", requested));
            }
        }
        out.full(204, &fields, b"")?;
        Ok(Flow::Answered(None))
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use std::time::{Instant, SystemTime};

    use weft_core::{BodyKind, Connection, DateCache, Event, Limits, Now};

    use crate::router::{MethodSet, Request};
    use crate::testing::{run_with, Options, Run};
    use crate::Produce;

    /// Feeds `input` (one or more requests without bodies) to `app` through the shared
    /// driver, with a fixed `Date`.
    fn run(app: &dyn App, input: &[u8]) -> Run {
        let options = Options {
            date: SystemTime::UNIX_EPOCH,
            ..Options::default()
        };
        run_with(app, input, options)
    }

    fn hello(_: &Request<'_>, out: &mut Output<'_>) -> HandlerResult {
        out.full(200, &[("Content-Type", b"text/plain")], b"hi")?;
        Ok(None)
    }

    fn router() -> Router {
        let mut r = Router::new();
        r.get("/hi", hello).unwrap();
        r.get(
            "/own",
            |_: &Request<'_>, out: &mut Output<'_>| -> HandlerResult {
                let fields: [(&str, &[u8]); 2] =
                    [("Server", b"custom"), ("Vary", b"Accept-Encoding")];
                out.full(200, &fields, b"")?;
                Ok(None)
            },
        )
        .unwrap();
        r.get(
            "/fail",
            |_: &Request<'_>, _: &mut Output<'_>| -> HandlerResult {
                Err(AppError::handler("boom"))
            },
        )
        .unwrap();
        r.get(
            "/fail-late",
            |_: &Request<'_>, out: &mut Output<'_>| -> HandlerResult {
                out.head(200, &[], BodyKind::Stream)?;
                struct Late;
                impl Responder for Late {
                    fn produce(&mut self, _: &mut Output<'_>) -> Result<Produce, AppError> {
                        Err(AppError::handler("late"))
                    }
                }
                Ok(Some(Box::new(Late)))
            },
        )
        .unwrap();
        r.post("/p", hello).unwrap();
        r
    }

    const GET_HI: &[u8] = b"GET /hi HTTP/1.1\r\nHost: a\r\n\r\n";

    #[test]
    fn security_headers_on_every_response() {
        let app = Chain::new(router()).with(SecurityHeaders::default());
        let r = run(&app, GET_HI);
        assert_eq!(
            r.text(),
            "HTTP/1.1 200 OK\r\nDate: <date>\r\nServer: weft\r\nX-Content-Type-Options: nosniff\r\n\
             X-Frame-Options: SAMEORIGIN\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
        );
        for req in [
            &b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"DELETE /hi HTTP/1.1\r\nHost: a\r\n\r\n",
            b"OPTIONS /hi HTTP/1.1\r\nHost: a\r\n\r\n",
            b"BREW /hi HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /fail HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            let r = run(&app, req);
            assert!(
                r.text()
                    .contains("\r\nServer: weft\r\nX-Content-Type-Options: nosniff\r\n"),
                "{}",
                r.text()
            );
        }
    }

    #[test]
    fn handler_fields_win_except_vary() {
        let app = Chain::new(router())
            .with(SecurityHeaders::default())
            .with(Cors::new(&["http://a.example"]).unwrap());
        let r = run(&app, b"GET /own HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(!r.text().contains("Server: weft"), "{}", r.text());
        assert!(r.text().contains("Server: custom\r\n"));
        assert!(r.text().contains("Vary: Origin\r\n"));
        assert!(r.text().contains("Vary: Accept-Encoding\r\n"));
    }

    #[test]
    fn many_fields_still_merge() {
        let names: [&'static str; 20] = [
            "X-A", "X-B", "X-C", "X-D", "X-E", "X-F", "X-G", "X-H", "X-I", "X-J", "X-K", "X-L",
            "X-M", "X-N", "X-O", "X-P", "X-Q", "X-R", "X-S", "X-T",
        ];
        let fields = names.iter().map(|&n| (n, &b"1"[..])).collect();
        let app = Chain::new(router()).with(SecurityHeaders::with_fields(fields).unwrap());
        let r = run(&app, GET_HI);
        for n in names {
            assert!(r.text().contains(&format!("{n}: 1\r\n")), "{n}");
        }
        assert!(r
            .text()
            .ends_with("Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"));
    }

    #[test]
    fn constant_fields_are_valid() {
        assert!(StaticFields::new(SECURITY_FIELDS.to_vec()).is_ok());
        assert!(SecurityHeaders::with_fields(vec![("Bad Name", b"x")]).is_err());
        assert!(SecurityHeaders::with_fields(vec![("X-A", b"x\r\ny")]).is_err());
        for (name, value) in [
            ("Access-Control-Allow-Origin", &b"*"[..]),
            ("Vary", b"Origin"),
        ] {
            assert!(weft_core::is_token(name.as_bytes()) && crate::is_safe_field_value(value));
        }
    }

    #[test]
    fn invalid_extra_fields_are_refused() {
        let mut h = ExtraHeaders::new();
        assert!(!h.push_static("Bad Name", b"x"));
        assert!(!h.push("X-Ok", b"a\r\nInjected: 1"));
        assert!(!h.push("X-Ok", b" padded"));
        assert!(h.push("X-Ok", b"fine value"));
        assert_eq!(h.len(), 1);
        assert_eq!(h.get("x-ok"), Some(&b"fine value"[..]));
    }

    #[test]
    fn cors_any() {
        let app = Chain::new(router()).with(Cors::new(&["*"]).unwrap());
        let r = run(&app, GET_HI);
        assert!(r.text().contains("Access-Control-Allow-Origin: *\r\n"));
        assert!(!r.text().contains("Vary"));
    }

    #[test]
    fn cors_list() {
        let app = Chain::new(router()).with(Cors::new(&["http://a.example"]).unwrap());
        let ok = run(
            &app,
            b"GET /hi HTTP/1.1\r\nHost: a\r\nOrigin: http://a.example\r\n\r\n",
        );
        assert!(ok
            .text()
            .contains("Vary: Origin\r\nAccess-Control-Allow-Origin: http://a.example\r\n"));
        let other = run(
            &app,
            b"GET /hi HTTP/1.1\r\nHost: a\r\nOrigin: http://b.example\r\n\r\n",
        );
        assert!(other.text().contains("Vary: Origin\r\n"));
        assert!(!other.text().contains("Access-Control"));
        let none = run(&app, GET_HI);
        assert!(none.text().contains("Vary: Origin\r\n"));
        assert!(!none.text().contains("Access-Control"));
    }

    #[test]
    fn cors_preflight() {
        let app = Chain::new(router()).with(Cors::new(&["http://a.example"]).unwrap().max_age(60));
        let r = run(
            &app,
            b"OPTIONS /p HTTP/1.1\r\nHost: a\r\nOrigin: http://a.example\r\nAccess-Control-Request-Method: POST\r\n\
              Access-Control-Request-Headers: content-type\r\n\r\n",
        );
        assert!(
            r.text().starts_with("HTTP/1.1 204 No Content\r\n"),
            "{}",
            r.text()
        );
        assert!(r
            .text()
            .contains("Access-Control-Allow-Origin: http://a.example\r\n"));
        assert!(r
            .text()
            .contains("Access-Control-Allow-Methods: OPTIONS, POST\r\n"));
        assert!(r.text().contains("Access-Control-Max-Age: 60\r\n"));
        assert!(r
            .text()
            .contains("Access-Control-Allow-Headers: content-type\r\n"));
        // Disallowed origin: the router's OPTIONS answer, no CORS fields.
        let r = run(
            &app,
            b"OPTIONS /p HTTP/1.1\r\nHost: a\r\nOrigin: http://b.example\r\nAccess-Control-Request-Method: POST\r\n\r\n",
        );
        assert!(r.text().contains("Allow: OPTIONS, POST\r\n"));
        assert!(!r.text().contains("Access-Control"));
        // Unknown path (no fallback): 404.
        let r = run(
            &app,
            b"OPTIONS /nope HTTP/1.1\r\nHost: a\r\nOrigin: http://a.example\r\nAccess-Control-Request-Method: GET\r\n\r\n",
        );
        assert!(r.text().starts_with("HTTP/1.1 404"), "{}", r.text());
    }

    #[test]
    fn failure_before_head_is_500_and_the_connection_lives() {
        let app = Chain::new(router());
        let r = run(
            &app,
            b"GET /fail HTTP/1.1\r\nHost: a\r\n\r\nGET /hi HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        assert!(
            r.text()
                .starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{}",
            r.text()
        );
        assert!(r.text().contains("\r\n\r\ninternal server error\n"));
        assert!(r.text().ends_with("\r\n\r\nhi"), "{}", r.text());
        assert!(!r.closed);
        assert_eq!(r.log, "weft: handler error: boom\n");
    }

    #[test]
    fn failure_after_head_aborts() {
        let app = Chain::new(router());
        let r = run(
            &app,
            b"GET /fail-late HTTP/1.1\r\nHost: a\r\n\r\nGET /hi HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        assert!(r.text().starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(
            r.text().ends_with("Transfer-Encoding: chunked\r\n\r\n"),
            "{}",
            r.text()
        );
        assert!(r.closed);
        assert_eq!(r.log, "weft: handler error: late\n");
    }

    #[test]
    fn access_log_line() {
        let app = Chain::new(router()).with(AccessLog);
        let r = run(
            &app,
            b"GET /hi?x=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        assert_eq!(
            r.log,
            "127.0.0.1:5000 \"GET /hi?x=1 HTTP/1.1\" 200 2 1.234ms\n\
             127.0.0.1:5000 \"GET /nope HTTP/1.1\" 404 10 1.234ms\n"
        );
        // Without the access log middleware, nothing is recorded.
        let quiet = Chain::new(router());
        assert_eq!(run(&quiet, GET_HI).log, "");
    }

    #[test]
    fn request_line_parts() {
        let mut line = crate::RequestLine::default();
        assert_eq!(line.as_str(), None);
        let input = b"DELETE /a/b?c HTTP/1.0\r\n\r\n";
        let mut conn = Connection::new(Limits::default(), Instant::now());
        let now = Now {
            instant: Instant::now(),
            date: DateCache::new().get(SystemTime::UNIX_EPOCH),
        };
        let (Event::Request(head), _) = conn.next_event(input, now).unwrap() else {
            panic!("no request");
        };
        line.record(&head);
        assert_eq!(line.as_str(), Some("DELETE /a/b?c HTTP/1.0"));
        assert_eq!(line.method(), Some("DELETE"));
        assert_eq!(line.target(), Some("/a/b?c"));
        line.clear();
        assert_eq!(line.method(), None);
    }

    #[test]
    fn routing_outcomes() {
        let mut r = router();
        r.route(MethodSet::OPTIONS, "/opt", hello).unwrap();
        let app = Chain::new(r);
        let status = |req: &[u8]| run(&app, req).text().get(..12).unwrap_or("").to_string();
        assert_eq!(
            status(b"HEAD /hi HTTP/1.1\r\nHost: a\r\n\r\n"),
            "HTTP/1.1 200"
        );
        assert_eq!(
            status(b"POST /hi HTTP/1.1\r\nHost: a\r\n\r\n"),
            "HTTP/1.1 405"
        );
        assert_eq!(
            status(b"OPTIONS /hi HTTP/1.1\r\nHost: a\r\n\r\n"),
            "HTTP/1.1 204"
        );
        assert_eq!(
            status(b"OPTIONS /opt HTTP/1.1\r\nHost: a\r\n\r\n"),
            "HTTP/1.1 200"
        );
        assert_eq!(
            status(b"BREW /hi HTTP/1.1\r\nHost: a\r\n\r\n"),
            "HTTP/1.1 501"
        );
        assert_eq!(
            status(b"TRACE /hi HTTP/1.1\r\nHost: a\r\n\r\n"),
            "HTTP/1.1 501"
        );
        assert_eq!(
            status(b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"),
            "HTTP/1.1 404"
        );
        assert_eq!(
            status(b"HEAD /p HTTP/1.1\r\nHost: a\r\n\r\n"),
            "HTTP/1.1 405"
        );
        let head = run(&app, b"HEAD /hi HTTP/1.1\r\nHost: a\r\n\r\n").text();
        assert!(head.ends_with("Content-Length: 2\r\n\r\n"), "{head}");
        let allow = run(&app, b"PUT /hi HTTP/1.1\r\nHost: a\r\n\r\n").text();
        assert!(allow.contains("Allow: GET, HEAD, OPTIONS\r\n"), "{allow}");
        let star = run(&app, b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").text();
        assert!(
            star.contains("Allow: GET, HEAD, OPTIONS, POST\r\n"),
            "{star}"
        );
    }

    #[test]
    fn first_registered_route_wins_and_fallback_is_last() {
        let mut r = Router::new();
        r.get(
            "/a/:x",
            |req: &Request<'_>, out: &mut Output<'_>| -> HandlerResult {
                out.full(200, &[], req.param("x").unwrap_or("?").as_bytes())?;
                Ok(None)
            },
        )
        .unwrap();
        r.get("/a/fixed", hello).unwrap();
        r.fallback(
            MethodSet::GET,
            |_: &Request<'_>, out: &mut Output<'_>| -> HandlerResult {
                out.full(200, &[], b"fallback")?;
                Ok(None)
            },
        );
        let app = Chain::new(r);
        assert!(run(&app, b"GET /a/fixed HTTP/1.1\r\nHost: a\r\n\r\n")
            .text()
            .ends_with("fixed"));
        assert!(run(&app, b"GET /a/%66 HTTP/1.1\r\nHost: a\r\n\r\n")
            .text()
            .ends_with("\r\n\r\nf"));
        assert!(run(&app, b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n")
            .text()
            .ends_with("fallback"));
        let post = run(&app, b"POST /b HTTP/1.1\r\nHost: a\r\n\r\n").text();
        assert!(post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET, HEAD, OPTIONS\r\n"));
    }
}
