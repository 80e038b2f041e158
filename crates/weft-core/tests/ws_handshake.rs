//! The opening handshake (RFC 6455 section 4.2) and permessage-deflate negotiation (RFC 7692
//! section 7.1).

use weft_core::ws::{
    accept_key, check_handshake, DeflateConfig, Handshake, HandshakeError, HandshakeOptions,
};
use weft_core::{parse_request_head, Limits};

const KEY_FIELD: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// Runs `check_handshake` on a request built from a request line and header lines.
fn handshake_of(
    request: &str,
    options: &HandshakeOptions<'_>,
) -> Result<Handshake, HandshakeError> {
    let (head, _) = parse_request_head(request.as_bytes(), &Limits::default())
        .expect("a valid request")
        .expect("a complete request");
    check_handshake(&head, options)
}

/// A valid handshake request with `extra` header lines.
fn request(extra: &str) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\n{KEY_FIELD}Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

fn plain() -> HandshakeOptions<'static> {
    HandshakeOptions {
        protocols: &[],
        deflate: false,
    }
}

fn with_deflate() -> HandshakeOptions<'static> {
    HandshakeOptions {
        protocols: &[],
        deflate: true,
    }
}

#[test]
fn accept_key_of_the_rfc_example() {
    // RFC 6455 section 1.3.
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn valid_handshake_and_its_response_fields() {
    let hs = handshake_of(&request(""), &plain()).unwrap();
    assert_eq!(hs.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(hs.protocol, None);
    assert_eq!(hs.deflate, None);
    assert_eq!(
        hs.response_headers(),
        [
            ("Upgrade", b"websocket".to_vec()),
            ("Connection", b"Upgrade".to_vec()),
            (
                "Sec-WebSocket-Accept",
                b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".to_vec()
            ),
        ]
    );
}

#[test]
fn token_lists_and_case() {
    let req = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c, WebSocket\r\n\
               Connection: keep-alive, UPGRADE\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
               sec-websocket-version: 13\r\n\r\n";
    assert!(handshake_of(req, &plain()).is_ok());
    // Two Connection fields.
    let req = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\
               Connection: upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
               Sec-WebSocket-Version: 13\r\n\r\n";
    assert!(handshake_of(req, &plain()).is_ok());
}

fn assert_error(request: &str, error: HandshakeError, status: u16) {
    let got = handshake_of(request, &plain()).unwrap_err();
    assert_eq!(got, error, "{request}");
    assert_eq!(got.status(), status);
    assert!(!got.reason().is_empty());
    assert_eq!(got.to_string(), got.reason());
}

#[test]
fn handshake_errors_and_statuses() {
    // A plain request to a WebSocket resource.
    assert_error(
        "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        HandshakeError::NotUpgrade,
        426,
    );
    let upgrade_other = request("").replace("Upgrade: websocket", "Upgrade: h2c");
    assert_error(&upgrade_other, HandshakeError::NotUpgrade, 426);
    // Method.
    assert_error(
        &request("").replace("GET", "POST"),
        HandshakeError::Method,
        405,
    );
    // HTTP/1.0.
    let http10 = request("").replace("HTTP/1.1", "HTTP/1.0");
    assert_error(&http10, HandshakeError::Version, 400);
    // Connection without upgrade.
    let no_conn = request("").replace("Connection: Upgrade", "Connection: keep-alive");
    assert_error(&no_conn, HandshakeError::MissingConnectionUpgrade, 400);
    let no_conn = request("").replace("Connection: Upgrade\r\n", "");
    assert_error(&no_conn, HandshakeError::MissingConnectionUpgrade, 400);
    // A body.
    assert_error(&request("Content-Length: 3\r\n"), HandshakeError::Body, 400);
    // Version.
    let no_version = request("").replace("Sec-WebSocket-Version: 13\r\n", "");
    assert_error(&no_version, HandshakeError::MissingVersion, 426);
    let old = request("").replace("Version: 13", "Version: 8");
    assert_error(&old, HandshakeError::UnsupportedVersion, 426);
    assert_error(
        &request("Sec-WebSocket-Version: 13\r\n"),
        HandshakeError::UnsupportedVersion,
        426,
    );
    // Key.
    let no_key = request("").replace(KEY_FIELD, "");
    assert_error(&no_key, HandshakeError::BadKey, 400);
    assert_error(&request(KEY_FIELD), HandshakeError::BadKey, 400);
    for bad in [
        "dGhlIHNhbXBsZSBub25jZQ",     // no padding
        "dGhlIHNhbXBsZSBub25jZQ=",    // 17 bytes would need one '='
        "dGhlIHNhbXBsZSBub25jZSE=",   // 17 bytes
        "dGhlIHNhbXBsZSBub25j",       // 15 bytes
        "dGhlIHNhbXBsZSBub25jZQ==AA", // too long
        "dGhl*HNhbXBsZSBub25jZQ==",   // not base64
        "",
    ] {
        let req = request("").replace("dGhlIHNhbXBsZSBub25jZQ==", bad);
        assert_error(&req, HandshakeError::BadKey, 400);
    }
}

#[test]
fn error_response_fields() {
    let fields = |e: HandshakeError| e.headers().to_vec();
    assert_eq!(
        fields(HandshakeError::NotUpgrade),
        [
            ("Upgrade", &b"websocket"[..]),
            ("Sec-WebSocket-Version", &b"13"[..])
        ]
    );
    assert_eq!(
        fields(HandshakeError::MissingVersion),
        [("Sec-WebSocket-Version", &b"13"[..])]
    );
    assert_eq!(
        fields(HandshakeError::UnsupportedVersion),
        [("Sec-WebSocket-Version", &b"13"[..])]
    );
    assert_eq!(fields(HandshakeError::Method), [("Allow", &b"GET"[..])]);
    assert!(fields(HandshakeError::BadKey).is_empty());
}

#[test]
fn subprotocol_is_the_servers_first_choice_among_the_offered() {
    let options = HandshakeOptions {
        protocols: &["v2.chat", "chat"],
        deflate: false,
    };
    let hs = handshake_of(
        &request("Sec-WebSocket-Protocol: chat, v2.chat\r\n"),
        &options,
    )
    .unwrap();
    assert_eq!(hs.protocol.as_deref(), Some("v2.chat"));
    assert!(hs
        .response_headers()
        .contains(&("Sec-WebSocket-Protocol", b"v2.chat".to_vec())));
    // Offers across several fields.
    let req = request("Sec-WebSocket-Protocol: other\r\nSec-WebSocket-Protocol: chat\r\n");
    assert_eq!(
        handshake_of(&req, &options).unwrap().protocol.as_deref(),
        Some("chat")
    );
    // Nothing in common, or nothing offered: no subprotocol (the client decides).
    let req = request("Sec-WebSocket-Protocol: other\r\n");
    assert_eq!(handshake_of(&req, &options).unwrap().protocol, None);
    assert_eq!(handshake_of(&request(""), &options).unwrap().protocol, None);
}

fn negotiated(extensions: &str) -> Option<DeflateConfig> {
    let req = request(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
    handshake_of(&req, &with_deflate()).unwrap().deflate
}

fn config(server_nct: bool, client_nct: bool, server_bits: u8, client_bits: u8) -> DeflateConfig {
    DeflateConfig {
        server_no_context_takeover: server_nct,
        client_no_context_takeover: client_nct,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    }
}

fn response_extension(extensions: &str) -> Option<String> {
    let req = request(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
    let hs = handshake_of(&req, &with_deflate()).unwrap();
    hs.response_headers()
        .into_iter()
        .find(|(name, _)| *name == "Sec-WebSocket-Extensions")
        .map(|(_, value)| String::from_utf8(value).unwrap())
}

#[test]
fn deflate_offer_parameters() {
    assert_eq!(
        negotiated("permessage-deflate"),
        Some(config(false, false, 15, 15))
    );
    // Chrome's offer.
    assert_eq!(
        negotiated("permessage-deflate; client_max_window_bits"),
        Some(config(false, false, 15, 15))
    );
    assert_eq!(
        negotiated(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=9"
        ),
        Some(config(true, true, 10, 9))
    );
    // Quoted values, odd spacing and case.
    assert_eq!(
        negotiated(
            "Permessage-Deflate ;Server_Max_Window_Bits = \"12\" ; client_max_window_bits=\"8\""
        ),
        Some(config(false, false, 12, 8))
    );
}

#[test]
fn deflate_offers_are_tried_in_order() {
    // Unknown extensions are skipped.
    assert_eq!(
        negotiated("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=11"),
        Some(config(false, false, 11, 15))
    );
    // An offer with an unknown, repeated or invalid parameter is skipped for the next.
    for bad in [
        "permessage-deflate; foo",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=1a",
        "permessage-deflate; client_max_window_bits=8; client_max_window_bits=8",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"\"",
        "permessage-deflate; ;",
        "permessage-deflate; server_max_window_bits=\"1,0\"",
    ] {
        assert_eq!(negotiated(bad), None, "{bad}");
        let offers = format!("{bad}, permessage-deflate; client_no_context_takeover");
        assert_eq!(
            negotiated(&offers),
            Some(config(false, true, 15, 15)),
            "{offers}"
        );
    }
    // Offers across several fields.
    let req = request(
        "Sec-WebSocket-Extensions: permessage-deflate; bogus\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n",
    );
    let hs = handshake_of(&req, &with_deflate()).unwrap();
    assert_eq!(hs.deflate, Some(config(true, false, 15, 15)));
}

#[test]
fn deflate_is_not_negotiated_unless_enabled_and_offered() {
    let req = request("Sec-WebSocket-Extensions: permessage-deflate\r\n");
    assert_eq!(handshake_of(&req, &plain()).unwrap().deflate, None);
    assert_eq!(
        handshake_of(&request(""), &with_deflate()).unwrap().deflate,
        None
    );
    assert_eq!(negotiated("x-other; a=b"), None);
    assert!(response_extension("x-other").is_none());
}

#[test]
fn deflate_response_parameters() {
    assert_eq!(
        response_extension("permessage-deflate").as_deref(),
        Some("permessage-deflate")
    );
    assert_eq!(
        response_extension("permessage-deflate; client_max_window_bits").as_deref(),
        Some("permessage-deflate")
    );
    assert_eq!(
        response_extension(
            "permessage-deflate; client_max_window_bits=10; server_max_window_bits=9; \
             client_no_context_takeover; server_no_context_takeover"
        )
        .as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=9; client_max_window_bits=10"
        )
    );
    // Accepting an offer that names server_max_window_bits means naming it back (RFC 7692
    // section 7.1.2.1), even at 15, the value its absence means.
    assert_eq!(
        response_extension("permessage-deflate; server_max_window_bits=15").as_deref(),
        Some("permessage-deflate; server_max_window_bits=15")
    );
}
