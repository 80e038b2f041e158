//! weft-app: the application layer above the protocol core. The event loop (weft-server)
//! hands each request head to an [`App`]; the app answers through [`Output`], at once or via
//! a [`Responder`] that the loop drives with backpressure. The core knows nothing of routes,
//! files or caching.
//!
//! [`router::Router`] maps method + path pattern to handlers; [`middleware::Chain`] wraps it
//! in middleware (access log, CORS, security headers, error handling); [`demo`] is the app the
//! `weft` binary serves.
//!
//! The crate is panic-free (no `unwrap`, `expect`, indexing or `panic!`): in the wasm build a
//! panic traps the whole component, every connection with it. Handlers return errors instead.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod accept_encoding;
mod app;
pub mod chat;
pub mod compressor;
pub mod conditional;
pub mod deflate_encoder;
pub mod demo;
pub mod demo_options;
pub mod file_cache;
pub mod listing;
pub mod mapping;
pub mod middleware;
pub mod mime;
pub mod range;
pub mod router;
pub mod static_files;
#[cfg(test)]
mod testing;
pub mod websocket;

pub use app::{
    is_safe_field_value, App, AppError, Completed, Exchange, ExchangeStats, ExtraHeaders, Output,
    Produce, RequestLine, Responder, ResponseSink, StaticFields, WRITE_HIGH_WATER,
};
pub use compressor::{CompressOptions, Compressor};
pub use middleware::{AccessLog, Chain, Cors, Flow, Middleware, SecurityHeaders};
pub use router::{HandlerResult, MethodSet, Request, Router};
pub use static_files::{StaticFiles, StaticOptions};
pub use websocket::{
    allow_origins, Message, Notifier, OriginCheck, PendingUpgrade, Wake, WebSocketHandler,
    WsOptions, WsOutput,
};
