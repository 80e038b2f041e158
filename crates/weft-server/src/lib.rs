//! weft-server: the event loop over a small backend trait, the native (epoll) and WASI
//! backends, and the command line of the `weft` binary. The application (weft-app) sits above.

pub mod backend;
pub mod budget;
pub mod buffer;
pub mod cli;
pub mod event_loop;
#[cfg(not(target_os = "wasi"))]
pub mod native;
#[cfg(target_os = "wasi")]
pub mod wasi_backend;
