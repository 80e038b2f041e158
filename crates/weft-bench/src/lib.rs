//! Benchmark support for weft: the request corpus of the parser benchmark (`benches/parse.rs`).
//!
//! The server baselines live beside it: `src/bin/bench-hyper.rs` (hyper),
//! `src/bin/ws-echo-tungstenite.rs` (the WebSocket baseline) with its load generator
//! `src/bin/ws-load.rs`, `node/hello.js`,
//! `nginx/hello.conf` and the wrk pipelining script `wrk/pipeline.lua`, all driven by
//! `scripts/bench`. This crate is never a dependency of the product crates.

/// One request of the parser corpus.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Short name used in the report.
    pub name: &'static str,
    /// The bytes a server would have read: the head, and for the POST its body after it.
    pub bytes: &'static [u8],
    /// Length of the head (request line, fields, empty line): what a parser must consume.
    pub head_len: usize,
}

const BROWSER_GET: &[u8] = b"GET /static/app.js?v=3 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Connection: keep-alive\r\n\
Cookie: session=3f2a9c1e7b5d4a60; theme=dark; _ga=GA1.1.1234567890.1700000000\r\n\
Upgrade-Insecure-Requests: 1\r\n\
\r\n";

const CURL_GET: &[u8] = b"GET /hello HTTP/1.1\r\n\
Host: 127.0.0.1:8080\r\n\
User-Agent: curl/7.88.1\r\n\
Accept: */*\r\n\
\r\n";

const POST_HEAD: &[u8] = b"POST /api/v1/orders?dry_run=false HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15\r\n\
Accept: application/json\r\n\
Accept-Language: en-GB,en;q=0.9\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Content-Type: application/json; charset=utf-8\r\n\
Content-Length: 62\r\n\
Origin: https://shop.example.com\r\n\
Referer: https://shop.example.com/checkout/confirm\r\n\
Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dGVzdHNpZ25hdHVyZQ\r\n\
Cookie: session=3f2a9c1e7b5d4a60; csrftoken=a8f5f167f44f4964e6c998dee827110c\r\n\
X-Csrf-Token: a8f5f167f44f4964e6c998dee827110c\r\n\
X-Request-Id: 7d3c6b0e-2f1a-4c8e-9b5d-0a1e2f3c4d5e\r\n\
X-Forwarded-For: 203.0.113.7, 198.51.100.23\r\n\
X-Forwarded-Proto: https\r\n\
Cache-Control: no-cache\r\n\
Pragma: no-cache\r\n\
Sec-Fetch-Dest: empty\r\n\
Sec-Fetch-Mode: cors\r\n\
Connection: keep-alive\r\n\
\r\n";

const POST_BODY: &[u8] = br#"{"sku":"A-1042","quantity":2,"note":"leave at the front door"}"#;

const fn concat_bytes<const N: usize>(a: &[u8], b: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < b.len() {
        out[i + j] = b[j];
        j += 1;
    }
    out
}

const POST_LEN: usize = POST_HEAD.len() + POST_BODY.len();
const POST_BYTES: [u8; POST_LEN] = concat_bytes(POST_HEAD, POST_BODY);

/// The corpus: a browser-like GET (8 fields), a curl GET (3 fields), a POST with
/// Content-Length and 20 fields followed by its body.
pub const CORPUS: &[Sample] = &[
    Sample {
        name: "browser GET (8 fields)",
        bytes: BROWSER_GET,
        head_len: BROWSER_GET.len(),
    },
    Sample {
        name: "curl GET (3 fields)",
        bytes: CURL_GET,
        head_len: CURL_GET.len(),
    },
    Sample {
        name: "POST (20 fields)",
        bytes: &POST_BYTES,
        head_len: POST_HEAD.len(),
    },
];

/// Number of header slots given to httparse in the comparison.
pub const HTTPARSE_HEADERS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_body_length_matches_content_length() {
        assert_eq!(POST_BODY.len(), 62);
        assert_eq!(&POST_BYTES[..POST_HEAD.len()], POST_HEAD);
    }

    #[test]
    fn field_counts() {
        let fields = |head: &[u8]| {
            head.windows(2).filter(|w| w == b"\r\n").count() - 2 // request line and empty line
        };
        assert_eq!(fields(BROWSER_GET), 8);
        assert_eq!(fields(CURL_GET), 3);
        assert_eq!(fields(POST_HEAD), 20);
    }

    #[test]
    fn httparse_accepts_the_corpus() {
        for sample in CORPUS {
            let mut headers = [httparse::EMPTY_HEADER; HTTPARSE_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            let status = req.parse(sample.bytes).expect(sample.name);
            assert_eq!(
                status,
                httparse::Status::Complete(sample.head_len),
                "{}",
                sample.name
            );
        }
    }

    #[test]
    fn weft_accepts_the_corpus() {
        let limits = weft_core::Limits::default();
        for sample in CORPUS {
            let parsed = weft_core::parse_request_head(sample.bytes, &limits);
            let Ok(Some((head, used))) = parsed else {
                panic!("{}: {:?}", sample.name, parsed.map(|o| o.map(|(_, n)| n)));
            };
            assert_eq!(used, sample.head_len, "{}", sample.name);
            assert_eq!(head.headers.iter().count(), {
                let mut h = [httparse::EMPTY_HEADER; HTTPARSE_HEADERS];
                let mut r = httparse::Request::new(&mut h);
                let _ = r.parse(sample.bytes);
                r.headers.len()
            });
        }
    }

    #[test]
    fn incomplete_heads_are_incomplete_for_both() {
        let limits = weft_core::Limits::default();
        for sample in CORPUS {
            let cut = &sample.bytes[..sample.head_len - 1];
            assert!(matches!(
                weft_core::parse_request_head(cut, &limits),
                Ok(None)
            ));
            let mut headers = [httparse::EMPTY_HEADER; HTTPARSE_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            assert_eq!(req.parse(cut), Ok(httparse::Status::Partial));
        }
    }
}
