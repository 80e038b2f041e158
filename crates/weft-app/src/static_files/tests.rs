//! The file service fed whole requests through a real `Connection`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use crate::compressor::variant_tag;
use crate::deflate_encoder::tests::decode;
use crate::deflate_encoder::{compress_all, Coding};
use crate::testing::{run_with, Handler, Options, Response};

/// Mon, 01 Jan 2024 00:00:00 GMT, plus 5 ns.
const MTIME: u64 = 1_704_067_200;

/// A fresh directory with a few files, all modified at MTIME + 5 ns.
/// A temporary site, removed when dropped.
struct Site(PathBuf);

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for Site {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn site() -> Site {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "weft-static-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::create_dir_all(dir.join("empty-dir")).unwrap();
    std::fs::create_dir_all(dir.join("list/inner")).unwrap();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for (name, bytes) in [
        ("hello.txt", &b"hello world\n"[..]),
        ("index.html", b"<p>root</p>\n"),
        ("sub/index.html", b"<p>sub</p>\n"),
        ("digits.txt", b"0123456789"),
        ("empty.txt", b""),
        ("big.bin", &big),
        ("list/a&b<c>.txt", b"escaped\n"),
        ("list/.hidden", b"secret\n"),
    ] {
        std::fs::write(dir.join(name), bytes).unwrap();
        let f = File::options().write(true).open(dir.join(name)).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::new(MTIME, 5))
            .unwrap();
    }
    Site(dir)
}

type Answer = Response;

/// Sends one request (a whole head) to the service through the shared driver, the peer
/// reading at most 7000 bytes per round (a small transmit window).
fn request(files: &StaticFiles, req: &str) -> Answer {
    let app =
        Handler(|head: &RequestHead<'_>, out: &mut Output<'_>| files.serve(head, head.path(), out));
    let options = Options {
        drain: 7000,
        ..Options::default()
    };
    let run = run_with(&app, req.as_bytes(), options);
    // The producer never overfills the window by more than one chunk.
    assert!(run.max_queued <= crate::WRITE_HIGH_WATER + FILE_CHUNK);
    let answer = run.response();
    assert!(answer.complete, "the whole body went out");
    answer
}

fn get(files: &StaticFiles, path: &str, fields: &[&str]) -> Answer {
    method(files, "GET", path, fields)
}

fn method(files: &StaticFiles, m: &str, path: &str, fields: &[&str]) -> Answer {
    let mut req = format!("{m} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for f in fields {
        req.push_str(f);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    request(files, &req)
}

fn disk() -> (StaticFiles, Site) {
    let dir = site();
    (
        StaticFiles::new(Some(dir.to_path_buf()), StaticOptions::default()),
        dir,
    )
}

#[test]
fn plain_file_with_validators() {
    let (files, _dir) = disk();
    let a = get(&files, "/hello.txt", &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.body, b"hello world\n");
    assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(a.header("etag"), Some("\"c-65920080-5\""));
    assert_eq!(
        a.header("last-modified"),
        Some("Mon, 01 Jan 2024 00:00:00 GMT")
    );
    assert_eq!(a.header("cache-control"), Some("no-cache"));
    assert_eq!(a.header("accept-ranges"), Some("bytes"));
}

#[test]
fn head_has_get_headers_without_body() {
    let (files, _dir) = disk();
    for path in ["/hello.txt", "/big.bin", "/", "/list/"] {
        let g = get(&files, path, &[]);
        let h = method(&files, "HEAD", path, &[]);
        let no_date = |a: &Answer| -> Vec<(String, String)> {
            a.headers
                .iter()
                .filter(|(n, _)| n != "Date")
                .cloned()
                .collect()
        };
        assert_eq!(no_date(&g), no_date(&h), "{path}");
        assert!(h.body.is_empty());
    }
    // HEAD ignores Range (RFC 9110 section 14.2).
    let h = method(&files, "HEAD", "/digits.txt", &["Range: bytes=0-1"]);
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), Some("10"));
}

#[test]
fn other_methods_are_405() {
    let (files, _dir) = disk();
    for m in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let a = method(&files, m, "/hello.txt", &["Content-Length: 0"]);
        assert_eq!(a.status, 405, "{m}");
        assert_eq!(a.header("allow"), Some("GET, HEAD"));
    }
}

#[test]
fn big_file_streams_in_bounded_chunks() {
    let (files, dir) = disk();
    let a = get(&files, "/big.bin", &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.body, std::fs::read(dir.join("big.bin")).unwrap());
    let a = get(&files, "/big.bin", &["Range: bytes=100000-"]);
    assert_eq!(a.status, 206);
    assert_eq!(
        a.header("content-range"),
        Some("bytes 100000-199999/200000")
    );
    assert_eq!(
        a.body,
        std::fs::read(dir.join("big.bin")).unwrap()[100_000..]
    );
}

#[test]
fn ranges() {
    let (files, _dir) = disk();
    let a = get(&files, "/digits.txt", &["Range: bytes=2-4"]);
    assert_eq!((a.status, a.body.as_slice()), (206, &b"234"[..]));
    assert_eq!(a.header("content-range"), Some("bytes 2-4/10"));
    let a = get(&files, "/digits.txt", &["Range: bytes=-3"]);
    assert_eq!(a.body, b"789");
    let a = get(&files, "/digits.txt", &["Range: bytes=7-"]);
    assert_eq!(a.body, b"789");
    let a = get(&files, "/digits.txt", &["Range: bytes=8-100"]);
    assert_eq!(
        (a.body.as_slice(), a.header("content-range")),
        (&b"89"[..], Some("bytes 8-9/10"))
    );
    let a = get(&files, "/digits.txt", &["Range: bytes=10-"]);
    assert_eq!(a.status, 416);
    assert_eq!(a.header("content-range"), Some("bytes */10"));
    let a = get(&files, "/digits.txt", &["Range: lines=1-2"]);
    assert_eq!((a.status, a.body.as_slice()), (200, &b"0123456789"[..]));
    let a = get(
        &files,
        "/digits.txt",
        &["Range: bytes=0-1", "Range: bytes=2-3"],
    );
    assert_eq!(a.status, 200);
    let a = get(&files, "/empty.txt", &["Range: bytes=0-"]);
    assert_eq!(a.status, 200);
}

#[test]
fn multipart() {
    let (files, _dir) = disk();
    let a = get(&files, "/digits.txt", &["Range: bytes=0-1,5-6"]);
    assert_eq!(a.status, 206);
    let ct = a.header("content-type").unwrap();
    let boundary = ct.strip_prefix("multipart/byteranges; boundary=").unwrap();
    let expected = format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-1/10\r\n\r\n01\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 5-6/10\r\n\r\n56\r\n\
         --{boundary}--\r\n"
    );
    assert_eq!(String::from_utf8(a.body.clone()).unwrap(), expected);
    assert!(a.header("content-range").is_none());
    // Deterministic.
    let b = get(&files, "/digits.txt", &["Range: bytes=0-1,5-6"]);
    assert_eq!(a.raw[a.raw.len() - 200..], b.raw[b.raw.len() - 200..]);
    // Overlapping ranges coalesce into one part.
    let a = get(&files, "/digits.txt", &["Range: bytes=0-3,2-5"]);
    assert_eq!((a.status, a.body.as_slice()), (206, &b"012345"[..]));
    // A big multipart streams.
    let a = get(&files, "/big.bin", &["Range: bytes=0-99999,150000-"]);
    assert_eq!(a.status, 206);
    assert!(a.body.len() > 150_000);
}

#[test]
fn conditionals() {
    let (files, _dir) = disk();
    let etag = get(&files, "/hello.txt", &[])
        .header("etag")
        .unwrap()
        .to_string();
    let a = get(&files, "/hello.txt", &[&format!("If-None-Match: {etag}")]);
    assert_eq!(a.status, 304);
    assert!(a.body.is_empty());
    assert_eq!(a.header("etag"), Some(etag.as_str()));
    assert_eq!(a.header("cache-control"), Some("no-cache"));
    assert!(a.header("last-modified").is_some());
    assert!(a.header("content-length").is_none());
    assert!(a.header("content-type").is_none());
    let a = get(
        &files,
        "/hello.txt",
        &["If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT"],
    );
    assert_eq!(a.status, 304);
    let a = get(&files, "/hello.txt", &["If-Match: \"nope\""]);
    assert_eq!(a.status, 412);
    let a = get(
        &files,
        "/hello.txt",
        &["If-Unmodified-Since: Sun, 31 Dec 2023 00:00:00 GMT"],
    );
    assert_eq!(a.status, 412);
    // If-Range.
    let a = get(
        &files,
        "/digits.txt",
        &["Range: bytes=0-0", "If-Range: \"nope\""],
    );
    assert_eq!(a.status, 200);
    let etag = get(&files, "/digits.txt", &[])
        .header("etag")
        .unwrap()
        .to_string();
    let a = get(
        &files,
        "/digits.txt",
        &["Range: bytes=0-0", &format!("If-Range: {etag}")],
    );
    assert_eq!(a.status, 206);
    let a = get(
        &files,
        "/digits.txt",
        &[
            "Range: bytes=0-0",
            "If-Range: Mon, 01 Jan 2024 00:00:00 GMT",
        ],
    );
    assert_eq!(a.status, 206);
    let a = get(
        &files,
        "/digits.txt",
        &[
            "Range: bytes=0-0",
            "If-Range: Mon, 01 Jan 2024 00:00:01 GMT",
        ],
    );
    assert_eq!(a.status, 200);
}

#[test]
fn directories() {
    let (files, _dir) = disk();
    let a = get(&files, "/", &[]);
    assert_eq!((a.status, a.body.as_slice()), (200, &b"<p>root</p>\n"[..]));
    assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
    let a = get(&files, "/sub", &[]);
    assert_eq!((a.status, a.header("location")), (301, Some("/sub/")));
    let a = get(&files, "/sub?x=1", &[]);
    assert_eq!(a.header("location"), Some("/sub/?x=1"));
    let a = get(&files, "/sub/", &[]);
    assert_eq!(a.body, b"<p>sub</p>\n");
    let a = get(&files, "/hello.txt/", &[]);
    assert_eq!(a.status, 404);
    let a = get(&files, "/list/", &[]);
    assert_eq!(a.status, 200);
    let page = String::from_utf8(a.body).unwrap();
    assert!(page.contains("<a href=\"a%26b%3Cc%3E.txt\">a&amp;b&lt;c&gt;.txt</a>"));
    assert!(page.contains("<a href=\"inner/\">inner/</a>"));
    assert!(!page.contains("hidden"));
    assert!(page.contains("2024-01-01 00:00:00"));
    // The escaped name is served.
    let a = get(&files, "/list/a%26b%3Cc%3E.txt", &[]);
    assert_eq!(a.body, b"escaped\n");
    // Listing off: 403.
    let dir = site();
    let off = StaticFiles::new(
        Some(dir.to_path_buf()),
        StaticOptions {
            listing: false,
            ..StaticOptions::default()
        },
    );
    assert_eq!(get(&off, "/list/", &[]).status, 403);
    assert_eq!(get(&off, "/", &[]).status, 200);
}

#[test]
fn refused_paths() {
    let (files, _dir) = disk();
    for path in [
        "/../hello.txt",
        "/sub/../hello.txt",
        "/%2e%2e/hello.txt",
        "/sub%2f..%2fhello.txt",
        "/sub%5cindex.html",
        "/hello.txt%00",
        "/%252e%252e/hello.txt",
        "/%c0%ae%c0%ae/hello.txt",
        "/missing",
        "/hello.txt/x",
    ] {
        let a = get(&files, path, &[]);
        assert_eq!(
            (a.status, a.body.as_slice()),
            (404, &b"not found\n"[..]),
            "{path}"
        );
    }
}

#[cfg(unix)]
#[test]
fn symlinks_must_stay_inside() {
    let (files, dir) = disk();
    let outside = site();
    std::os::unix::fs::symlink(outside.join("hello.txt"), dir.join("out.txt")).unwrap();
    std::os::unix::fs::symlink(&*outside, dir.join("outdir")).unwrap();
    std::os::unix::fs::symlink(dir.join("hello.txt"), dir.join("in.txt")).unwrap();
    std::os::unix::fs::symlink(dir.join("sub"), dir.join("indir")).unwrap();
    assert_eq!(get(&files, "/out.txt", &[]).status, 404);
    assert_eq!(get(&files, "/outdir/hello.txt", &[]).status, 404);
    assert_eq!(get(&files, "/outdir/", &[]).status, 404);
    assert_eq!(get(&files, "/in.txt", &[]).body, b"hello world\n");
    assert_eq!(get(&files, "/indir/", &[]).body, b"<p>sub</p>\n");
    // A listing leaves out links that leave the root.
    std::os::unix::fs::symlink(outside.join("hello.txt"), dir.join("list/out.txt")).unwrap();
    std::os::unix::fs::symlink(&*outside, dir.join("list/outdir")).unwrap();
    std::os::unix::fs::symlink(dir.join("hello.txt"), dir.join("list/in.txt")).unwrap();
    std::os::unix::fs::symlink(dir.join("sub"), dir.join("list/indir")).unwrap();
    let page = String::from_utf8(get(&files, "/list/", &[]).body).unwrap();
    assert!(page.contains("href=\"in.txt\""));
    assert!(page.contains("href=\"indir/\""));
    assert!(!page.contains("out.txt"));
    assert!(!page.contains("outdir"));
}

/// `site()` plus dot files and directories at several depths, `/.well-known/`, and a dot
/// file with a fresh `.gz` sidecar; the big text is the dot file's content.
fn dot_site() -> (Site, Vec<u8>, Vec<u8>) {
    let dir = site();
    for d in [
        ".git",
        "a/.hidden",
        ".well-known/acme",
        ".well-known/.private",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let secret = text(100);
    let gz = compress_all(Coding::Gzip, 9, &secret).unwrap();
    for (name, bytes) in [
        (".env", &b"KEY=secret\n"[..]),
        (".git/config", b"[core]\n"),
        (".git/index.html", b"<p>git</p>\n"),
        ("a/.hidden/b.txt", b"b\n"),
        ("a/c.txt", b"c\n"),
        (".well-known/example.txt", b"example\n"),
        (".well-known/.secret", b"secret\n"),
        (".well-known/acme/token", b"token\n"),
        (".well-known/.private/x", b"x\n"),
        (".secret.txt", &secret),
    ] {
        write_at(&dir.join(name), bytes, Duration::new(MTIME, 5));
    }
    write_at(
        &dir.join(".secret.txt.gz"),
        &gz,
        Duration::new(MTIME + 10, 0),
    );
    (dir, secret, gz)
}

/// Paths with a dot name: refused unless dot files are allowed.
const DOT_PATHS: &[&str] = &[
    "/.env",
    "/%2eenv",
    "/%2Eenv",
    "/./.env",
    "/.git",
    "/.git/",
    "/.git/.",
    "/.git/config",
    "/%2egit/config",
    "/%2Egit/config",
    "/.git/index.html",
    "/a/.hidden",
    "/a/.hidden/",
    "/a/.hidden/b.txt",
    "/a/%2ehidden/b.txt",
    "/a/%2e/.hidden/b.txt",
    "/list/.hidden",
    "/.well-known/.secret",
    "/.well-known/%2esecret",
    "/.well-known/.private/",
    "/.well-known/.private/x",
    "/.secret.txt",
    "/.secret.txt.gz",
];

/// The response without its `Date` line.
fn without_date(a: &Answer) -> String {
    String::from_utf8_lossy(&a.raw)
        .split("\r\n")
        .filter(|l| !l.starts_with("Date:"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn dot_files_are_404_by_default() {
    let (dir, _, _) = dot_site();
    let files = StaticFiles::new(Some(dir.to_path_buf()), StaticOptions::default());
    for fields in [
        &[][..],
        &["Accept-Encoding: gzip"],
        &["Range: bytes=0-1"],
        &["If-None-Match: *"],
    ] {
        let missing = without_date(&get(&files, "/missing", fields));
        for path in DOT_PATHS {
            let a = get(&files, path, fields);
            assert_eq!(
                (a.status, a.body.as_slice()),
                (404, &b"not found\n"[..]),
                "{path}"
            );
            // The same answer as any missing file: nothing tells whether it exists.
            assert_eq!(without_date(&a), missing, "{path} {fields:?}");
        }
    }
    let missing = without_date(&method(&files, "HEAD", "/missing", &[]));
    for path in DOT_PATHS {
        assert_eq!(
            without_date(&method(&files, "HEAD", path, &[])),
            missing,
            "{path}"
        );
    }
    // `/.well-known/` is served (RFC 8615), dot names below it are not listed.
    assert_eq!(
        get(&files, "/.well-known/example.txt", &[]).body,
        b"example\n"
    );
    assert_eq!(
        get(&files, "/%2ewell-known/example.txt", &[]).body,
        b"example\n"
    );
    assert_eq!(get(&files, "/.well-known/acme/token", &[]).body, b"token\n");
    let a = get(&files, "/.well-known", &[]);
    assert_eq!(
        (a.status, a.header("location")),
        (301, Some("/.well-known/"))
    );
    let page = String::from_utf8(get(&files, "/.well-known/", &[]).body).unwrap();
    assert!(page.contains("href=\"example.txt\""));
    assert!(page.contains("href=\"acme/\""));
    assert!(!page.contains("secret") && !page.contains("private"));
    // Files beside dot names are served; listings leave dot names out.
    assert_eq!(get(&files, "/a/c.txt", &[]).body, b"c\n");
    let page = String::from_utf8(get(&files, "/a/", &[]).body).unwrap();
    assert!(page.contains("href=\"c.txt\"") && !page.contains("hidden"));
    // A root below a dot directory is fine: only names below the root count.
    let inside = StaticFiles::new(Some(dir.join(".git")), StaticOptions::default());
    assert_eq!(get(&inside, "/config", &[]).body, b"[core]\n");
}

#[test]
fn dot_files_are_served_when_allowed() {
    let (dir, secret, gz) = dot_site();
    let files = StaticFiles::new(
        Some(dir.to_path_buf()),
        StaticOptions {
            allow_dotfiles: true,
            ..StaticOptions::default()
        },
    );
    for path in DOT_PATHS {
        let a = get(&files, path, &[]);
        assert!(matches!(a.status, 200 | 301), "{path}: {}", a.status);
    }
    assert_eq!(get(&files, "/.env", &[]).body, b"KEY=secret\n");
    assert_eq!(get(&files, "/%2egit/config", &[]).body, b"[core]\n");
    assert_eq!(get(&files, "/.git/", &[]).body, b"<p>git</p>\n");
    assert_eq!(get(&files, "/.git", &[]).header("location"), Some("/.git/"));
    assert_eq!(get(&files, "/.secret.txt", &[]).body, secret);
    // The sidecar too.
    assert_eq!(
        get(&files, "/.secret.txt", &["Accept-Encoding: gzip"]).body,
        gz
    );
    // Listings show dot names.
    let page = String::from_utf8(get(&files, "/list/", &[]).body).unwrap();
    assert!(page.contains("href=\".hidden\""));
    let page = String::from_utf8(get(&files, "/.well-known/", &[]).body).unwrap();
    assert!(page.contains("href=\".secret\"") && page.contains("href=\".private/\""));
}

#[cfg(unix)]
#[test]
fn links_into_dot_names_are_404_by_default() {
    let (dir, _, _) = dot_site();
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(dir.join(target), dir.join(name)).unwrap();
    };
    link(".env", "env-link");
    link(".git", "git-link");
    link(".well-known/.secret", "secret-link");
    link(".well-known/example.txt", "example-link");
    link(".well-known", "wk-link");
    link(".env", "list/env-link");
    link(".git", "list/git-link");
    link("hello.txt", "list/hello-link");
    link("hello.txt", ".well-known/hello-link");
    let files = StaticFiles::new(Some(dir.to_path_buf()), StaticOptions::default());
    for path in [
        "/env-link",
        "/git-link/config",
        "/git-link/",
        "/secret-link",
        "/wk-link/.secret",
        "/list/env-link",
        "/list/git-link/config",
    ] {
        assert_eq!(get(&files, path, &[]).status, 404, "{path}");
    }
    assert_eq!(get(&files, "/example-link", &[]).body, b"example\n");
    assert_eq!(get(&files, "/wk-link/example.txt", &[]).body, b"example\n");
    assert_eq!(
        get(&files, "/.well-known/hello-link", &[]).body,
        b"hello world\n"
    );
    let page = String::from_utf8(get(&files, "/list/", &[]).body).unwrap();
    assert!(page.contains("href=\"hello-link\""));
    assert!(!page.contains("env-link") && !page.contains("git-link"));
    // Allowed: followed like any link inside the root, and listed.
    let files = StaticFiles::new(
        Some(dir.to_path_buf()),
        StaticOptions {
            allow_dotfiles: true,
            ..StaticOptions::default()
        },
    );
    assert_eq!(get(&files, "/env-link", &[]).body, b"KEY=secret\n");
    assert_eq!(get(&files, "/git-link/config", &[]).body, b"[core]\n");
    let page = String::from_utf8(get(&files, "/list/", &[]).body).unwrap();
    assert!(page.contains("env-link") && page.contains("git-link"));
}

#[cfg(unix)]
#[test]
fn memory_cache_follows_changes() {
    let (files, dir) = disk();
    // Freshly written files are not cached (their ctime is too recent).
    assert_eq!(get(&files, "/hello.txt", &[]).body, b"hello world\n");
    assert_eq!(files.cache.usage().0, 0);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(get(&files, "/hello.txt", &[]).body, b"hello world\n");
    assert_eq!(files.cache.usage(), (1, 12));
    // Served from memory, with the same headers.
    let cached = get(&files, "/hello.txt", &["Range: bytes=0-4"]);
    assert_eq!(
        (cached.status, cached.body.as_slice()),
        (206, &b"hello"[..])
    );
    assert_eq!(cached.header("etag"), Some("\"c-65920080-5\""));
    // Rewritten in place with the same size and the old mtime: ctime differs, so the new
    // bytes are served.
    std::fs::write(dir.join("hello.txt"), b"HELLO WORLD\n").unwrap();
    File::options()
        .write(true)
        .open(dir.join("hello.txt"))
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::new(MTIME, 5))
        .unwrap();
    assert_eq!(get(&files, "/hello.txt", &[]).body, b"HELLO WORLD\n");
    // Replaced by another file (rename over it).
    std::fs::write(dir.join("new.txt"), b"replaced!!!\n").unwrap();
    std::fs::rename(dir.join("new.txt"), dir.join("hello.txt")).unwrap();
    assert_eq!(get(&files, "/hello.txt", &[]).body, b"replaced!!!\n");
    // Removed.
    std::fs::remove_file(dir.join("hello.txt")).unwrap();
    assert_eq!(get(&files, "/hello.txt", &[]).status, 404);
    // Off.
    let off = StaticFiles::new(
        Some(dir.to_path_buf()),
        StaticOptions {
            memory_cache: 0,
            ..StaticOptions::default()
        },
    );
    assert_eq!(get(&off, "/digits.txt", &[]).body, b"0123456789");
    assert_eq!(off.cache.usage(), (0, 0));
}

#[test]
fn embedded_site() {
    let files = StaticFiles::new(None, StaticOptions::default());
    let a = get(&files, "/", &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
    let etag = a.header("etag").unwrap().to_string();
    assert!(etag.starts_with("\"e-"));
    assert!(a.header("last-modified").is_none());
    let a = get(&files, "/index.html", &[&format!("If-None-Match: {etag}")]);
    assert_eq!(a.status, 304);
    let a = get(&files, "/style.css", &["Range: bytes=0-3"]);
    assert_eq!((a.status, a.body.len()), (206, 4));
    let a = get(&files, "/chat.html", &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(get(&files, "/nope", &[]).status, 404);
    assert_eq!(get(&files, "/index.html/", &[]).status, 404);
}

#[test]
fn compiled_in_sites_have_listings() {
    static SITE: &[(&str, &[u8])] = &[
        ("a.txt", b"a"),
        ("docs/guide.txt", b"guide"),
        ("docs/deep/x.txt", b"x"),
        ("docs/.secret", b"s"),
        ("docs/index-less/z.bin", b"zz"),
    ];
    let files = StaticFiles::embedded(SITE, StaticOptions::default());
    assert_eq!(get(&files, "/a.txt", &[]).body, b"a");
    assert_eq!(get(&files, "/docs/deep/x.txt", &[]).body, b"x");
    assert_eq!(get(&files, "/docs", &[]).status, 301);
    let root = get(&files, "/", &[]);
    assert_eq!(root.status, 200);
    let page = String::from_utf8(root.body).unwrap();
    assert!(
        page.contains("Index of /")
            && page.contains("href=\"docs/\"")
            && page.contains("href=\"a.txt\"")
    );
    let docs = String::from_utf8(get(&files, "/docs/", &[]).body).unwrap();
    let (dir, file) = (
        docs.find("href=\"deep/\"").unwrap(),
        docs.find("guide.txt").unwrap(),
    );
    assert!(dir < file, "directories first");
    assert!(docs.contains("href=\"index-less/\""));
    assert!(!docs.contains("secret"), "dot names are left out");
    assert_eq!(get(&files, "/docs/.secret", &[]).status, 404);
    let unlisted = StaticFiles::embedded(
        SITE,
        StaticOptions {
            listing: false,
            ..StaticOptions::default()
        },
    );
    assert_eq!(get(&unlisted, "/docs/", &[]).status, 403);
    assert_eq!(get(&unlisted, "/docs/guide.txt", &[]).status, 200);
}

#[test]
fn cache_control_per_extension() {
    let dir = site();
    let files = StaticFiles::new(
        Some(dir.to_path_buf()),
        StaticOptions {
            cache_control: "public, max-age=60".into(),
            cache_control_by_ext: vec![(
                "bin".into(),
                "public, max-age=31536000, immutable".into(),
            )],
            ..StaticOptions::default()
        },
    );
    assert_eq!(
        get(&files, "/big.bin", &[]).header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        get(&files, "/hello.txt", &[]).header("cache-control"),
        Some("public, max-age=60")
    );
}

#[cfg(unix)]
#[test]
fn etag_with_inode() {
    use std::os::unix::fs::MetadataExt;
    let dir = site();
    let ino = std::fs::metadata(dir.join("hello.txt")).unwrap().ino();
    let files = StaticFiles::new(
        Some(dir.to_path_buf()),
        StaticOptions {
            etag_inode: true,
            ..StaticOptions::default()
        },
    );
    let expected = format!("\"c-65920080-5-{ino:x}\"");
    assert_eq!(
        get(&files, "/hello.txt", &[]).header("etag"),
        Some(expected.as_str())
    );
}

fn write_at(path: &Path, bytes: &[u8], mtime: Duration) {
    std::fs::write(path, bytes).unwrap();
    let f = File::options().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + mtime).unwrap();
}

fn text(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{i:06} the weft and the warp\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn compressed_variants_are_cached_per_tag() {
    let (files, dir) = disk();
    let body = text(200);
    write_at(&dir.join("t.txt"), &body, Duration::new(MTIME, 7));
    let a = get(&files, "/t.txt", &["Accept-Encoding: gzip"]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-encoding"), Some("gzip"));
    assert_eq!(a.header("vary"), Some("Accept-Encoding"));
    assert_eq!(a.header("accept-ranges"), None);
    let tag = format!("\"{:x}-65920080-7\"", body.len());
    assert_eq!(
        a.header("etag"),
        Some(&*variant_tag(tag.as_bytes(), Coding::Gzip))
    );
    assert_eq!(decode(Coding::Gzip, &a.body), body);
    let key = dir.join("t.txt").to_string_lossy().into_owned();
    let cached = files.compressor.cached(&key, Coding::Gzip, &tag).unwrap();
    assert_eq!(&*cached, &a.body[..]);
    // The same bytes again, and HEAD has the same length.
    assert_eq!(
        get(&files, "/t.txt", &["Accept-Encoding: gzip"]).body,
        a.body
    );
    let h = method(&files, "HEAD", "/t.txt", &["Accept-Encoding: gzip"]);
    assert_eq!(h.header("content-length"), a.header("content-length"));
    assert!(h.body.is_empty());
    // The file changes: a new tag, a new variant from the new bytes.
    let body2 = text(300);
    write_at(&dir.join("t.txt"), &body2, Duration::new(MTIME, 9));
    let b = get(&files, "/t.txt", &["Accept-Encoding: deflate, gzip;q=0.5"]);
    assert_eq!(b.header("content-encoding"), Some("deflate"));
    assert_eq!(decode(Coding::Deflate, &b.body), body2);
    let b = get(&files, "/t.txt", &["Accept-Encoding: gzip"]);
    assert_eq!(decode(Coding::Gzip, &b.body), body2);
    // Uncached: the same answer, nothing kept.
    let opts = StaticOptions {
        compress: CompressOptions {
            cache_bytes: 0,
            ..CompressOptions::default()
        },
        ..StaticOptions::default()
    };
    let uncached = StaticFiles::new(Some(dir.to_path_buf()), opts);
    let c = get(&uncached, "/t.txt", &["Accept-Encoding: gzip"]);
    assert_eq!(c.body, b.body);
    assert!(uncached
        .compressor
        .cached(&key, Coding::Gzip, b.header("etag").unwrap_or(""))
        .is_none());
}

#[test]
fn sidecar_only_when_fresh_and_not_a_link() {
    let (files, dir) = disk();
    let body = text(100);
    let sidecar = compress_all(Coding::Gzip, 1, &body).unwrap();
    write_at(&dir.join("s.txt"), &body, Duration::new(MTIME, 5));
    // Older than the file: stale, ignored.
    write_at(
        &dir.join("s.txt.gz"),
        &sidecar,
        Duration::new(MTIME - 10, 0),
    );
    let a = get(&files, "/s.txt", &["Accept-Encoding: gzip"]);
    assert_ne!(a.body, sidecar);
    assert_eq!(decode(Coding::Gzip, &a.body), body);
    // Fresh: served as it is, with its own tag.
    write_at(
        &dir.join("s.txt.gz"),
        &sidecar,
        Duration::new(MTIME + 10, 0),
    );
    let b = get(&files, "/s.txt", &["Accept-Encoding: gzip"]);
    assert_eq!(b.body, sidecar);
    let tag = b.header("etag").unwrap().to_string();
    assert!(tag.contains("-gzip-") && tag != a.header("etag").unwrap());
    // Its tag revalidates; deflate does not use it.
    let nm = get(
        &files,
        "/s.txt",
        &["Accept-Encoding: gzip", &format!("If-None-Match: {tag}")],
    );
    assert_eq!(nm.status, 304);
    let d = get(&files, "/s.txt", &["Accept-Encoding: deflate"]);
    assert_eq!(decode(Coding::Deflate, &d.body), body);
    // A symbolic link as the sidecar is not followed.
    #[cfg(unix)]
    {
        std::fs::remove_file(dir.join("s.txt.gz")).unwrap();
        write_at(
            &dir.join("elsewhere.gz"),
            &sidecar,
            Duration::new(MTIME + 10, 0),
        );
        std::os::unix::fs::symlink(dir.join("elsewhere.gz"), dir.join("s.txt.gz")).unwrap();
        let e = get(&files, "/s.txt", &["Accept-Encoding: gzip"]);
        assert_ne!(e.body, sidecar);
        assert_eq!(decode(Coding::Gzip, &e.body), body);
    }
}

#[test]
fn large_files_are_compressed_while_sent() {
    let (files, dir) = disk();
    let body = text(60_000); // 1.8 MB, above WHOLE_MAX
    assert!(body.len() as u64 > WHOLE_MAX);
    write_at(&dir.join("big.txt"), &body, Duration::new(MTIME, 5));
    // `request` checks that the producer never overfills the transmit window.
    let a = get(&files, "/big.txt", &["Accept-Encoding: gzip"]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("transfer-encoding"), Some("chunked"));
    assert_eq!(a.header("content-length"), None);
    assert_eq!(decode(Coding::Gzip, &a.body), body);
    let h = method(&files, "HEAD", "/big.txt", &["Accept-Encoding: gzip"]);
    assert_eq!(h.header("transfer-encoding"), Some("chunked"));
    assert!(h.body.is_empty());
}

#[test]
fn negotiation_rules_for_files() {
    let (files, dir) = disk();
    let body = text(200);
    write_at(&dir.join("n.txt"), &body, Duration::new(MTIME, 5));
    // Range: identity 206 with Vary; identity excluded: the range is ignored.
    let r = get(
        &files,
        "/n.txt",
        &["Accept-Encoding: gzip", "Range: bytes=0-9"],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(r.body, &body[..10]);
    let r = get(
        &files,
        "/n.txt",
        &["Accept-Encoding: identity;q=0, gzip", "Range: bytes=0-9"],
    );
    assert_eq!(r.status, 200);
    assert_eq!(decode(Coding::Gzip, &r.body), body);
    // Nothing acceptable.
    assert_eq!(
        get(&files, "/n.txt", &["Accept-Encoding: *;q=0"]).status,
        406
    );
    // Below the threshold: identity with Vary.
    let small = get(&files, "/hello.txt", &["Accept-Encoding: gzip"]);
    assert_eq!(small.header("content-encoding"), None);
    assert_eq!(small.header("vary"), Some("Accept-Encoding"));
    // A type never compressed: no Vary, no 406.
    let bin = get(&files, "/big.bin", &["Accept-Encoding: identity;q=0, gzip"]);
    assert_eq!(bin.status, 200);
    assert_eq!(bin.header("vary"), None);
    // Compression off: nothing negotiated.
    let opts = StaticOptions {
        compress: CompressOptions {
            level: 0,
            ..CompressOptions::default()
        },
        ..StaticOptions::default()
    };
    let off = StaticFiles::new(Some(dir.to_path_buf()), opts);
    let o = get(&off, "/n.txt", &["Accept-Encoding: gzip"]);
    assert_eq!(
        (o.header("vary"), o.header("content-encoding")),
        (None, None)
    );
    assert_eq!(o.body, body);
    assert_eq!(
        get(&off, "/n.txt", &["Accept-Encoding: identity;q=0"]).status,
        200
    );
}
