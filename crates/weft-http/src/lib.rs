//! `weft-http`: weft's application behind a host that owns the HTTP connection, the
//! `wasi:http/incoming-handler` of `wasmtime serve`, `jco serve` and the platforms built on
//! the `wasi:http/proxy` world.
//!
//! The host parses requests, frames responses and manages connections; this bridge turns
//! each request into the protocol core's [`weft_core::RequestHead`] ([`request`]), runs the
//! same [`weft_app::App`] the event loop runs ([`driver`]), and hands its response to the
//! host through a [`weft_app::ResponseSink`] ([`sink`]). The host side is a [`driver::Host`]:
//! on `wasm32-wasip2` the `wasi:http` types ([`wasi_host`]).
//!
//! The components are built by `crates/weft-http-fs` (files from a preopened directory,
//! options from the environment) and `crates/weft-http-proxy` (the strict proxy world: files
//! and options compiled in).

#![forbid(unsafe_code)]

pub mod driver;
pub mod request;
pub mod sink;
#[cfg(target_os = "wasi")]
pub mod wasi_host;

use weft_app::demo::{DemoApp, DemoConfig};
use weft_app::{demo_options, App, HandlerResult, Output};
use weft_core::RequestHead;

/// The demo application configured from environment variables (`vars`: every variable set,
/// as `(name, value)`), with `site` as its files when no `WEFT_ROOT` is given (the built-in
/// demo site when `None`). See [`weft_app::demo_options`] for the names.
pub fn demo_from_env(
    vars: &[(String, String)],
    site: Option<&'static [(&'static str, &'static [u8])]>,
) -> Result<DemoApp, String> {
    let mut config = DemoConfig {
        site,
        ..DemoConfig::default()
    };
    demo_options::from_env(
        &mut config,
        vars.iter().map(|(n, _)| n.as_str()),
        |name: &str| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()),
    )?;
    DemoApp::new(config).map_err(|e| e.to_string())
}

/// The application of a component whose configuration is invalid: a component has no start
/// to fail, so every request is answered `500` with the reason (and the reason is logged).
pub struct Misconfigured(pub String);

impl App for Misconfigured {
    fn start(&self, _head: &RequestHead<'_>, out: &mut Output<'_>) -> HandlerResult {
        let body = format!("weft: invalid configuration: {}\n", self.0);
        out.full(
            500,
            &[("Content-Type", b"text/plain; charset=utf-8")],
            body.as_bytes(),
        )?;
        Ok(None)
    }

    fn complete(&self, _done: &weft_app::Completed<'_>, log: &mut Vec<u8>) {
        log.extend_from_slice(format!("weft: invalid configuration: {}\n", self.0).as_bytes());
    }
}
