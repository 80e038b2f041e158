//! The [`Host`] of `wasm32-wasip2`: the `wasi:http` types of one incoming request and its
//! response-outparam. Every call here is non-blocking except [`Host::wait`], which polls the
//! streams' and the clock's pollables (the streams may not be dropped while a pollable of
//! theirs lives, so each wait makes and drops its own).

use std::io::Write;
use std::time::{Instant, SystemTime};

use wasi::clocks::monotonic_clock;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
    ResponseOutparam,
};
use wasi::io::poll;
use wasi::io::streams::{InputStream, OutputStream, StreamError};
use weft_app::App;
use weft_core::{HttpDate, Now};

use crate::driver::{serve, BodyRead, Host};
use crate::request::RequestParts;
use crate::sink::HostHead;

/// Serves one `wasi:http` request with the demo application, or answers it with the reason
/// the application could not be configured.
pub fn handle_demo(
    app: &Result<weft_app::demo::DemoApp, crate::Misconfigured>,
    request: IncomingRequest,
    outparam: ResponseOutparam,
) {
    match app {
        Ok(app) => handle(app, request, outparam),
        Err(misconfigured) => handle(misconfigured, request, outparam),
    }
}

/// Serves one `wasi:http` request with `app`.
pub fn handle<A: App>(app: &A, request: IncomingRequest, outparam: ResponseOutparam) {
    let mut parts = RequestParts {
        method: method_name(&request.method()),
        path_with_query: request.path_with_query(),
        authority: request.authority(),
        fields: request.headers().entries(),
    };
    let mut host = WasiHost::new(request, outparam);
    // A GET or HEAD body has no meaning (RFC 9110 9.3.1, 9.3.2) and no route reads one: for
    // them the bridge does not wait to learn whether one follows.
    let may_have_body = !matches!(parts.method.as_str(), "GET" | "HEAD");
    if may_have_body && !parts.has_content_length() && host.body_follows() {
        parts.mark_streamed_body();
    }
    serve(app, &mut host, &parts);
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other.as_str(),
    }
    .to_string()
}

/// One request's resources. Field order matters for drop order: a stream goes before the
/// body it belongs to.
struct WasiHost {
    input: Option<InputStream>,
    incoming: Option<IncomingBody>,
    output: Option<OutputStream>,
    outgoing: Option<OutgoingBody>,
    outparam: Option<ResponseOutparam>,
    /// Kept to the end: dropping the request first would drop its body.
    _request: IncomingRequest,
    /// The date of the exchange's start: the application uses it only to keep
    /// `Last-Modified` from being later than the response (the host writes `Date`), so one
    /// wall-clock read per exchange is enough.
    date: HttpDate,
    /// Body bytes read before the exchange started ([`WasiHost::body_follows`]).
    early: Option<Vec<u8>>,
}

impl WasiHost {
    fn new(request: IncomingRequest, outparam: ResponseOutparam) -> WasiHost {
        let incoming = request.consume().ok();
        let input = incoming.as_ref().and_then(|b| b.stream().ok());
        WasiHost {
            input,
            incoming,
            output: None,
            outgoing: None,
            outparam: Some(outparam),
            _request: request,
            date: HttpDate::from_system_time(SystemTime::now()),
            early: None,
        }
    }

    /// Whether the request has a body, for a request without `Content-Length` (the host
    /// removed `Transfer-Encoding`): waits until the body stream has bytes or has ended, and
    /// keeps what was read for the application.
    fn body_follows(&mut self) -> bool {
        let Some(input) = self.input.as_ref() else {
            return false;
        };
        input.subscribe().block();
        match self.read_body(crate::driver::BODY_READ) {
            BodyRead::Data(data) => {
                self.early = Some(data);
                true
            }
            BodyRead::End | BodyRead::Failed => false,
        }
    }

    /// Refuses the exchange before a head went out (the host answers it as a failure).
    fn fail(&mut self, why: &str) {
        if let Some(outparam) = self.outparam.take() {
            ResponseOutparam::set(outparam, Err(ErrorCode::InternalError(Some(why.into()))));
        }
    }
}

impl Host for WasiHost {
    fn now(&mut self) -> Now {
        Now {
            instant: Instant::now(),
            date: self.date,
        }
    }

    fn read_body(&mut self, max: usize) -> BodyRead {
        if let Some(early) = self.early.take() {
            return BodyRead::Data(early);
        }
        let Some(input) = self.input.as_ref() else {
            return BodyRead::End;
        };
        match input.read(max as u64) {
            Ok(data) => BodyRead::Data(data),
            Err(StreamError::Closed) => {
                self.input = None;
                if let Some(body) = self.incoming.take() {
                    // Trailers are not passed on; finishing only releases the body.
                    drop(IncomingBody::finish(body));
                }
                BodyRead::End
            }
            Err(StreamError::LastOperationFailed(_)) => {
                self.input = None;
                BodyRead::Failed
            }
        }
    }

    fn send_head(&mut self, head: HostHead) -> bool {
        let Some(outparam) = self.outparam.take() else {
            return false;
        };
        let fields = match Fields::from_list(&head.fields) {
            Ok(fields) => fields,
            Err(e) => {
                let why = format!("the host refused a response field: {e:?}");
                ResponseOutparam::set(outparam, Err(ErrorCode::InternalError(Some(why))));
                return false;
            }
        };
        let response = OutgoingResponse::new(fields);
        if response.set_status_code(head.status).is_err() {
            let why = format!("the host refused the status {}", head.status);
            ResponseOutparam::set(outparam, Err(ErrorCode::InternalError(Some(why))));
            return false;
        }
        let Ok(body) = response.body() else {
            ResponseOutparam::set(outparam, Err(ErrorCode::InternalError(None)));
            return false;
        };
        let Ok(output) = body.write() else {
            ResponseOutparam::set(outparam, Err(ErrorCode::InternalError(None)));
            return false;
        };
        ResponseOutparam::set(outparam, Ok(response));
        self.output = Some(output);
        self.outgoing = Some(body);
        true
    }

    fn write_body(&mut self, data: &[u8]) -> Option<usize> {
        let output = self.output.as_ref()?;
        let room = match output.check_write() {
            Ok(room) => room,
            Err(_) => {
                self.output = None;
                return None;
            }
        };
        let n = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if n == 0 {
            return Some(0);
        }
        match output.write(data.get(..n).unwrap_or(&[])) {
            Ok(()) => Some(n),
            Err(_) => {
                self.output = None;
                None
            }
        }
    }

    fn finish(&mut self, complete: bool) {
        if self.outparam.is_some() {
            self.fail("the response could not be completed");
            return;
        }
        // Written bytes are already on their way (a write hands them to the host's body
        // channel, in order): the stream goes, then the body is finished behind them.
        drop(self.output.take());
        if let Some(body) = self.outgoing.take() {
            if complete {
                let _ = OutgoingBody::finish(body, None);
            }
            // Dropped unfinished: the host ends the response as broken, and the client
            // sees an incomplete body.
        }
    }

    fn wait(&mut self, writable: bool, readable: bool, until: Option<Instant>) {
        let mut pollables = Vec::with_capacity(3);
        if writable {
            if let Some(output) = self.output.as_ref() {
                pollables.push(output.subscribe());
            }
        }
        if readable {
            if let Some(input) = self.input.as_ref() {
                pollables.push(input.subscribe());
            }
        }
        if let Some(until) = until {
            let wait = until.saturating_duration_since(Instant::now());
            let nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
            pollables.push(monotonic_clock::subscribe_duration(nanos));
        }
        if pollables.is_empty() {
            return;
        }
        let list: Vec<&poll::Pollable> = pollables.iter().collect();
        let _ = poll::poll(&list);
    }

    fn log(&mut self, lines: &[u8]) {
        let _ = std::io::stderr().write_all(lines);
    }
}
