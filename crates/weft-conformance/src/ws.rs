//! WebSocket frames for the `send-ws:` step and the `expect-ws:` checks
//! (RFC 6455 section 5): building masked client frames from a short spec,
//! and reading the server's frames after a `101` response.

use crate::case::WsExpect;
use crate::escape::{escape_bytes, unescape};

/// The masking key of every frame `send-ws:` builds (any key is valid).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Builds a client frame from `OPCODE[+FLAG...] PAYLOAD`. OPCODE is `text`,
/// `binary`, `cont`, `close`, `ping`, `pong` or a number 0-15; the flags are
/// `nofin`, `rsv1`, `rsv2`, `rsv3`, `nomask`, `len16` and `len64` (the
/// extended length forms even for a short payload). PAYLOAD is escaped bytes
/// (`\xNN`), or `@N` for N bytes `a`.
pub fn frame_from_spec(spec: &[u8]) -> Result<Vec<u8>, String> {
    let (head, rest) = match spec.iter().position(|b| *b == b' ') {
        Some(sp) => (&spec[..sp], &spec[sp + 1..]),
        None => (spec, &b""[..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut parts = head.split('+');
    let opcode = match parts.next().unwrap_or("") {
        "cont" => 0,
        "text" => 1,
        "binary" => 2,
        "close" => 8,
        "ping" => 9,
        "pong" => 10,
        n => match n.parse::<u8>() {
            Ok(n) if n < 16 => n,
            _ => {
                return Err(format!(
                    "bad opcode {n:?} (text, binary, cont, close, ping, pong or 0-15)"
                ))
            }
        },
    };
    let (mut fin, mut rsv, mut mask, mut len_form) = (true, 0u8, true, 0u8);
    for flag in parts {
        match flag {
            "nofin" => fin = false,
            "rsv1" => rsv |= 0x40,
            "rsv2" => rsv |= 0x20,
            "rsv3" => rsv |= 0x10,
            "nomask" => mask = false,
            "len16" => len_form = 16,
            "len64" => len_form = 64,
            _ => return Err(format!("bad frame flag {flag:?}")),
        }
    }
    let payload = match rest.strip_prefix(b"@") {
        Some(n) => {
            let n: usize = String::from_utf8_lossy(n)
                .parse()
                .map_err(|_| "bad @N payload length".to_string())?;
            vec![b'a'; n]
        }
        None => unescape(rest).map_err(|(_, m)| m)?,
    };
    Ok(frame(fin, rsv, opcode, mask, len_form, &payload))
}

/// Encodes one frame.
pub fn frame(fin: bool, rsv: u8, opcode: u8, mask: bool, len_form: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | rsv | opcode];
    let m = if mask { 0x80 } else { 0 };
    let len = payload.len();
    if len_form == 64 || len > 0xffff {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    } else if len_form == 16 || len > 125 {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | len as u8);
    }
    if mask {
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// One frame sent by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

/// Parses the frames in `data`; a partial last frame is left out (and
/// reported by the second value).
pub fn parse_frames(data: &[u8]) -> (Vec<Frame>, bool) {
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &data[pos..];
        if rest.len() < 2 {
            return (frames, !rest.is_empty());
        }
        let (b0, b1) = (rest[0], rest[1]);
        let masked = b1 & 0x80 != 0;
        let (len, mut at) = match b1 & 0x7f {
            126 if rest.len() >= 4 => (u64::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 if rest.len() >= 10 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&rest[2..10]);
                (u64::from_be_bytes(b), 10)
            }
            126 | 127 => return (frames, true),
            n => (u64::from(n), 2),
        };
        let key = if masked {
            if rest.len() < at + 4 {
                return (frames, true);
            }
            let k = [rest[at], rest[at + 1], rest[at + 2], rest[at + 3]];
            at += 4;
            Some(k)
        } else {
            None
        };
        let Ok(len) = usize::try_from(len) else {
            return (frames, true);
        };
        if (rest.len() - at) < len {
            return (frames, true);
        }
        let mut payload = rest[at..at + len].to_vec();
        if let Some(k) = key {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= k[i % 4];
            }
        }
        frames.push(Frame {
            fin: b0 & 0x80 != 0,
            rsv: b0 & 0x70,
            opcode: b0 & 0x0f,
            masked,
            payload,
        });
        pos += at + len;
    }
}

/// Checks the server's frames (the bytes after the `101`) against the
/// expected sequence: each expectation is met by the next frame or message,
/// skipping pings. A masked server frame always fails (RFC 6455 5.1).
/// Returns failures as `(line, message)`.
pub fn check_frames(data: &[u8], expect: &[(WsExpect, usize)]) -> Vec<(usize, String)> {
    let (frames, _partial) = parse_frames(data);
    let mut fails = Vec::new();
    if let Some(f) = frames.iter().find(|f| f.masked) {
        let line = expect.first().map_or(0, |e| e.1);
        fails.push((
            line,
            format!("the server sent a masked frame (opcode {})", f.opcode),
        ));
    }
    let mut it = frames.iter().filter(|f| f.opcode != 9).peekable();
    for (want, line) in expect {
        let Some(first) = it.next() else {
            fails.push((
                *line,
                format!("expected {}, got no (more) frame", describe(want)),
            ));
            return fails;
        };
        // Reassemble a fragmented message.
        let mut payload = first.payload.clone();
        let mut fin = first.fin;
        while !fin && matches!(first.opcode, 1 | 2) {
            match it.peek() {
                Some(f) if f.opcode == 0 => {
                    payload.extend_from_slice(&f.payload);
                    fin = f.fin;
                    it.next();
                }
                _ => break,
            }
        }
        let ok = match want {
            WsExpect::Message { text, payload: p } => {
                first.opcode == if *text { 1 } else { 2 } && fin && payload == *p
            }
            WsExpect::Pong(p) => first.opcode == 10 && first.payload == *p,
            WsExpect::Close(codes) => {
                first.opcode == 8
                    && (codes.is_empty()
                        || (first.payload.len() >= 2
                            && codes.contains(&u16::from_be_bytes([
                                first.payload[0],
                                first.payload[1],
                            ]))))
            }
        };
        if !ok {
            fails.push((
                *line,
                format!(
                    "expected {}, got opcode {} fin {} payload \"{}\"",
                    describe(want),
                    first.opcode,
                    fin,
                    escape_bytes(&payload[..payload.len().min(80)])
                ),
            ));
            return fails;
        }
    }
    fails
}

fn describe(w: &WsExpect) -> String {
    match w {
        WsExpect::Message { text, payload } => format!(
            "a {} message \"{}\"",
            if *text { "text" } else { "binary" },
            escape_bytes(&payload[..payload.len().min(80)])
        ),
        WsExpect::Pong(p) => format!("a pong \"{}\"", escape_bytes(p)),
        WsExpect::Close(c) if c.is_empty() => "a close frame".into(),
        WsExpect::Close(c) => format!("a close frame with code {c:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let f = frame_from_spec(b"text+nofin hi").unwrap();
        assert_eq!(f[0], 0x01);
        assert_eq!(f[1], 0x82);
        let (frames, partial) = parse_frames(&f);
        assert!(!partial);
        assert_eq!(frames[0].payload, b"hi");
        assert!(frames[0].masked && !frames[0].fin);
        let big = frame_from_spec(b"binary @300").unwrap();
        assert_eq!(big[1], 0x80 | 126);
        assert_eq!(parse_frames(&big).0[0].payload.len(), 300);
        assert_eq!(frame_from_spec(b"ping+len64 x").unwrap()[1], 0x80 | 127);
        assert!(frame_from_spec(b"16 x").is_err());
        assert!(frame_from_spec(b"text+bogus x").is_err());
    }

    #[test]
    fn checks_messages_and_close() {
        let mut server = frame(false, 0, 1, false, 0, b"he");
        server.extend(frame(true, 0, 9, false, 0, b""));
        server.extend(frame(true, 0, 0, false, 0, b"llo"));
        server.extend(frame(true, 0, 8, false, 0, &[0x03, 0xea]));
        let ok = [
            (
                WsExpect::Message {
                    text: true,
                    payload: b"hello".to_vec(),
                },
                1,
            ),
            (WsExpect::Close(vec![1002]), 2),
        ];
        assert!(check_frames(&server, &ok).is_empty());
        let bad = [(WsExpect::Close(vec![1000]), 3)];
        assert_eq!(check_frames(&server, &bad)[0].0, 3);
        let masked = frame(true, 0, 1, true, 0, b"x");
        assert!(!check_frames(&masked, &[]).is_empty());
    }
}
