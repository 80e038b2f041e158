//! Mapping a request path onto names below the document root, lexically (no filesystem
//! access): the same rules hold on every target, whatever sandbox the host adds.
//!
//! - The path is percent-decoded once, segment by segment (so `%2F` can never become a
//!   separator and `%252e` is the literal name `%2e`).
//! - A segment that decodes to something containing NUL, `/` or `\`, or that is not UTF-8
//!   (this includes overlong encodings such as `%c0%ae`), refuses the whole path.
//! - Empty and `.` segments are skipped; every `..` segment refuses the path, even one that
//!   would stay inside the root: clients remove dot segments before sending (RFC 3986
//!   section 5.2.4), so a `..` on the wire is hand-made.
//! - [`is_hidden`]: a decoded name starting with `.` hides the path (unless the service allows
//!   dot files), except `.well-known` as the first name (RFC 8615).

/// A request path mapped below the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedPath {
    /// The decoded names, outermost first; empty for the root itself.
    pub segments: Vec<String>,
    /// The path names a directory (it ends with `/`, or with a `.` segment).
    pub dir: bool,
}

/// Maps `path` (the percent-encoded path of the request target, starting with `/`); `None`
/// when it must be refused.
pub fn map_path(path: &str) -> Option<MappedPath> {
    let rest = path.strip_prefix('/')?;
    let mut segments = Vec::new();
    let mut dir = true;
    for raw in rest.split('/') {
        let decoded = percent_decode(raw)?;
        let segment = String::from_utf8(decoded).ok()?;
        if segment.contains(['\0', '\\', '/']) || segment == ".." {
            return None;
        }
        if segment.is_empty() || segment == "." {
            dir = true;
            continue;
        }
        dir = false;
        segments.push(segment);
    }
    Some(MappedPath { segments, dir })
}

/// The one dot name served without `allow_dotfiles`, as the first name below the root only:
/// RFC 8615's `/.well-known/` (dot names below it stay hidden).
pub const WELL_KNOWN: &str = ".well-known";

/// Whether a path below the root, given as its decoded names outermost first, is hidden: one
/// of its names starts with `.` and is not `.well-known` in first place. Bytes, so that names
/// read from the filesystem (the resolved path of a symbolic link) are judged the same way.
pub fn is_hidden<N: AsRef<[u8]>>(names: impl IntoIterator<Item = N>) -> bool {
    names.into_iter().enumerate().any(|(i, name)| {
        let name = name.as_ref();
        name.first() == Some(&b'.') && !(i == 0 && name == WELL_KNOWN.as_bytes())
    })
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes once; `None` for a malformed escape.
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = hex_value(bytes.next()?)?;
            let lo = hex_value(bytes.next()?)?;
            out.push(hi << 4 | lo);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n), 16)
        .unwrap_or('0')
        .to_ascii_uppercase()
}

/// Percent-encodes everything but unreserved characters (RFC 3986 section 2.3): safe as a
/// relative reference in an `href` (no `:` that could read as a scheme, no `/`, `?` or `#`).
pub fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 15));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn ok(path: &str, segments: &[&str], dir: bool) {
        assert_eq!(
            map_path(path),
            Some(MappedPath {
                segments: segments.iter().map(|s| s.to_string()).collect(),
                dir
            }),
            "{path}"
        );
    }

    #[test]
    fn plain_paths() {
        ok("/", &[], true);
        ok("/hello.txt", &["hello.txt"], false);
        ok("/sub/page.txt", &["sub", "page.txt"], false);
        ok("/sub/", &["sub"], true);
        ok("/sub", &["sub"], false);
        ok("//sub//page.txt", &["sub", "page.txt"], false);
        ok("/./hello.txt", &["hello.txt"], false);
        ok("/%2e/hello.txt", &["hello.txt"], false);
        ok("/sub/.", &["sub"], true);
        ok("/sub/%2E", &["sub"], true);
    }

    #[test]
    fn decoding_once() {
        ok("/a%20b.txt", &["a b.txt"], false);
        ok("/a%26b%3Cc%3E.txt", &["a&b<c>.txt"], false);
        ok("/%252e%252e/x", &["%2e%2e", "x"], false);
        ok("/caf%C3%A9", &["café"], false);
        ok("/café", &["café"], false);
        ok("/...", &["..."], false);
        ok("/..a", &["..a"], false);
    }

    #[test]
    fn refused() {
        for path in [
            "",
            "hello.txt",
            "*",
            "/../hello.txt",
            "/sub/../hello.txt",
            "/sub/..",
            "/%2e%2e/hello.txt",
            "/%2E%2E/hello.txt",
            "/.%2e/hello.txt",
            "/%2e./hello.txt",
            "/sub%2fpage.txt",
            "/sub%2Fpage.txt",
            "/..%2fhello.txt",
            "/sub%5cpage.txt",
            "/sub\\page.txt",
            "/hello.txt%00",
            "/hello.txt%00.html",
            "/%c0%ae%c0%ae/hello.txt",
            "/%c0%af",
            "/%e0%80%ae",
            "/%ff",
            "/%",
            "/%2",
            "/%zz",
            "/%2g",
        ] {
            assert_eq!(map_path(path), None, "{path}");
        }
    }

    fn hidden(path: &str) -> bool {
        is_hidden(&map_path(path).unwrap().segments)
    }

    #[test]
    fn dot_names_hide_the_path() {
        for path in [
            "/.env",
            "/.git/",
            "/.git",
            "/.git/config",
            "/a/.hidden/b.txt",
            "/a/b/.hidden",
            "/%2egit/config",
            "/%2Egit/config",
            "/a/%2ehidden/b.txt",
            "/./.env",
            "/a/%2e/.env",
            "/...",
            "/..a",
            "/.well-known/.secret",
            "/.well-known/a/.secret/b",
            "/a/.well-known/x",
            "/.well-known.txt",
            "/.WELL-KNOWN/x",
        ] {
            assert!(hidden(path), "{path}");
        }
        for path in [
            "/",
            "/hello.txt",
            "/a/b.txt",
            "/a.b/c",
            "/a/b./c",
            "/%252egit/config",
            "/.well-known",
            "/.well-known/",
            "/.well-known/acme-challenge/token",
            "/%2ewell-known/x",
            "/./.well-known/x",
        ] {
            assert!(!hidden(path), "{path}");
        }
        // Names from the filesystem, not UTF-8.
        assert!(is_hidden([&b"a"[..], b".\xff"]));
        assert!(!is_hidden([&b"\xff"[..]]));
    }

    #[test]
    fn encode_for_href() {
        assert_eq!(percent_encode("a&b<c>.txt"), "a%26b%3Cc%3E.txt");
        assert_eq!(percent_encode("x:y"), "x%3Ay");
        assert_eq!(percent_encode("café"), "caf%C3%A9");
        assert_eq!(percent_encode("a b"), "a%20b");
        // Round trip through the mapping.
        for name in ["a&b<c>.txt", "x:y", "café", "%41", "q?#"] {
            ok(&format!("/{}", percent_encode(name)), &[name], false);
        }
    }
}
