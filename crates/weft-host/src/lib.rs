//! weft-host: a native program that embeds wasmtime and serves HTTP/1.1 and WebSocket with
//! weft's protocol engine (`wit/engine.wit`, the component `weft-engine.wasm`), which it loads
//! as a plugin and drives with its own sockets and clocks.
//!
//! [`engine`]: the bindings and the instances; [`server`]: the TCP loop; [`routes`]: the
//! host's small application (weft's demo routes that need no shared state).

#![forbid(unsafe_code)]

pub mod engine;
pub mod routes;
pub mod server;
