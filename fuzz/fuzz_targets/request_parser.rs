//! Fuzzes the request-head parser and a whole `Connection`.
//!
//! The first input byte picks where the rest is split into two reads. Checked: nothing panics;
//! errors are typed and sticky; the connection always ends once the peer has closed; and the
//! outcome (output bytes, error, closed) is the same as when the input arrives in one read.
#![no_main]

use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use weft_core::{
    parse_request_head, Connection, Error, Event, Framing, HttpDate, Limits, Now, SendError,
};

/// Small limits, so that the fuzzer reaches them.
fn limits() -> Limits {
    Limits {
        max_request_line: 64,
        max_head: 256,
        max_headers: 8,
        max_body: 256,
        max_chunk_line: 32,
        max_chunk_ext_total: 64,
        max_trailers: 64,
        max_drain: 64,
        ..Limits::default()
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    out: Vec<u8>,
    error: Option<Error>,
    closed: bool,
    upgraded: bool,
}

/// Drives a connection as a driver does: `next_event` until `NeedData`/`Paused`, consumed
/// bytes removed, every request answered at its end (101 when an upgrade is asked for).
fn pump(conn: &mut Connection, buf: &mut Vec<u8>, now: Now, upgraded: &mut bool) {
    for _ in 0..100_000 {
        let (upgrade, end, stop, n) = match conn.next_event(buf, now) {
            Err(err) => {
                assert!(conn.is_closed());
                assert_eq!(conn.error(), Some(err));
                assert_eq!(
                    conn.next_event(b"GET / HTTP/1.1\r\n\r\n", now).err(),
                    Some(err)
                );
                return;
            }
            Ok((event, n)) => {
                assert!(n <= buf.len());
                match event {
                    Event::Request(head) => {
                        let _ = (head.path(), head.query(), head.headers.iter().count());
                        let upgrade = head.upgrade.is_some() && head.framing == Framing::None;
                        (upgrade, false, false, n)
                    }
                    Event::Data(data) => {
                        assert!(!data.is_empty());
                        (false, false, false, n)
                    }
                    Event::End(trailers) => {
                        let _ = trailers.iter().count();
                        (false, true, false, n)
                    }
                    Event::Upgraded => {
                        *upgraded = true;
                        (false, false, true, n)
                    }
                    Event::NeedData | Event::Paused | Event::Closed => (false, false, true, n),
                }
            }
        };
        buf.drain(..n);
        if upgrade {
            let headers: [(&str, &[u8]); 1] = [("Upgrade", b"x")];
            assert_eq!(conn.send_full(101, &headers, b"", now), Ok(()));
        } else if end && conn.awaits_response() {
            let result = conn.send_full(200, &[("X", b"y")], b"ok", now);
            assert!(matches!(result, Ok(()) | Err(SendError::NoRequestToAnswer)));
        }
        if stop {
            return;
        }
    }
    panic!("next_event did not settle");
}

fn run(parts: &[&[u8]]) -> Outcome {
    let start = Instant::now();
    let now = Now {
        instant: start,
        date: HttpDate::from_system_time(SystemTime::UNIX_EPOCH),
    };
    let mut conn = Connection::new(limits(), start);
    let mut buf = Vec::new();
    let mut upgraded = false;
    for part in parts {
        buf.extend_from_slice(part);
        pump(&mut conn, &mut buf, now, &mut upgraded);
    }
    conn.receive_eof();
    pump(&mut conn, &mut buf, now, &mut upgraded);
    assert!(
        conn.is_closed() || upgraded,
        "the connection ends after EOF"
    );
    let out = conn.transmit().to_vec();
    let outcome = Outcome {
        out,
        error: conn.error(),
        closed: conn.is_closed(),
        upgraded,
    };
    // Deadlines never panic, and none is left in the past.
    let later = Now {
        instant: start + Duration::from_secs(3600),
        ..now
    };
    conn.handle_timeout(later);
    assert!(conn.poll_timeout().is_none_or(|t| t > later.instant));
    outcome
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };

    // The parser alone.
    let limits = limits();
    if let Ok(Some((head, n))) = parse_request_head(input, &limits) {
        assert!(n > 0 && n <= input.len());
        // A complete head is complete in any longer input, with the same length.
        let mut longer = input[..n].to_vec();
        longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let again = parse_request_head(&longer, &limits);
        assert!(matches!(again, Ok(Some((_, m))) if m == n));
        let _ = (head.method.as_str(), head.target, head.host);
    }

    // A whole connection: split in two reads, and in one.
    let split = usize::from(first) * input.len() / 255;
    let (a, b) = input.split_at(split);
    assert_eq!(run(&[a, b]), run(&[input]));
});
