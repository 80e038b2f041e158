//! Content types by file extension, from the `mime_guess` table (a maintained list derived
//! from the Apache and IANA registries). Text types get `charset=utf-8`; unknown extensions
//! and names without one are `application/octet-stream`.

use std::borrow::Cow;

/// The type sent for names whose extension is unknown.
pub const DEFAULT_TYPE: &str = "application/octet-stream";

/// The extension of a file name (after the last `.`, not for dot files like `.profile`).
pub fn extension(name: &str) -> Option<&str> {
    std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
}

/// Whether a type is text that we declare as UTF-8.
fn is_text(mime: &str) -> bool {
    mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript" | "application/ecmascript" | "image/svg+xml"
        )
}

/// The `Content-Type` for a file name.
pub fn content_type(name: &str) -> Cow<'static, str> {
    let mime = extension(name)
        .and_then(|ext| mime_guess::from_ext(ext).first_raw())
        .unwrap_or(DEFAULT_TYPE);
    if !is_text(mime) {
        return Cow::Borrowed(mime);
    }
    // The common text types without an allocation.
    match mime {
        "text/html" => Cow::Borrowed("text/html; charset=utf-8"),
        "text/plain" => Cow::Borrowed("text/plain; charset=utf-8"),
        "text/css" => Cow::Borrowed("text/css; charset=utf-8"),
        "text/javascript" => Cow::Borrowed("text/javascript; charset=utf-8"),
        _ => Cow::Owned(format!("{mime}; charset=utf-8")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_types() {
        for (name, ty) in [
            ("index.html", "text/html; charset=utf-8"),
            ("INDEX.HTM", "text/html; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("hello.txt", "text/plain; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("data.json", "application/json"),
            ("logo.svg", "image/svg+xml; charset=utf-8"),
            ("pic.png", "image/png"),
            ("pic.jpeg", "image/jpeg"),
            ("mod.wasm", "application/wasm"),
            ("doc.pdf", "application/pdf"),
            ("font.woff2", "font/woff2"),
            ("a.tar.gz", "application/gzip"),
            ("README", DEFAULT_TYPE),
            (".profile", DEFAULT_TYPE),
            ("x.unknownext", DEFAULT_TYPE),
        ] {
            assert_eq!(content_type(name), ty, "{name}");
        }
    }
}
