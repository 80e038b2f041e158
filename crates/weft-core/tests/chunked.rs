//! Chunked request bodies, through a whole connection and through the decoder alone.

mod common;

use common::*;
use weft_core::{ChunkedDecoder, Decoded, Error, Limits};

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut input = b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    input.extend_from_slice(body);
    input
}

fn fields(list: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect()
}

#[test]
fn chunks_are_joined_and_ended() {
    let o = check(&chunked(
        b"5\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n",
    ));
    let r = o.req().clone();
    assert_eq!(
        o.events,
        vec![
            Ev::Request(r),
            Ev::Data(b"hello 0123456789".to_vec()),
            Ev::End(vec![])
        ]
    );
    assert_eq!(o.out, echo_response("POST /c\nhello 0123456789", None));
    assert!(!o.closed);
}

#[test]
fn empty_chunked_body() {
    let o = check(&chunked(b"0\r\n\r\n"));
    assert_eq!(o.events.len(), 2);
    assert_eq!(o.events[1], Ev::End(vec![]));
}

#[test]
fn chunk_sizes() {
    for (size_line, data) in [
        ("a", &b"0123456789"[..]),
        ("A", b"0123456789"),
        ("000a", b"0123456789"),
        ("00000000000000000000000000001", b"x"),
        ("1F", &[b'z'; 31]),
    ] {
        let mut body = format!("{size_line}\r\n").into_bytes();
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(check(&chunked(&body)).body(), data, "{size_line}");
    }
}

#[test]
fn bad_chunk_size_lines() {
    for line in [
        &b"0x5"[..],
        b"+5",
        b"-5",
        b" 5",
        b"5 ",
        b"5\t",
        b"",
        b"g",
        b"5g",
        b"5;",
        b"5;=x",
        b"5;a=",
        b"5;a=\"unterminated",
        b"5;a=b c",
        b"5;a\x00",
        b"5 x",
        b"10000000000000000",
        b"ffffffffffffffffff",
    ] {
        let mut body = line.to_vec();
        body.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert_failed(&chunked(&body), Error::BadChunk);
    }
}

#[test]
fn chunk_extensions() {
    for ext in [
        &b";a"[..],
        b";a=b",
        b" ; a = b",
        b";a=\"quoted; \\\"string\\\"\"",
        b";a;b=1;c=\"\"",
        b"\t;a",
    ] {
        let mut body = b"5".to_vec();
        body.extend_from_slice(ext);
        body.extend_from_slice(b"\r\nhello\r\n0");
        body.extend_from_slice(ext);
        body.extend_from_slice(b"\r\n\r\n");
        assert_eq!(check(&chunked(&body)).body(), b"hello", "{ext:?}");
    }
}

#[test]
fn extension_total_is_limited() {
    let limits = Limits {
        max_chunk_ext_total: 20,
        ..Limits::default()
    };
    // Ten bytes of extensions per chunk: two chunks fit, three do not.
    let two = chunked(b"1;abcdefghi\r\nx\r\n0;abcdefghi\r\n\r\n");
    assert_eq!(check_with(&two, &limits, Answer::Echo).body(), b"x");
    let three = chunked(b"1;abcdefghi\r\nx\r\n1;abcdefghi\r\ny\r\n0;abcdefghi\r\n\r\n");
    let o = check_with(&three, &limits, Answer::Echo);
    assert_eq!(o.err(), Error::BadChunk);
    assert_eq!(o.body(), b"xy");
}

#[test]
fn chunk_line_length_is_limited() {
    let limits = Limits {
        max_chunk_line: 16,
        ..Limits::default()
    };
    // 14 bytes plus CRLF fits.
    let ok = chunked(b"1;abcdefghijkl\r\nx\r\n0\r\n\r\n");
    assert_eq!(check_with(&ok, &limits, Answer::Echo).body(), b"x");
    let long = chunked(b"1;abcdefghijklm\r\nx\r\n0\r\n\r\n");
    assert_eq!(
        check_with(&long, &limits, Answer::Echo).err(),
        Error::BadChunk
    );
    // A size line that never ends is refused without waiting for the end.
    let endless = chunked(&[b'0'; 40]);
    assert_eq!(
        check_with(&endless, &limits, Answer::Echo).err(),
        Error::BadChunk
    );
}

#[test]
fn chunk_data_must_end_with_crlf() {
    for tail in [
        &b"5\r\nhelloX\r\n0\r\n\r\n"[..],
        b"5\r\nhello\n0\r\n\r\n",
        b"5\r\nhello\r0\r\n\r\n",
        b"5\r\nhello0\r\n\r\n",
        b"5\r\nhello\r\r\n0\r\n\r\n",
        b"3\r\nhello\r\n0\r\n\r\n",
    ] {
        let o = check(&chunked(tail));
        assert_eq!(
            o.err(),
            Error::BadChunk,
            "{:?}",
            String::from_utf8_lossy(tail)
        );
        assert!(o.out_str().starts_with("HTTP/1.1 400 Bad Request\r\n"));
    }
}

#[test]
fn bare_lf_after_size_is_refused() {
    assert_failed(&chunked(b"5\nhello\r\n0\r\n\r\n"), Error::BadChunk);
    let o = check(&chunked(b"5\r\nhello\r\n0\n\r\n"));
    assert_eq!(o.err(), Error::BadChunk);
    assert_eq!(o.body(), b"hello");
}

#[test]
fn trailers() {
    let o = check(&chunked(
        b"5\r\nhello\r\n0\r\nX-Sum: abc\r\nx-other:  spaced \t\r\n\r\n",
    ));
    assert_eq!(
        o.events.last(),
        Some(&Ev::End(fields(&[
            ("X-Sum", b"abc"),
            ("x-other", b"spaced")
        ])))
    );
    assert!(!o.closed);
}

#[test]
fn bad_trailers() {
    for t in [
        &b"X : y\r\n\r\n"[..],
        b" folded\r\n\r\n",
        b"X: a\x00b\r\n\r\n",
        b"X: a\rb\r\n\r\n",
        b"X: y\n\r\n",
        b"X: y\r\n\n",
        b"no colon\r\n\r\n",
        b"\rX: y\r\n\r\n",
    ] {
        let mut body = b"5\r\nhello\r\n0\r\n".to_vec();
        body.extend_from_slice(t);
        let o = check(&chunked(&body));
        assert_eq!(
            o.err(),
            Error::BadTrailer,
            "{:?}",
            String::from_utf8_lossy(t)
        );
        assert_eq!(o.out, error_response(Error::BadTrailer));
    }
}

#[test]
fn trailer_size_limit() {
    let limits = Limits {
        max_trailers: 32,
        ..Limits::default()
    };
    let section = |value_len: usize| {
        let mut body = b"0\r\nX: ".to_vec();
        body.extend_from_slice(&b"v".repeat(value_len));
        body.extend_from_slice(b"\r\n\r\n");
        body
    };
    // "X: " + value + CRLF is the section (its final empty line not counted): 32 bytes fit.
    let exact = section(32 - 5);
    let o = check_with(&chunked(&exact), &limits, Answer::Echo);
    assert_eq!(
        o.events.last(),
        Some(&Ev::End(fields(&[("X", &[b'v'; 27])])))
    );
    for over in [28, 29, 30, 100] {
        let o = check_with(&chunked(&section(over)), &limits, Answer::Echo);
        assert_eq!(o.err(), Error::TrailersTooLarge, "{over}");
        assert!(o.out_str().starts_with("HTTP/1.1 431 "));
    }
    // Many small fields add up.
    let mut body = b"0\r\n".to_vec();
    body.extend_from_slice(&b"A: b\r\n".repeat(10));
    body.extend_from_slice(b"\r\n");
    let o = check_with(&chunked(&body), &limits, Answer::Echo);
    assert_eq!(o.err(), Error::TrailersTooLarge);
}

#[test]
fn chunked_body_limit_is_413() {
    let limits = Limits {
        max_body: 10,
        ..Limits::default()
    };
    let ok = chunked(b"5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n");
    assert_eq!(check_with(&ok, &limits, Answer::Echo).body(), b"0123456789");
    // The size line that passes the limit is refused before its data arrives.
    let o = check_with(&chunked(b"5\r\n01234\r\n6\r\n"), &limits, Answer::Echo);
    assert_eq!(o.err(), Error::BodyTooLarge);
    assert_eq!(o.body(), b"01234");
    assert!(o
        .out_str()
        .starts_with("HTTP/1.1 413 Content Too Large\r\n"));
    // Sizes that overflow when summed.
    let o = check(&chunked(b"1\r\nx\r\nffffffffffffffff\r\n"));
    assert_eq!(o.err(), Error::BodyTooLarge);
}

#[test]
fn chunked_then_pipelined_request() {
    let mut input = chunked(b"3\r\nabc\r\n0\r\nT: 1\r\n\r\n");
    input.extend_from_slice(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    let o = check(&input);
    let targets: Vec<_> = o.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, ["/c", "/2"]);
    let mut want = echo_response("POST /c\nabc", None);
    want.extend_from_slice(&echo_response("GET /2\n", None));
    assert_eq!(o.out, want);
}

// The decoder on its own.

fn decode_all(input: &[u8], limits: &Limits, step: usize) -> Result<(Vec<u8>, usize), Error> {
    let mut dec = ChunkedDecoder::new();
    let mut data = Vec::new();
    let mut pos = 0;
    let mut avail = 0;
    loop {
        let (d, n) = dec.decode(&input[pos..avail], limits)?;
        pos += n;
        match d {
            Decoded::Data(bytes) => data.extend_from_slice(bytes),
            Decoded::End(_) => {
                assert!(dec.is_done());
                return Ok((data, pos));
            }
            Decoded::NeedData => {
                if avail == input.len() {
                    return Ok((data, usize::MAX));
                }
                avail = (avail + step).min(input.len());
            }
        }
    }
}

#[test]
fn decoder_consumes_exactly_the_body() {
    let body = b"4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nA: b\r\n\r\nNEXT";
    for step in [1, 2, 3, 7, body.len()] {
        let (data, n) = decode_all(body, &Limits::default(), step).unwrap();
        assert_eq!(data, b"wikipedia");
        assert_eq!(n, body.len() - 4, "step {step}");
    }
    // Incomplete input is never an error and never ends.
    for cut in 0..body.len() - 4 {
        let (_, n) = decode_all(&body[..cut], &Limits::default(), 1).unwrap();
        assert_eq!(n, usize::MAX, "cut {cut}");
    }
}

#[test]
fn decoder_after_done_keeps_reporting_end() {
    let mut dec = ChunkedDecoder::default();
    let limits = Limits::default();
    let (d, n) = dec.decode(b"0\r\n\r\nrest", &limits).unwrap();
    assert!(matches!(d, Decoded::End(t) if t.is_empty()));
    assert_eq!(n, 5);
    let (d, n) = dec.decode(b"rest", &limits).unwrap();
    assert!(matches!(d, Decoded::End(_)));
    assert_eq!(n, 0);
}

#[test]
fn decoder_trailers_borrow_input() {
    let mut dec = ChunkedDecoder::new();
    let input = b"0\r\nA: 1\r\nB: 2\r\nA: 3\r\n\r\n";
    let (d, n) = dec.decode(input, &Limits::default()).unwrap();
    assert_eq!(n, input.len());
    let Decoded::End(t) = d else { panic!("{d:?}") };
    assert_eq!(t.len(), 3);
    assert_eq!(t.get("a"), Some(&b"1"[..]));
    assert_eq!(t.get_all("A").collect::<Vec<_>>(), vec![&b"1"[..], b"3"]);
    assert_eq!(t.get("c"), None);
}
