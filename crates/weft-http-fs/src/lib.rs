//! `weft-http-fs.wasm`: weft's demo application exported as `wasi:http/incoming-handler`
//! (world `weft:http/files`, wit/http.wit): the files come from a directory the host
//! preopens (`WEFT_ROOT`, e.g. `/site` with `wasmtime serve --dir ./site::/site`), the
//! options from environment variables (`WEFT_*`, see `weft_app::demo_options`; `wasmtime
//! serve -Scli --env NAME=VALUE`). Without `WEFT_ROOT`: the embedded demo site.
//!
//! The application is built once per instance, at its first request (a host that reuses
//! instances reuses it, with its file and compression caches).

#[cfg(target_os = "wasi")]
mod component {
    use wasi::exports::http::incoming_handler::Guest;
    use wasi::http::types::{IncomingRequest, ResponseOutparam};
    use weft_app::demo::DemoApp;
    use weft_http::{demo_from_env, wasi_host, Misconfigured};

    thread_local! {
        static APP: Result<DemoApp, Misconfigured> = {
            let vars: Vec<(String, String)> = std::env::vars().collect();
            demo_from_env(&vars, None).map_err(Misconfigured)
        };
    }

    struct WeftHttpFs;

    impl Guest for WeftHttpFs {
        fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
            APP.with(|app| wasi_host::handle_demo(app, request, response_out));
        }
    }

    wasi::http::proxy::export!(WeftHttpFs);
}
