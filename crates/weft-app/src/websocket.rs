//! WebSocket sessions as the application sees them.
//!
//! A handler answers an upgrade request with [`Output::accept_websocket`]: it validates the
//! handshake (weft-core's [`check_handshake`]), answers `101` (or the handshake's error
//! status) and parks a [`WebSocketHandler`] in the exchange. When the core reports the
//! upgrade, the event loop takes the handler and runs the session: every message reaches
//! [`WebSocketHandler::message`], and [`WebSocketHandler::poll`] runs after a [`Notifier`]
//! woke the connection (another connection's handler, possibly on another worker thread,
//! has something for it). Frames, pings, the closing handshake and limits belong to the
//! core's [`WebSocket`](weft_core::ws::WebSocket) codec.
//!
//! A handler is dropped when its connection ends, whichever side ends it: cleanup that must
//! not be missed (leaving a chat room) belongs in `Drop`.

use std::sync::Arc;
use std::time::Instant;

use weft_core::ws::{check_handshake, HandshakeOptions, WsConfig, WsSender};
use weft_core::RequestHead;

use crate::{AppError, Output, WRITE_HIGH_WATER};

/// A complete message from the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// Wakes connections of one event loop from any thread: the driver implements it.
pub trait Wake: Send + Sync {
    /// Asks the loop owning connection `token` to call its handler's `poll` soon.
    fn wake(&self, token: usize);
}

/// Wakes one WebSocket connection (cheap to clone; `Send + Sync`, so it can be handed to
/// shared state such as a chat room).
#[derive(Clone)]
pub struct Notifier {
    wake: Arc<dyn Wake>,
    token: usize,
}

impl Notifier {
    pub fn new(wake: Arc<dyn Wake>, token: usize) -> Notifier {
        Notifier { wake, token }
    }

    /// Schedules a call of the session's [`WebSocketHandler::poll`]. A notification for a
    /// connection that has ended is ignored (or reaches a later connection on the same token
    /// as a spurious `poll`, which handlers tolerate).
    pub fn notify(&self) {
        self.wake.wake(self.token);
    }
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("token", &self.token)
            .finish()
    }
}

/// The sending half of a session: the codec's [`WsSender`], lent while a handler runs (while
/// [`WebSocketHandler::message`] holds the message, which the codec's receiving side owns).
pub struct WsOutput<'c> {
    ws: &'c mut WsSender,
    now: Instant,
}

impl<'c> WsOutput<'c> {
    pub fn new(ws: &'c mut WsSender, now: Instant) -> WsOutput<'c> {
        WsOutput { ws, now }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn send_text(&mut self, text: &str) -> Result<(), AppError> {
        self.ws
            .send_text(text, self.now)
            .map_err(AppError::WebSocket)
    }

    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), AppError> {
        self.ws
            .send_binary(data, self.now)
            .map_err(AppError::WebSocket)
    }

    /// Starts the closing handshake with `code` and `reason`.
    pub fn close(&mut self, code: u16, reason: &str) {
        self.ws.close(code, reason, self.now);
    }

    /// Whether a Close has been sent (nothing more can be).
    pub fn is_closing(&self) -> bool {
        self.ws.is_closing()
    }

    /// Bytes the output may still take before the handler should hold back (the loop stops
    /// reading the peer while it is full, so an echo needs no check of its own).
    pub fn room(&self) -> usize {
        WRITE_HIGH_WATER.saturating_sub(self.ws.transmit().len())
    }
}

fn origin_allowed(options: &WsOptions, head: &RequestHead<'_>) -> bool {
    options
        .origin_check
        .as_ref()
        .is_none_or(|check| check(head.headers.get("origin")))
}

/// One WebSocket session's application side.
pub trait WebSocketHandler {
    /// The `101` is queued and the session runs. `notify` wakes this session later.
    fn open(&mut self, _notify: Notifier, _ws: &mut WsOutput<'_>) -> Result<(), AppError> {
        Ok(())
    }

    /// A complete message arrived.
    fn message(&mut self, msg: Message<'_>, ws: &mut WsOutput<'_>) -> Result<(), AppError>;

    /// The session was notified, or its output has room again after `poll` last returned
    /// `true`. Returns whether it still has something queued to send (it is called again when
    /// the output drains).
    fn poll(&mut self, _ws: &mut WsOutput<'_>) -> Result<bool, AppError> {
        Ok(false)
    }
}

/// Decides whether a handshake's `Origin` (the field's value; `None` without one) may open a
/// session. A browser always sends `Origin`, so this is how a server keeps other sites' pages
/// from using a user's browser against it (RFC 6455 section 10.2).
pub type OriginCheck = Arc<dyn Fn(Option<&[u8]>) -> bool + Send + Sync>;

/// An [`OriginCheck`] that accepts the listed origins (compared ASCII case-insensitively) and
/// requests without `Origin` (clients that are not browsers).
pub fn allow_origins(origins: Vec<String>) -> OriginCheck {
    Arc::new(move |origin: Option<&[u8]>| match origin {
        None => true,
        Some(origin) => origins
            .iter()
            .any(|allowed| allowed.as_bytes().eq_ignore_ascii_case(origin)),
    })
}

/// What [`Output::accept_websocket`] negotiates for a route.
#[derive(Clone)]
pub struct WsOptions {
    /// Subprotocols spoken, in preference order.
    pub protocols: Vec<&'static str>,
    /// Accept permessage-deflate offers.
    pub deflate: bool,
    /// Frame and message limits, ping and close timing (its `deflate` is set by negotiation).
    pub config: WsConfig,
    /// Which origins may open a session (`None`: any); a refused one gets `403`.
    pub origin_check: Option<OriginCheck>,
}

impl std::fmt::Debug for WsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsOptions")
            .field("protocols", &self.protocols)
            .field("deflate", &self.deflate)
            .field("config", &self.config)
            .field("origin_check", &self.origin_check.is_some())
            .finish()
    }
}

impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            protocols: Vec::new(),
            deflate: true,
            config: WsConfig::default(),
            origin_check: None,
        }
    }
}

/// The body of the `501` a WebSocket route answers where connections cannot be upgraded.
pub const NO_UPGRADES: &[u8] = b"WebSocket is not available here: this server runs behind a \
wasi:http host, which owns the HTTP connection and cannot hand it over (use weft's native \
build or its raw-socket component, weft.wasm, for WebSocket)\n";

/// A session the exchange has accepted, waiting for the core to report the upgrade.
pub struct PendingUpgrade {
    pub config: WsConfig,
    pub handler: Box<dyn WebSocketHandler>,
}

impl std::fmt::Debug for PendingUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingUpgrade")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Output<'_> {
    /// Answers a WebSocket handshake: `101 Switching Protocols` with the negotiated
    /// subprotocol and extension, and `handler` runs the session; or, for a request that is
    /// not a valid handshake, the handshake error's status (400, 405 or 426) with its fields;
    /// or `403` for an origin the options' check refuses; or, behind a driver that cannot
    /// upgrade a connection (a `wasi:http` host), `501` saying so. Returns whether the session
    /// was accepted.
    pub fn accept_websocket(
        &mut self,
        head: &RequestHead<'_>,
        options: &WsOptions,
        handler: Box<dyn WebSocketHandler>,
    ) -> Result<bool, AppError> {
        if !self.upgrades() {
            self.full(
                501,
                &[("Content-Type", b"text/plain; charset=utf-8")],
                NO_UPGRADES,
            )?;
            return Ok(false);
        }
        let handshake_options = HandshakeOptions {
            protocols: &options.protocols,
            deflate: options.deflate,
        };
        let handshake = match check_handshake(head, &handshake_options) {
            Ok(_) if !origin_allowed(options, head) => {
                self.full(
                    403,
                    &[("Content-Type", b"text/plain; charset=utf-8")],
                    b"this origin may not open a WebSocket here\n",
                )?;
                return Ok(false);
            }
            Ok(h) => h,
            Err(e) => {
                let mut fields: Vec<(&str, &[u8])> = e.headers().to_vec();
                fields.push(("Content-Type", b"text/plain; charset=utf-8"));
                let body = format!("{}\n", e.reason());
                self.full(e.status(), &fields, body.as_bytes())?;
                return Ok(false);
            }
        };
        let owned = handshake.response_headers();
        let fields: Vec<(&str, &[u8])> = owned.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        self.full(101, &fields, b"")?;
        let mut config = options.config.clone();
        config.deflate = handshake.deflate;
        self.set_upgrade(PendingUpgrade { config, handler });
        Ok(true)
    }
}
