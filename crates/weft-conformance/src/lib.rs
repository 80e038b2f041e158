//! weft's conformance harness: replays `.case` transcripts (raw request
//! bytes, expected response bytes or assertions) over TCP against the native
//! weft binary, the wasm component under wasmtime, or any loopback server.
//!
//! The transcript format is documented in `conformance/README.md`.

#![forbid(unsafe_code)]

pub mod case;
pub mod decode;
pub mod diff;
pub mod escape;
pub mod fuzz;
pub mod profile;
pub mod response;
pub mod run;
pub mod serve;
pub mod suite;
pub mod target;
pub mod ws;
