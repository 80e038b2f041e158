//! Routing: method + path pattern to handler.
//!
//! # Patterns
//!
//! A pattern starts with `/` and is split at `/` into segments:
//!
//! - a literal (`hello`, `api`) matches the same text of the request path exactly, as sent
//!   (still percent-encoded: write patterns in the canonical, unencoded form);
//! - `:name` matches one non-empty segment; its value is percent-decoded;
//! - `*name`, only as the last segment, matches the rest of the path (zero or more segments,
//!   slashes included): `/static/*path` matches `/static/` and `/static/a/b`, not `/static`.
//!
//! The path is the target's path without the query (`RequestHead::path`, absolute-form
//! included). There is no normalisation: `/hello/` does not match `/hello`, `//hello` neither.
//!
//! **Decoding (a decision).** A `:name` segment that holds a malformed escape (`%zz`, `%4`), an
//! escape that decodes to `/` (`%2F`) or bytes that are not UTF-8 does *not match*: the
//! router moves on to the next route, and a path no route matches ends in the fallback or 404.
//! A parameter is one segment; an encoded slash would smuggle a second one in. A `*name` value
//! is kept raw too ([`Request::raw_param`]) and never makes a route fail: its decoded form
//! ([`Request::param`]) is `None` when it cannot be decoded or holds `%2F`, so a file service
//! can apply its own rules to the raw text.
//!
//! # Matching
//!
//! Routes are tried in registration order; the first one whose pattern matches the path and
//! whose method set holds the method answers. HEAD is accepted by a route that lists HEAD or
//! GET (the core discards HEAD bodies). When no matching route takes the method:
//!
//! - `OPTIONS`: `204` with `Allow`;
//! - anything else: `405` with `Allow`.
//!
//! `Allow` lists the union of the methods of every route matching the path, plus HEAD when GET
//! is there and OPTIONS always, in alphabetical order. When no pattern matches, the fallback
//! (if any) is used as a route that matches every path, else `404`. `OPTIONS *` is `204`
//! with the methods of every route. Methods weft does not know (`Method::Other`) are `501`;
//! so are CONNECT and TRACE unless a route lists them.

use std::borrow::Cow;
use std::fmt;

use weft_core::{Method, RequestHead};

use crate::{App, AppError, Output, Responder};

/// What a handler returns: `None` when it answered through [`Output`] at once, or a
/// [`Responder`] that finishes the exchange.
pub type HandlerResult = Result<Option<Box<dyn Responder>>, AppError>;

/// Most parameters (`:name` and `*name`) in one pattern.
pub const MAX_PARAMS: usize = 8;

const TEXT: &[u8] = b"text/plain; charset=utf-8";

/// A request handler: a closure or any type implementing this.
pub trait Handler: Send + Sync {
    fn call(&self, req: &Request<'_>, out: &mut Output<'_>) -> HandlerResult;
}

impl<F> Handler for F
where
    F: Fn(&Request<'_>, &mut Output<'_>) -> HandlerResult + Send + Sync,
{
    fn call(&self, req: &Request<'_>, out: &mut Output<'_>) -> HandlerResult {
        self(req, out)
    }
}

/// A set of methods, iterated in alphabetical order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MethodSet(u16);

/// The known methods, in bit (alphabetical) order.
const METHOD_NAMES: [&str; 9] = [
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];

impl MethodSet {
    pub const EMPTY: MethodSet = MethodSet(0);
    pub const CONNECT: MethodSet = MethodSet(1 << 0);
    pub const DELETE: MethodSet = MethodSet(1 << 1);
    pub const GET: MethodSet = MethodSet(1 << 2);
    pub const HEAD: MethodSet = MethodSet(1 << 3);
    pub const OPTIONS: MethodSet = MethodSet(1 << 4);
    pub const PATCH: MethodSet = MethodSet(1 << 5);
    pub const POST: MethodSet = MethodSet(1 << 6);
    pub const PUT: MethodSet = MethodSet(1 << 7);
    pub const TRACE: MethodSet = MethodSet(1 << 8);

    /// The set holding just `method`; `None` for a method weft does not know.
    pub fn of(method: Method<'_>) -> Option<MethodSet> {
        Some(match method {
            Method::Connect => MethodSet::CONNECT,
            Method::Delete => MethodSet::DELETE,
            Method::Get => MethodSet::GET,
            Method::Head => MethodSet::HEAD,
            Method::Options => MethodSet::OPTIONS,
            Method::Patch => MethodSet::PATCH,
            Method::Post => MethodSet::POST,
            Method::Put => MethodSet::PUT,
            Method::Trace => MethodSet::TRACE,
            Method::Other(_) => return None,
        })
    }

    pub const fn union(self, other: MethodSet) -> MethodSet {
        MethodSet(self.0 | other.0)
    }

    pub const fn contains(self, other: MethodSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether a route with this set answers `method` (HEAD is answered by GET routes).
    pub fn accepts(self, method: MethodSet) -> bool {
        self.contains(method) || (method == MethodSet::HEAD && self.contains(MethodSet::GET))
    }

    /// The set as advertised: HEAD added when GET is there, OPTIONS always.
    pub fn advertised(self) -> MethodSet {
        let mut set = self.union(MethodSet::OPTIONS);
        if set.contains(MethodSet::GET) {
            set = set.union(MethodSet::HEAD);
        }
        set
    }

    /// The method names in alphabetical order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        METHOD_NAMES
            .iter()
            .enumerate()
            .filter(move |(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, name)| *name)
    }

    /// The value of an `Allow` field for this set: [`MethodSet::advertised`], names joined
    /// with `", "`.
    pub fn allow_value(self) -> String {
        let mut value = String::new();
        for name in self.advertised().names() {
            if !value.is_empty() {
                value.push_str(", ");
            }
            value.push_str(name);
        }
        value
    }
}

impl std::ops::BitOr for MethodSet {
    type Output = MethodSet;
    fn bitor(self, rhs: MethodSet) -> MethodSet {
        self.union(rhs)
    }
}

/// Why a pattern was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    pub pattern: String,
    pub reason: &'static str,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "route pattern {:?}: {}", self.pattern, self.reason)
    }
}

impl std::error::Error for PatternError {}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Param(String),
    Wildcard(String),
}

/// A parsed route pattern.
#[derive(Debug)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
}

impl Pattern {
    pub fn parse(pattern: &str) -> Result<Pattern, PatternError> {
        let fail = |reason| PatternError {
            pattern: pattern.to_string(),
            reason,
        };
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(fail("must start with /"));
        };
        let mut segments = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        let mut pieces = rest.split('/').peekable();
        while let Some(piece) = pieces.next() {
            let segment = if let Some(name) = piece.strip_prefix(':') {
                Segment::Param(param_name(name, &mut names).map_err(fail)?)
            } else if let Some(name) = piece.strip_prefix('*') {
                if pieces.peek().is_some() {
                    return Err(fail("a *wildcard must be the last segment"));
                }
                Segment::Wildcard(param_name(name, &mut names).map_err(fail)?)
            } else {
                if piece.contains(['?', '#', '%', ' ']) {
                    return Err(fail("literal segments take no ?, #, % or space"));
                }
                Segment::Literal(piece.to_string())
            };
            segments.push(segment);
        }
        if names.len() > MAX_PARAMS {
            return Err(fail("more than MAX_PARAMS parameters"));
        }
        Ok(Pattern {
            text: pattern.to_string(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `path` matches; the parameters go into `params`.
    fn matches<'a>(&'a self, path: &'a str, params: &mut Params<'a>) -> bool {
        params.clear();
        let Some(mut rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut segments = self.segments.iter().peekable();
        while let Some(segment) = segments.next() {
            if let Segment::Wildcard(name) = segment {
                params.push(name, rest, decode(rest));
                return true;
            }
            let (piece, more) = match rest.bytes().position(|b| b == b'/') {
                Some(end) => (rest.get(..end).unwrap_or(""), rest.get(end + 1..)),
                None => (rest, None),
            };
            match segment {
                Segment::Literal(literal) => {
                    if piece != literal {
                        return false;
                    }
                }
                Segment::Param(name) => {
                    if piece.is_empty() {
                        return false;
                    }
                    let Some(value) = decode(piece) else {
                        return false;
                    };
                    params.push(name, piece, Some(value));
                }
                Segment::Wildcard(_) => return false,
            }
            match more {
                Some(more) => rest = more,
                // The path ends here: so must the pattern.
                None => return segments.peek().is_none(),
            }
        }
        // The pattern ended before the path.
        false
    }
}

fn param_name<'p>(name: &'p str, names: &mut Vec<&'p str>) -> Result<String, &'static str> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err("parameter names are non-empty [A-Za-z0-9_]");
    }
    if names.contains(&name) {
        return Err("a parameter name is used twice");
    }
    names.push(name);
    Ok(name.to_string())
}

/// Percent-decodes `raw`: `None` for a malformed escape, an encoded `/` or a result that is
/// not UTF-8. Borrows when there is nothing to decode.
pub fn decode(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains('%') {
        return Some(Cow::Borrowed(raw));
    }
    // An encoded `/` is refused: decoded, it could not be told from a separator.
    let encoded_slash = raw
        .as_bytes()
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"%2f"));
    if encoded_slash {
        return None;
    }
    String::from_utf8(crate::mapping::percent_decode(raw)?)
        .ok()
        .map(Cow::Owned)
}

#[derive(Clone, Debug)]
struct Param<'a> {
    name: &'a str,
    raw: &'a str,
    value: Option<Cow<'a, str>>,
}

/// The parameters of a match. Routes without parameters cost no allocation.
#[derive(Clone, Debug, Default)]
pub struct Params<'a> {
    items: Vec<Param<'a>>,
}

impl<'a> Params<'a> {
    pub fn new() -> Params<'a> {
        Params { items: Vec::new() }
    }

    fn clear(&mut self) {
        self.items.clear();
    }

    fn push(&mut self, name: &'a str, raw: &'a str, value: Option<Cow<'a, str>>) {
        self.items.push(Param { name, raw, value });
    }

    fn find(&self, name: &str) -> Option<&Param<'a>> {
        self.items.iter().find(|p| p.name == name)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// `(name, decoded value)` pairs in pattern order (`None`: a wildcard that cannot be
    /// decoded).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.items.iter().map(|p| (p.name, p.value.as_deref()))
    }
}

/// What a handler sees: the request head and the parameters of its pattern.
pub struct Request<'a> {
    pub head: &'a RequestHead<'a>,
    pub params: &'a Params<'a>,
}

impl<'a> Request<'a> {
    /// The percent-decoded value of a parameter (`None`: no such parameter, or a wildcard
    /// value that cannot be decoded; see the module notes).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.find(name).and_then(|p| p.value.as_deref())
    }

    /// A parameter as it appeared in the target (still percent-encoded).
    pub fn raw_param(&self, name: &str) -> Option<&'a str> {
        self.params.find(name).map(|p| p.raw)
    }

    pub fn method(&self) -> Method<'a> {
        self.head.method
    }

    pub fn path(&self) -> &'a str {
        self.head.path()
    }

    pub fn query(&self) -> Option<&'a str> {
        self.head.query()
    }

    /// The first value of a request header field (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.head.headers.get(name)
    }
}

struct Route {
    methods: MethodSet,
    pattern: Pattern,
    handler: Box<dyn Handler>,
}

struct Fallback {
    methods: MethodSet,
    handler: Box<dyn Handler>,
}

/// Method + pattern routing (see the module notes).
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
    fallback: Option<Fallback>,
    /// Union of every route's methods (and the fallback's).
    all: MethodSet,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for route in &self.routes {
            list.entry(&(route.pattern.as_str(), route.methods.allow_value()));
        }
        list.finish()
    }
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds a route answering `methods` on `pattern`.
    pub fn route(
        &mut self,
        methods: MethodSet,
        pattern: &str,
        handler: impl Handler + 'static,
    ) -> Result<&mut Router, PatternError> {
        if methods.is_empty() {
            return Err(PatternError {
                pattern: pattern.to_string(),
                reason: "a route needs at least one method",
            });
        }
        let pattern = Pattern::parse(pattern)?;
        self.all = self.all.union(methods);
        self.routes.push(Route {
            methods,
            pattern,
            handler: Box::new(handler),
        });
        Ok(self)
    }

    /// A GET route (HEAD included).
    pub fn get(
        &mut self,
        pattern: &str,
        handler: impl Handler + 'static,
    ) -> Result<&mut Router, PatternError> {
        self.route(MethodSet::GET, pattern, handler)
    }

    pub fn post(
        &mut self,
        pattern: &str,
        handler: impl Handler + 'static,
    ) -> Result<&mut Router, PatternError> {
        self.route(MethodSet::POST, pattern, handler)
    }

    pub fn put(
        &mut self,
        pattern: &str,
        handler: impl Handler + 'static,
    ) -> Result<&mut Router, PatternError> {
        self.route(MethodSet::PUT, pattern, handler)
    }

    pub fn patch(
        &mut self,
        pattern: &str,
        handler: impl Handler + 'static,
    ) -> Result<&mut Router, PatternError> {
        self.route(MethodSet::PATCH, pattern, handler)
    }

    pub fn delete(
        &mut self,
        pattern: &str,
        handler: impl Handler + 'static,
    ) -> Result<&mut Router, PatternError> {
        self.route(MethodSet::DELETE, pattern, handler)
    }

    /// The handler for paths no pattern matches, answering `methods` (for the others the
    /// router answers 405/OPTIONS as for a route). Without a fallback such paths are 404.
    pub fn fallback(&mut self, methods: MethodSet, handler: impl Handler + 'static) -> &mut Router {
        self.all = self.all.union(methods);
        self.fallback = Some(Fallback {
            methods,
            handler: Box::new(handler),
        });
        self
    }

    /// The methods `path` answers (as advertised in `Allow`: HEAD with GET, OPTIONS), or
    /// `None` when it is unknown (no pattern matches and there is no fallback).
    pub fn allowed(&self, path: &str) -> Option<MethodSet> {
        let mut params = Params::new();
        let mut set = MethodSet::EMPTY;
        let mut matched = false;
        for route in &self.routes {
            if route.pattern.matches(path, &mut params) {
                matched = true;
                set = set.union(route.methods);
            }
        }
        if !matched {
            set = self.fallback.as_ref()?.methods;
        }
        Some(set.advertised())
    }

    /// The methods of every route (for `OPTIONS *`), as advertised.
    pub fn all_methods(&self) -> MethodSet {
        self.all.advertised()
    }

    /// Routes a request: runs the handler or answers 404/405/501/OPTIONS itself.
    pub fn dispatch(&self, head: &RequestHead<'_>, out: &mut Output<'_>) -> HandlerResult {
        let Some(method) = MethodSet::of(head.method) else {
            return not_implemented(out);
        };
        if (method == MethodSet::CONNECT || method == MethodSet::TRACE)
            && !self.all.contains(method)
        {
            return not_implemented(out);
        }
        if head.target == "*" {
            // The core lets only OPTIONS use the asterisk form.
            if method == MethodSet::OPTIONS {
                return options(out, self.all);
            }
            return not_found(out);
        }
        let path = request_path(head);
        let mut matched = false;
        let mut params = Params::new();
        for route in &self.routes {
            if !route.pattern.matches(path, &mut params) {
                continue;
            }
            matched = true;
            if route.methods.accepts(method) {
                let req = Request {
                    head,
                    params: &params,
                };
                return route.handler.call(&req, out);
            }
        }
        if matched {
            let mut set = MethodSet::EMPTY;
            for route in &self.routes {
                if route.pattern.matches(path, &mut params) {
                    set = set.union(route.methods);
                }
            }
            return refuse(out, method, set);
        }
        match &self.fallback {
            Some(fallback) if fallback.methods.accepts(method) => {
                let req = Request {
                    head,
                    params: &Params::new(),
                };
                fallback.handler.call(&req, out)
            }
            Some(fallback) => refuse(out, method, fallback.methods),
            None => not_found(out),
        }
    }
}

/// `head.path()`, quicker for the usual origin-form target.
fn request_path<'a>(head: &RequestHead<'a>) -> &'a str {
    let target = head.target;
    if target.starts_with('/') {
        // A byte scan beats the generic searcher on targets this short.
        return match target.bytes().position(|b| b == b'?') {
            Some(end) => target.get(..end).unwrap_or(target),
            None => target,
        };
    }
    head.path()
}

impl App for Router {
    fn start(&self, head: &RequestHead<'_>, out: &mut Output<'_>) -> HandlerResult {
        self.dispatch(head, out)
    }
}

/// The path is known but no route takes the method: OPTIONS gets 204, the rest 405.
fn refuse(out: &mut Output<'_>, method: MethodSet, set: MethodSet) -> HandlerResult {
    if method == MethodSet::OPTIONS {
        return options(out, set);
    }
    let allow = set.allow_value();
    let headers: [(&str, &[u8]); 2] = [("Allow", allow.as_bytes()), ("Content-Type", TEXT)];
    out.full(405, &headers, b"method not allowed\n")?;
    Ok(None)
}

fn options(out: &mut Output<'_>, set: MethodSet) -> HandlerResult {
    let allow = set.allow_value();
    out.full(204, &[("Allow", allow.as_bytes())], b"")?;
    Ok(None)
}

/// `404 Not Found` with a short text body.
pub fn not_found(out: &mut Output<'_>) -> HandlerResult {
    out.full(404, &[("Content-Type", TEXT)], b"not found\n")?;
    Ok(None)
}

fn not_implemented(out: &mut Output<'_>) -> HandlerResult {
    out.full(501, &[("Content-Type", TEXT)], b"method not implemented\n")?;
    Ok(None)
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

    fn params_of<'a>(pattern: &'a Pattern, path: &'a str) -> Option<Vec<(String, Option<String>)>> {
        let mut params = Params::new();
        pattern.matches(path, &mut params).then(|| {
            params
                .iter()
                .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
                .collect()
        })
    }

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn literals() {
        let pat = p("/hello");
        assert_eq!(params_of(&pat, "/hello"), Some(vec![]));
        assert_eq!(params_of(&pat, "/hello/"), None);
        assert_eq!(params_of(&pat, "//hello"), None);
        assert_eq!(params_of(&pat, "/hell"), None);
        assert_eq!(params_of(&pat, "/hello/x"), None);
        assert_eq!(params_of(&pat, "hello"), None);
        let root = p("/");
        assert_eq!(params_of(&root, "/"), Some(vec![]));
        assert_eq!(params_of(&root, "/x"), None);
    }

    #[test]
    fn params_are_decoded() {
        let pat = p("/api/users/:id");
        let one = |v: &str| Some(vec![("id".to_string(), Some(v.to_string()))]);
        assert_eq!(params_of(&pat, "/api/users/42"), one("42"));
        assert_eq!(params_of(&pat, "/api/users/%34%32"), one("42"));
        assert_eq!(params_of(&pat, "/api/users/J%C3%B6rg"), one("Jörg"));
        assert_eq!(params_of(&pat, "/api/users/a%20b"), one("a b"));
        // Not a match: empty, malformed escape, encoded slash, not UTF-8, extra segment.
        for path in [
            "/api/users/",
            "/api/users/%zz",
            "/api/users/%4",
            "/api/users/a%2Fb",
            "/api/users/a%2fb",
            "/api/users/%FF",
            "/api/users/1/2",
            "/api/users",
        ] {
            assert_eq!(params_of(&pat, path), None, "{path}");
        }
    }

    #[test]
    fn wildcards() {
        let pat = p("/static/*path");
        let one = |v: Option<&str>| Some(vec![("path".to_string(), v.map(str::to_string))]);
        assert_eq!(params_of(&pat, "/static/"), one(Some("")));
        assert_eq!(params_of(&pat, "/static/a/b.txt"), one(Some("a/b.txt")));
        assert_eq!(params_of(&pat, "/static/a%20b/c"), one(Some("a b/c")));
        assert_eq!(params_of(&pat, "/static/a%2Fb"), one(None));
        assert_eq!(params_of(&pat, "/static"), None);
        assert_eq!(params_of(&pat, "/staticx/a"), None);
        let all = p("/*rest");
        assert_eq!(params_of(&all, "/"), one_rest(""));
        assert_eq!(params_of(&all, "/x/y"), one_rest("x/y"));
        let mixed = p("/u/:id/files/*rest");
        assert_eq!(
            params_of(&mixed, "/u/7/files/a/b"),
            Some(vec![
                ("id".into(), Some("7".into())),
                ("rest".into(), Some("a/b".into()))
            ])
        );
    }

    fn one_rest(v: &str) -> Option<Vec<(String, Option<String>)>> {
        Some(vec![("rest".to_string(), Some(v.to_string()))])
    }

    #[test]
    fn bad_patterns() {
        for bad in [
            "",
            "hello",
            "/:",
            "/*",
            "/*a/b",
            "/:a/:a",
            "/a b",
            "/%41",
            "/:a-b",
            "/a?b",
            "/:a/:b/:c/:d/:e/:f/:g/:h/:i",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
        assert!(Router::new()
            .route(
                MethodSet::EMPTY,
                "/x",
                |_: &Request<'_>, _: &mut Output<'_>| Ok(None)
            )
            .is_err());
    }

    #[test]
    fn method_sets() {
        assert_eq!(MethodSet::GET.allow_value(), "GET, HEAD, OPTIONS");
        assert_eq!(MethodSet::POST.allow_value(), "OPTIONS, POST");
        assert_eq!(
            (MethodSet::PUT | MethodSet::GET | MethodSet::DELETE).allow_value(),
            "DELETE, GET, HEAD, OPTIONS, PUT"
        );
        assert!(MethodSet::GET.accepts(MethodSet::HEAD));
        assert!(!MethodSet::POST.accepts(MethodSet::HEAD));
        assert!(!MethodSet::GET.accepts(MethodSet::OPTIONS));
        assert_eq!(MethodSet::of(Method::Other("BREW")), None);
    }

    #[test]
    fn allowed_is_the_union_of_matching_routes() {
        let ok = |_: &Request<'_>, _: &mut Output<'_>| -> HandlerResult { Ok(None) };
        let mut r = Router::new();
        r.get("/a/:id", ok).unwrap();
        r.put("/a/me", ok).unwrap();
        r.post("/b", ok).unwrap();
        assert_eq!(
            r.allowed("/a/me"),
            Some(MethodSet::GET | MethodSet::HEAD | MethodSet::OPTIONS | MethodSet::PUT)
        );
        assert_eq!(
            r.allowed("/a/x").map(MethodSet::allow_value).as_deref(),
            Some("GET, HEAD, OPTIONS")
        );
        assert_eq!(r.allowed("/c"), None);
        r.fallback(MethodSet::GET, ok);
        assert_eq!(r.allowed("/c"), Some(MethodSet::GET.advertised()));
        assert_eq!(
            r.all_methods().allow_value(),
            "GET, HEAD, OPTIONS, POST, PUT"
        );
    }
}
