//! The command line, identical on every target.

use std::net::SocketAddr;
use std::path::PathBuf;

use weft_app::demo::DemoConfig;
use weft_app::demo_options::{self, number, seconds};
use weft_core::Limits;

pub const USAGE: &str = "\
usage: weft serve [ROOT] [options]

Serves the demo endpoints (/hello, POST /echo, /sheep?n=N&ms=M, /api/users/:id, /api/...),
the WebSocket echo (/ws/echo) and chat room (/ws/chat, page /chat.html), and the files under ROOT (an embedded demo site when ROOT is omitted). Every response the
application sends carries Server: weft, X-Content-Type-Options: nosniff and
X-Frame-Options: SAMEORIGIN.

options:
  --listen ADDR            address to listen on (default 127.0.0.1:8080; port 0 picks one)
  --workers N              event-loop threads, each with its own listener (default: cores)
  --max-body BYTES         largest request body (default 1073741824)
  --max-head BYTES         largest request head (default 16384)
  --max-headers N          most header fields (default 100)
  --max-request-line BYTES longest request line (default 8192)
  --header-timeout SECS    time to receive a request head (default 10)
  --idle-timeout SECS      keep-alive idle time (default 30)
  --body-timeout SECS      longest pause inside a request body (default 30)
  --send-timeout SECS      longest pause while the client does not read (default 30); then
                           the response or WebSocket session is cut off and the connection
                           closed (the client has an exact prefix)
  --max-connections N      connections per worker (default 16384); newcomers past it are
                           answered 503 and closed
  --memory-budget BYTES    bytes all WebSocket sessions together may buffer (messages being
                           received, frames being sent; default 134217728); a message that
                           does not fit closes its session with 1013 (Try Again Later)
  --cors-origin ORIGIN     allow cross-origin reads from ORIGIN (scheme://host[:port], null,
                           or * for any); repeat for several; default: no CORS headers
  --no-listing             no directory listing pages (a directory without index.html is 403)
  --allow-dotfiles         serve and list names starting with . (default: a path with such a
                           name is 404 and listings leave them out; /.well-known/ is served)
  --cache-control EXT=VALUE
                           Cache-Control of files named *.EXT (EXT: letters and digits; * sets
                           the default, which is no-cache); repeatable
  --etag-inode             mix the inode number into ETags (unix; default: size and mtime only,
                           the same on every target and every copy of the files)
  --file-cache BYTES       memory for small unchanged files per worker (unix; default 8388608;
                           0: off)
  --ws-max-message BYTES   largest WebSocket message /ws/echo takes (default 16777216; the
                           chat takes 65536)
  --ws-ping-interval SECS  WebSocket idle time before a ping (default 30); an unanswered
                           ping closes the session after --ws-ping-timeout (default 10)
  --ws-ping-timeout SECS
  --ws-no-deflate          refuse permessage-deflate
  --ws-origin ORIGIN       only pages from ORIGIN (scheme://host[:port]) may open the WebSocket
                           endpoints (403 otherwise; clients that send no Origin are let in);
                           repeatable; default: any origin
  --compress-level N       gzip/deflate level for negotiated responses: 1 (fastest) to 9
                           (best); 0 turns compression off (default 6)
  --compress-min-size BYTES
                           bodies shorter than this are not compressed (default 1024)
  --compress-cache BYTES   memory for compressed file variants per worker (default 16777216;
                           0: compress on every request)
  --quiet                  no access log
  -h, --help               this text
  -V, --version            the version
";

/// Everything `weft serve` is told.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub workers: usize,
    pub limits: Limits,
    /// `--max-connections`: connections per worker.
    pub max_connections: usize,
    /// `--memory-budget`: bytes all WebSocket sessions together may buffer.
    pub memory_budget: usize,
    /// The application's options: ROOT and the flags of [`weft_app::demo_options`].
    pub app: DemoConfig,
}

impl ServeConfig {
    /// The configuration of the demo application: the application's options, with the
    /// server's send timeout on its WebSocket sessions (a session's output waits for its
    /// peer as long as a response's may).
    pub fn demo(&self) -> DemoConfig {
        let mut demo = self.app.clone();
        demo.ws_echo.config.send_timeout = self.limits.send_timeout;
        demo.ws_chat.config.send_timeout = self.limits.send_timeout;
        demo
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Serve(Box<ServeConfig>),
    Help,
    Version,
}

fn value<'a>(flag: &str, it: &mut impl Iterator<Item = &'a String>) -> Result<&'a String, String> {
    it.next().ok_or_else(|| format!("{flag} needs a value"))
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String], default_workers: usize) -> Result<Command, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("serve") => {}
        Some("-h" | "--help" | "help") | None => return Ok(Command::Help),
        Some("-V" | "--version") => return Ok(Command::Version),
        Some(other) => return Err(format!("unknown command: {other}")),
    }
    let mut config = ServeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        workers: default_workers.max(1),
        limits: Limits::default(),
        max_connections: crate::event_loop::DEFAULT_MAX_CONNECTIONS,
        memory_budget: crate::budget::DEFAULT_MEMORY_BUDGET,
        app: DemoConfig::default(),
    };
    while let Some(arg) = it.next() {
        let flag = arg.as_str();
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--listen" => {
                let v = value(flag, &mut it)?;
                config.listen = v
                    .parse()
                    .map_err(|_| format!("--listen: not an address (IP:PORT): {v}"))?;
            }
            "--workers" => {
                config.workers = number(flag, value(flag, &mut it)?)?;
                if config.workers == 0 || config.workers > 1024 {
                    return Err("--workers: must be between 1 and 1024".into());
                }
            }
            "--max-body" => config.limits.max_body = number(flag, value(flag, &mut it)?)?,
            "--max-head" => config.limits.max_head = number(flag, value(flag, &mut it)?)?,
            "--max-headers" => config.limits.max_headers = number(flag, value(flag, &mut it)?)?,
            "--max-request-line" => {
                config.limits.max_request_line = number(flag, value(flag, &mut it)?)?
            }
            "--header-timeout" => {
                config.limits.header_timeout = seconds(flag, value(flag, &mut it)?)?
            }
            "--idle-timeout" => config.limits.idle_timeout = seconds(flag, value(flag, &mut it)?)?,
            "--body-timeout" => config.limits.body_timeout = seconds(flag, value(flag, &mut it)?)?,
            "--send-timeout" => config.limits.send_timeout = seconds(flag, value(flag, &mut it)?)?,
            "--max-connections" => {
                config.max_connections = number(flag, value(flag, &mut it)?)?;
                if config.max_connections == 0 {
                    return Err("--max-connections: must be at least 1".into());
                }
            }
            "--memory-budget" => config.memory_budget = number(flag, value(flag, &mut it)?)?,
            _ => match demo_options::find(flag) {
                Some(option) => {
                    let v = match option.takes_value {
                        true => value(flag, &mut it)?.as_str(),
                        false => "",
                    };
                    demo_options::apply(&mut config.app, flag, v)?;
                }
                None if flag.starts_with('-') => return Err(format!("unknown option: {flag}")),
                None if config.app.root.is_none() => config.app.root = Some(PathBuf::from(flag)),
                None => return Err(format!("unexpected argument: {flag}")),
            },
        }
    }
    Ok(Command::Serve(Box::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_serve() {
        let Ok(Command::Serve(c)) = parse(
            &args("serve site --listen 127.0.0.1:0 --workers 2 --quiet --cors-origin http://a.example --cors-origin *"),
            4,
        ) else {
            panic!("not serve");
        };
        assert_eq!(c.app.root, Some(PathBuf::from("site")));
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.workers, 2);
        assert!(!c.app.access_log);
        assert_eq!(c.app.cors_origins, ["http://a.example", "*"]);
        assert!(c.app.files.listing);
        assert!(!c.app.files.allow_dotfiles);
        assert_eq!(c.app.files.cache_control, "no-cache");
    }

    #[test]
    fn parses_file_options() {
        let argv: Vec<String> = [
            "serve",
            "--no-listing",
            "--allow-dotfiles",
            "--etag-inode",
            "--file-cache",
            "0",
            "--cache-control",
            "*=public, max-age=60",
            "--cache-control",
            ".WOFF2=public, max-age=31536000, immutable",
            "--cache-control",
            "html=no-store",
            "--cache-control",
            "html=no-cache",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let Ok(Command::Serve(c)) = parse(&argv, 1) else {
            panic!("not serve");
        };
        assert!(!c.app.files.listing);
        assert!(c.app.files.allow_dotfiles);
        assert!(c.app.files.etag_inode);
        assert_eq!(c.app.files.memory_cache, 0);
        assert_eq!(c.app.files.cache_control, "public, max-age=60");
        assert_eq!(
            c.app.files.cache_control_by_ext,
            [
                (
                    "woff2".to_string(),
                    "public, max-age=31536000, immutable".to_string()
                ),
                ("html".to_string(), "no-cache".to_string())
            ]
        );
        assert!(parse(&args("serve --cache-control max-age=60"), 1).is_err());
        assert!(parse(&args("serve --cache-control nothing"), 1).is_err());
        assert!(parse(&args("serve --cache-control html="), 1).is_err());
        assert!(parse(&args("serve --cache-control"), 1).is_err());
    }

    #[test]
    fn parses_websocket_options() {
        let Ok(Command::Serve(c)) = parse(
            &args("serve --ws-max-message 100 --ws-ping-interval 3 --ws-ping-timeout 2 --ws-no-deflate --ws-origin http://a.example"),
            1,
        ) else {
            panic!("not serve");
        };
        let demo = c.demo();
        assert_eq!(demo.ws_echo.config.max_message, 100);
        assert_eq!(
            demo.ws_chat.config.max_message,
            weft_app::demo::CHAT_MAX_MESSAGE
        );
        assert_eq!(
            demo.ws_chat.config.ping_interval,
            Some(Duration::from_secs(3))
        );
        assert_eq!(demo.ws_echo.config.ping_timeout, Duration::from_secs(2));
        assert!(!demo.ws_echo.deflate && !demo.ws_chat.deflate);
        let check = demo.ws_chat.origin_check.expect("an origin check");
        assert!(check(Some(b"http://a.example")));
        assert!(check(Some(b"HTTP://A.EXAMPLE")));
        assert!(!check(Some(b"http://b.example")));
        assert!(check(None));
        let Ok(Command::Serve(c)) = parse(&args("serve"), 1) else {
            panic!("not serve");
        };
        assert!(c.demo().ws_echo.origin_check.is_none());
        assert!(parse(&args("serve --ws-origin *"), 1).is_err());
        assert!(parse(&args("serve --ws-origin not-an-origin"), 1).is_err());
        assert!(parse(&args("serve --ws-max-message 0"), 1).is_err());
    }

    #[test]
    fn parses_compression_options() {
        let Ok(Command::Serve(c)) = parse(&args("serve"), 1) else {
            panic!("not serve");
        };
        assert_eq!(c.app.files.compress, weft_app::CompressOptions::default());
        assert_eq!(c.app.files.compress.level, 6);
        let Ok(Command::Serve(c)) = parse(
            &args("serve --compress-level 0 --compress-min-size 10 --compress-cache 0"),
            1,
        ) else {
            panic!("not serve");
        };
        assert_eq!(c.app.files.compress.level, 0);
        assert_eq!(c.app.files.compress.min_size, 10);
        assert_eq!(c.app.files.compress.cache_bytes, 0);
        assert!(parse(&args("serve --compress-level 10"), 1).is_err());
        assert!(parse(&args("serve --compress-level x"), 1).is_err());
        assert!(parse(&args("serve --compress-min-size"), 1).is_err());
        assert!(parse(&args("serve --compress-cache -1"), 1).is_err());
    }

    #[test]
    fn rejects_nonsense() {
        assert!(parse(&args("serve --workers 0"), 1).is_err());
        assert!(parse(&args("serve --listen nowhere"), 1).is_err());
        assert!(parse(&args("serve a b"), 1).is_err());
        assert!(parse(&args("serve --bogus"), 1).is_err());
        assert!(parse(&args("serve --cors-origin"), 1).is_err());
        assert!(parse(&args("serve --cors-origin example.com"), 1).is_err());
        assert!(parse(&args("serve --cors-origin http://a/b"), 1).is_err());
        assert!(parse(&args("frobnicate"), 1).is_err());
    }
}
