//! weft-app: the application layer above the protocol core. The event loop (weft-server)
//! hands each request head to an [`App`]; the app answers through [`Output`], at once or via
//! a [`Responder`] that the loop drives with backpressure. The core knows nothing of routes,
//! files or caching.

mod app;
pub mod demo;

pub use app::{App, AppError, ExchangeStats, Output, Produce, Responder, WRITE_HIGH_WATER};
