//! The sending family of [`Connection`]: response heads, body framing and the end of a
//! response.

use crate::clock::Instant;

use super::{Connection, Encoder, WriteState};
use crate::date::Now;
use crate::error::SendError;
use crate::head::{connection_has_close, Framing, Version};
use crate::response::{
    check_response_field, push_decimal, push_header, push_hex, push_status_line, valid_header,
};
use crate::{BodyKind, Response};

impl Connection {
    /// Starts the response to the current request. `Date` and the framing headers are added
    /// here; status and headers are validated first and nothing is written if they are not
    /// valid.
    pub fn send_response(&mut self, response: &Response<'_>, now: Now) -> Result<(), SendError> {
        let (encoder, close) = self.check_response(response)?;
        if close {
            self.keep_alive = false;
        }
        self.write_response_head(response, close, now);
        if response.status == 101 {
            self.upgrade();
        } else {
            self.start_response_body(encoder);
        }
        Ok(())
    }

    /// Validates a response for the current request: its body's encoder, and whether the
    /// connection closes after it.
    fn check_response(&self, response: &Response<'_>) -> Result<(Encoder, bool), SendError> {
        match self.write {
            WriteState::Ready => {}
            WriteState::Idle | WriteState::Body(_) | WriteState::Done => {
                return Err(if self.error.is_some() {
                    SendError::Closed
                } else {
                    SendError::NoRequestToAnswer
                })
            }
        }
        let status = response.status;
        let switching = status == 101;
        if !(100..=599).contains(&status) || (100..200).contains(&status) && !switching {
            return Err(SendError::InvalidStatus);
        }
        if switching && (!self.upgrade_requested || self.body_framing != Framing::None) {
            return Err(SendError::InvalidStatus);
        }
        let no_body_status = switching || status == 204;
        if no_body_status && response.body != BodyKind::Length(0) {
            return Err(SendError::BodyNotAllowed);
        }
        // Answered before the client was told to send its body: the body will not come, and
        // the connection closes after this response (RFC 9110 section 10.1.1 asks to say so).
        let mut close = !self.keep_alive || self.continue_pending;
        for &(name, value) in response.headers {
            check_response_field(name, value)?;
            if !switching && name.eq_ignore_ascii_case("connection") && connection_has_close(value)
            {
                close = true;
            }
        }

        let encoder = if self.head_request || status == 304 {
            Encoder::Discard
        } else {
            match response.body {
                BodyKind::Length(n) => Encoder::Length(n),
                BodyKind::Stream if self.version == Version::Http11 => Encoder::Chunked,
                BodyKind::Stream => {
                    close = true;
                    Encoder::UntilClose
                }
            }
        };
        if response.body == BodyKind::Stream && self.version == Version::Http10 {
            close = true;
        }
        Ok((encoder, close))
    }

    /// Queues a checked response head: status line, `Date`, the application's fields and the
    /// framing and connection fields.
    fn write_response_head(&mut self, response: &Response<'_>, close: bool, now: Now) {
        let status = response.status;
        let switching = status == 101;
        let no_body_status = switching || status == 204;
        self.output_starts(now.instant);
        push_status_line(&mut self.out, status);
        push_header(&mut self.out, "Date", now.date.as_bytes());
        for &(name, value) in response.headers {
            if !switching && name.eq_ignore_ascii_case("connection") {
                continue;
            }
            push_header(&mut self.out, name, value);
        }
        if !no_body_status {
            match response.body {
                BodyKind::Length(0) | BodyKind::Stream if status == 304 => {}
                BodyKind::Length(n) => {
                    self.out.extend_from_slice(b"Content-Length: ");
                    push_decimal(&mut self.out, n);
                    self.out.extend_from_slice(b"\r\n");
                }
                BodyKind::Stream if self.version == Version::Http11 => {
                    self.out
                        .extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                }
                BodyKind::Stream => {}
            }
        }
        if !switching {
            if close {
                self.out.extend_from_slice(b"Connection: close\r\n");
            } else if self.version == Version::Http10 {
                self.out.extend_from_slice(b"Connection: keep-alive\r\n");
            }
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// Appends response body bytes (framed as the head declared).
    pub fn send_data(&mut self, data: &[u8], now: Instant) -> Result<(), SendError> {
        let WriteState::Body(encoder) = &mut self.write else {
            return Err(SendError::NotSendingBody);
        };
        let was_empty = self.out_pos == self.out.len();
        match encoder {
            Encoder::Discard => return Ok(()),
            Encoder::Length(remaining) => {
                if data.len() as u64 > *remaining {
                    return Err(SendError::BodyTooLong);
                }
                *remaining -= data.len() as u64;
                self.out.extend_from_slice(data);
            }
            Encoder::Chunked => {
                if data.is_empty() {
                    return Ok(());
                }
                push_hex(&mut self.out, data.len() as u64);
                self.out.extend_from_slice(b"\r\n");
                self.out.extend_from_slice(data);
                self.out.extend_from_slice(b"\r\n");
            }
            Encoder::UntilClose => self.out.extend_from_slice(data),
        }
        if was_empty && !data.is_empty() {
            self.restart_send_timer(now);
        }
        Ok(())
    }

    /// Ends the response body, with trailer fields for a chunked body (ignored otherwise).
    pub fn send_end(&mut self, trailers: &[(&str, &[u8])], now: Instant) -> Result<(), SendError> {
        let WriteState::Body(encoder) = self.write else {
            return Err(SendError::NotSendingBody);
        };
        if trailers.iter().any(|&(n, v)| !valid_header(n, v)) {
            return Err(SendError::InvalidHeader);
        }
        let was_empty = self.out_pos == self.out.len();
        let mut result = Ok(());
        match encoder {
            Encoder::Length(remaining) if remaining > 0 => {
                self.keep_alive = false;
                result = Err(SendError::BodyTooShort);
            }
            Encoder::Chunked => {
                self.out.extend_from_slice(b"0\r\n");
                for &(name, value) in trailers {
                    push_header(&mut self.out, name, value);
                }
                self.out.extend_from_slice(b"\r\n");
            }
            Encoder::UntilClose => self.keep_alive = false,
            Encoder::Length(_) | Encoder::Discard => {}
        }
        if was_empty && self.out_pos != self.out.len() {
            self.restart_send_timer(now);
        }
        self.finish_exchange(now);
        result
    }

    /// Sends a whole response with a body held in memory: head, body and end at once.
    pub fn send_full(
        &mut self,
        status: u16,
        headers: &[(&str, &[u8])],
        body: &[u8],
        now: Now,
    ) -> Result<(), SendError> {
        self.send_response(
            &Response {
                status,
                headers,
                body: BodyKind::Length(body.len() as u64),
            },
            now,
        )?;
        if status == 101 {
            // The head is the whole response: the connection now belongs to the new protocol.
            return Ok(());
        }
        if status != 304 && status != 204 {
            self.send_data(body, now.instant)?;
        }
        self.send_end(&[], now.instant)
    }
}
