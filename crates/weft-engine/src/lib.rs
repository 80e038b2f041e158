//! weft-engine: weft-core's sans-IO HTTP/1.1 connection and WebSocket session exported as a
//! WebAssembly component (`wit/engine.wit`, world `weft:engine/engine`) that imports nothing.
//!
//! This crate holds no protocol logic: each export converts its arguments, calls weft-core and
//! converts the answer. What it adds is ownership of the input: a resource keeps the bytes fed
//! to it until the core consumes them (a WIT host cannot lend its read buffer), and refuses
//! more once it holds its limit. Every export is total: no input or call order makes it
//! panic (a panic in a component is a trap that poisons the instance).
//!
//! Built for `wasm32-unknown-unknown` by `scripts/build-engine`; see `docs/ENGINE.md`.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod convert;
mod http;
mod input;
mod time;
mod websocket;

/// The component's implementation of every exported interface.
pub struct Engine;

/// The bindings wit-bindgen generates from `wit/engine.wit` (their glue code uses `unsafe`
/// for the canonical ABI; none of this crate's own code does).
#[allow(unsafe_code, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        world: "engine",
        path: "../../wit/engine.wit",
    });

    use crate::Engine;
    export!(Engine);
}

pub use bindings::exports::weft::engine::{
    http as wit_http, types as wit_types, websocket as wit_ws,
};
