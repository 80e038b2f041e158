//! `--allow-dotfiles` through the real binary on the conformance fixture site: without it a path
//! with a name starting with `.` is 404 (`/.well-known/` excepted), with it such files are
//! served and listed.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{fixture_site, Server};

fn start(extra: &[&str]) -> Server {
    let site = fixture_site();
    let mut args = vec![site.to_str().expect("a UTF-8 path"), "--workers", "1"];
    args.extend_from_slice(extra);
    support::start(&args)
}

/// GET `path` on a connection of its own: the status and the body (the server closes after
/// answering `Connection: close`; file bodies have a `Content-Length`, never chunked).
fn get(server: &Server, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole head");
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, body.to_string())
}

const DOT_PATHS: [(&str, &str); 5] = [
    ("/.hidden.txt", "hidden at the root\n"),
    ("/%2ehidden.txt", "hidden at the root\n"),
    ("/sub/.hidden", "hidden in sub\n"),
    (
        "/.private/config",
        "[core]\n\tsecret = a stand-in for .git/config\n",
    ),
    ("/.well-known/.secret", "hidden below .well-known\n"),
];

#[test]
fn dot_files_are_404_by_default() {
    let server = start(&[]);
    for (path, _) in DOT_PATHS {
        assert_eq!(get(&server, path), (404, "not found\n".into()), "{path}");
    }
    assert_eq!(get(&server, "/.private/").0, 404);
    assert_eq!(
        get(&server, "/.well-known/example.txt"),
        (200, "well-known example\n".into())
    );
}

#[test]
fn allow_dotfiles_serves_and_lists_them() {
    let server = start(&["--allow-dotfiles"]);
    for (path, body) in DOT_PATHS {
        assert_eq!(get(&server, path), (200, body.into()), "{path}");
    }
    assert_eq!(
        get(&server, "/.private/"),
        (200, "<p>a hidden directory index</p>\n".into())
    );
    let (status, page) = get(&server, "/listing/");
    assert_eq!(status, 200);
    assert!(page.contains("href=\".hidden\""), "{page}");
}
