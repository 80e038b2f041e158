//! weft-server: the event loop over a small backend trait, the native (epoll) backend, the
//! demo application and the command line of the `weft` binary.

pub mod app;
pub mod backend;
pub mod buffer;
pub mod cli;
pub mod demo;
pub mod event_loop;
#[cfg(not(target_os = "wasi"))]
pub mod native;
#[cfg(target_os = "wasi")]
pub mod wasi_backend;
