//! `weft-http-proxy.wasm`: weft's demo application exported as
//! `wasi:http/incoming-handler`, importing nothing beyond the `wasi:http/proxy` world (world
//! `weft:http/proxy`, wit/http.wit), which is what proxy-only platforms accept. The site
//! and the options are compiled in (build.rs: `WEFT_SITE=DIR` and the `WEFT_*` options at
//! build time).

mod compiled {
    include!(concat!(env!("OUT_DIR"), "/site.rs"));
}

/// The compiled-in options as `(name, value)` pairs.
pub fn options() -> Vec<(String, String)> {
    compiled::OPTIONS
        .iter()
        .map(|&(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// The compiled-in site (`None`: the built-in demo site).
pub fn site() -> Option<&'static [(&'static str, &'static [u8])]> {
    compiled::SITE
}

#[cfg(target_os = "wasi")]
mod component {
    use wasi::exports::http::incoming_handler::Guest;
    use wasi::http::types::{IncomingRequest, ResponseOutparam};
    use weft_app::demo::DemoApp;
    use weft_http::{demo_from_env, wasi_host, Misconfigured};

    thread_local! {
        static APP: Result<DemoApp, Misconfigured> =
            demo_from_env(&super::options(), super::site()).map_err(Misconfigured);
    }

    struct WeftHttpProxy;

    impl Guest for WeftHttpProxy {
        fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
            APP.with(|app| wasi_host::handle_demo(app, request, response_out));
        }
    }

    wasi::http::proxy::export!(WeftHttpProxy);
}
