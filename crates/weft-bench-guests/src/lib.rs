//! `hello-http`: a `wasi:http/proxy` component that answers every request with
//! `200 OK`, `Content-Type: text/plain` and the body `Hello, world!`. It is the
//! `wasmtime-serve` row of `scripts/bench`:
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p weft-bench-guests
//! wasmtime serve -Scli --addr 127.0.0.1:PORT target/wasm32-wasip2/release/hello_http.wasm
//! ```
//!
//! The host (wasmtime's hyper-based server) does the HTTP; this guest only fills in the
//! response, so the row measures the cost of the `wasi:http` hosting model (by default a
//! fresh instance per request), not an HTTP implementation of ours.
//!
//! On targets other than WASI the crate is empty: it exists there only so that
//! `cargo clippy --workspace --all-targets` covers it.

#[cfg(target_os = "wasi")]
mod guest {
    use wasi::exports::http::incoming_handler::Guest;
    use wasi::http::types::{
        Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
    };

    const BODY: &[u8] = b"Hello, world!";

    struct HelloHttp;

    impl Guest for HelloHttp {
        fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
            let headers = Fields::from_list(&[
                ("content-type".to_string(), b"text/plain".to_vec()),
                (
                    "content-length".to_string(),
                    BODY.len().to_string().into_bytes(),
                ),
            ]);
            let Ok(headers) = headers else {
                return;
            };
            let response = OutgoingResponse::new(headers);
            let Ok(body) = response.body() else {
                return;
            };
            ResponseOutparam::set(response_out, Ok(response));
            if let Ok(out) = body.write() {
                // 13 bytes: far below blocking_write_and_flush's 4096-byte limit.
                let _ = out.blocking_write_and_flush(BODY);
                // The stream must be gone before its body is finished.
                drop(out);
            }
            let _ = OutgoingBody::finish(body, None);
        }
    }

    wasi::http::proxy::export!(HelloHttp);
}
