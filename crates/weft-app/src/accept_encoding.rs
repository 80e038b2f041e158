//! `Accept-Encoding` (RFC 9110 section 12.5.3) and which content types are worth compressing.
//!
//! - Elements are `coding *( OWS ";" OWS param )`; codings compare case-insensitively;
//!   `x-gzip` is `gzip` (RFC 9110 section 8.4.1.3). An element whose coding is not a token or
//!   whose `q` is not a valid qvalue is ignored (the rest of the field still counts); other
//!   parameters are ignored. When a coding is listed twice, the first wins. Several fields
//!   form one list.
//! - A coding not listed takes the weight of `*`, or is not acceptable without `*`;
//!   `identity` not listed takes the weight of `*`, or is acceptable but preferred least (a
//!   client that lists codings with weights below 1 still wants one of them).
//! - `q=0` means "not acceptable".
//! - No `Accept-Encoding` at all: the identity is sent (any coding would be allowed, but the
//!   client said nothing about decoding). An empty field: only the identity.

use weft_core::{is_token, trim_ows};

use crate::deflate_encoder::Coding;

/// A weight in thousandths (`q=0.5` is 500); 1000 is `q=1`.
pub type Weight = u16;

/// What a request's `Accept-Encoding` fields say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Preferences {
    /// Whether there was an `Accept-Encoding` field at all.
    pub present: bool,
    gzip: Option<Weight>,
    deflate: Option<Weight>,
    identity: Option<Weight>,
    any: Option<Weight>,
}

/// The coding to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    Identity,
    Encode(Coding),
    /// Nothing weft can send is acceptable (the identity is excluded too): 406.
    NotAcceptable,
}

impl Preferences {
    /// Parses every `Accept-Encoding` field value of a request, in order.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Preferences {
        let mut p = Preferences::default();
        for value in values {
            p.present = true;
            for element in value.split(|&b| b == b',') {
                let Some((coding, weight)) = element_of(element) else {
                    continue;
                };
                let slot = if coding.eq_ignore_ascii_case(b"gzip")
                    || coding.eq_ignore_ascii_case(b"x-gzip")
                {
                    &mut p.gzip
                } else if coding.eq_ignore_ascii_case(b"deflate") {
                    &mut p.deflate
                } else if coding.eq_ignore_ascii_case(b"identity") {
                    &mut p.identity
                } else if coding == b"*" {
                    &mut p.any
                } else {
                    continue;
                };
                if slot.is_none() {
                    *slot = Some(weight);
                }
            }
        }
        p
    }

    /// The weight of `coding`.
    pub fn weight(&self, coding: Coding) -> Weight {
        let explicit = match coding {
            Coding::Gzip => self.gzip,
            Coding::Deflate => self.deflate,
        };
        explicit.or(self.any).unwrap_or(0)
    }

    /// The weight of the identity (no coding) when the field gives one (`identity` or `*`).
    pub fn identity_weight(&self) -> Option<Weight> {
        self.identity.or(self.any)
    }

    /// Whether the identity is acceptable.
    pub fn identity_acceptable(&self) -> bool {
        self.identity_weight() != Some(0)
    }

    /// Chooses the coding of a response. `compress` says whether the server would like to
    /// compress this body (false for a body below the size threshold or a range request): then
    /// the identity is sent whenever it is acceptable. Otherwise the best weighted of gzip,
    /// deflate and identity wins, ties in that order.
    pub fn choose(&self, compress: bool) -> Choice {
        if !self.present {
            return Choice::Identity;
        }
        let (best, best_weight) = [Coding::Gzip, Coding::Deflate]
            .into_iter()
            .map(|c| (c, self.weight(c)))
            .fold(
                (Coding::Gzip, 0),
                |acc, cur| if cur.1 > acc.1 { cur } else { acc },
            );
        let identity = self.identity_weight().unwrap_or(0);
        if compress && best_weight > 0 && best_weight >= identity {
            Choice::Encode(best)
        } else if self.identity_acceptable() {
            Choice::Identity
        } else if best_weight > 0 {
            Choice::Encode(best)
        } else {
            Choice::NotAcceptable
        }
    }
}

/// One list element: the coding and its weight (1 without `q`), or `None` when invalid or
/// empty.
fn element_of(element: &[u8]) -> Option<(&[u8], Weight)> {
    let mut parts = element.split(|&b| b == b';');
    let coding = trim_ows(parts.next()?);
    if coding.is_empty() || !(coding == b"*" || is_token(coding)) {
        return None;
    }
    let mut weight = 1000;
    for param in parts {
        let param = trim_ows(param);
        let eq = param.iter().position(|&b| b == b'=')?;
        let (name, value) = param.split_at(eq);
        let name = trim_ows(name);
        let value = trim_ows(value.get(1..).unwrap_or(&[]));
        if name.eq_ignore_ascii_case(b"q") {
            weight = qvalue(value)?;
        } else if !is_token(name) {
            return None;
        }
    }
    Some((coding, weight))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` in thousandths.
pub fn qvalue(text: &[u8]) -> Option<Weight> {
    let (int, frac) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (text.get(..dot)?, text.get(dot + 1..)?),
        None => (text, &[][..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: Weight = 0;
    let mut scale = 100;
    for &d in frac {
        thousandths += Weight::from(d - b'0') * scale;
        scale /= 10;
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Whether a body of this `Content-Type` is worth compressing: not when it is compressed
/// already (images other than SVG, BMP and icons; audio; video; woff/woff2 fonts; archives and
/// compressed files) or of unknown nature (`application/octet-stream`).
pub fn compressible_type(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|&b| b == b';')
        .next()
        .map(trim_ows)
        .unwrap_or(&[]);
    let Ok(essence) = std::str::from_utf8(essence) else {
        return false;
    };
    let essence = essence.to_ascii_lowercase();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    match kind {
        "text" => true,
        "image" => matches!(sub, "svg+xml" | "bmp" | "x-icon" | "vnd.microsoft.icon"),
        "audio" | "video" => false,
        "font" => !matches!(sub, "woff" | "woff2"),
        "application" => !matches!(
            sub,
            "octet-stream"
                | "zip"
                | "gzip"
                | "x-gzip"
                | "x-bzip"
                | "x-bzip2"
                | "x-xz"
                | "x-7z-compressed"
                | "x-rar-compressed"
                | "vnd.rar"
                | "zstd"
                | "x-compress"
                | "x-lzip"
                | "x-lzma"
                | "java-archive"
                | "epub+zip"
                | "font-woff"
                | "x-font-woff"
                | "vnd.ms-fontobject"
                | "x-brotli"
        ),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn choose(fields: &[&str], compress: bool) -> Choice {
        Preferences::parse(fields.iter().map(|f| f.as_bytes())).choose(compress)
    }

    use Choice::*;
    use Coding::*;

    #[test]
    fn matrix() {
        let cases: &[(&[&str], Choice)] = &[
            (&[], Identity),
            (&[""], Identity),
            (&["gzip"], Encode(Gzip)),
            (&["GZIP"], Encode(Gzip)),
            (&["x-gzip"], Encode(Gzip)),
            (&["deflate"], Encode(Deflate)),
            (&["gzip, deflate"], Encode(Gzip)),
            (&["deflate, gzip"], Encode(Gzip)),
            (&["deflate, gzip;q=0.5"], Encode(Deflate)),
            (&["gzip;q=0, deflate"], Encode(Deflate)),
            (&["gzip;q=0"], Identity),
            (&["br"], Identity),
            (&["br, zstd"], Identity),
            (&["*"], Encode(Gzip)),
            (&["*;q=0.5, gzip;q=0"], Encode(Deflate)),
            (&["identity"], Identity),
            (&["identity;q=0"], NotAcceptable),
            (&["identity;q=0, gzip"], Encode(Gzip)),
            (&["*;q=0"], NotAcceptable),
            (&["*;q=0, identity"], Identity),
            (&["*;q=0, deflate;q=0.1"], Encode(Deflate)),
            (&["gzip;q=0.5, identity"], Identity),
            (&["gzip;q=1.0, identity;q=1"], Encode(Gzip)),
            (&["gzip ; q=0.8 , deflate;Q=0.9"], Encode(Deflate)),
            (&["gzip;q=2"], Identity),
            (&["gzip;q=0.1234"], Identity),
            (&["gzip;q=", "deflate"], Encode(Deflate)),
            (&["gzip, gzip;q=0"], Encode(Gzip)),
            (&["identity;q=0", "gzip"], Encode(Gzip)),
            (&[",,gzip,,"], Encode(Gzip)),
            (&["gz\u{e9}p, deflate"], Encode(Deflate)),
            (&["gzip;level=9"], Encode(Gzip)),
        ];
        for (fields, want) in cases {
            assert_eq!(choose(fields, true), *want, "{fields:?}");
        }
    }

    #[test]
    fn small_bodies_prefer_identity_unless_it_is_excluded() {
        assert_eq!(choose(&["gzip"], false), Identity);
        assert_eq!(choose(&["identity;q=0, gzip"], false), Encode(Gzip));
        assert_eq!(choose(&["identity;q=0"], false), NotAcceptable);
    }

    #[test]
    fn qvalues() {
        assert_eq!(qvalue(b"0"), Some(0));
        assert_eq!(qvalue(b"0."), Some(0));
        assert_eq!(qvalue(b"0.5"), Some(500));
        assert_eq!(qvalue(b"0.05"), Some(50));
        assert_eq!(qvalue(b"0.123"), Some(123));
        assert_eq!(qvalue(b"1"), Some(1000));
        assert_eq!(qvalue(b"1.000"), Some(1000));
        for bad in ["1.001", "2", "-0", "0.1234", "", ".5", "0,5", "1e0", " 1"] {
            assert_eq!(qvalue(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn whole_and_byte_by_byte_agree() {
        // A field delivered split over several lines of the same name is one list.
        let text = "deflate;q=0.9, gzip;q=0.8, identity;q=0.1";
        let whole = Preferences::parse([text.as_bytes()]);
        let parts: Vec<&[u8]> = text.as_bytes().split(|&b| b == b',').collect();
        assert_eq!(Preferences::parse(parts).choose(true), whole.choose(true));
        assert_eq!(whole.choose(true), Encode(Deflate));
    }

    #[test]
    fn types() {
        for t in [
            "text/plain; charset=utf-8",
            "text/html",
            "application/json",
            "application/javascript; charset=utf-8",
            "image/svg+xml; charset=utf-8",
            "application/wasm",
            "TEXT/CSS",
        ] {
            assert!(compressible_type(t.as_bytes()), "{t}");
        }
        for t in [
            "image/png",
            "image/jpeg",
            "video/mp4",
            "audio/ogg",
            "font/woff2",
            "application/zip",
            "application/gzip",
            "application/octet-stream",
            "",
            "garbage",
            "\u{ff}/x",
        ] {
            assert!(!compressible_type(t.as_bytes()), "{t}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(fields in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4), compress: bool) {
            let p = Preferences::parse(fields.iter().map(Vec::as_slice));
            let _ = p.choose(compress);
        }

        #[test]
        fn never_panics_on_plausible_fields(text in "[a-zA-Z*,; =.0-9-]{0,80}", compress: bool) {
            let p = Preferences::parse([text.as_bytes()]);
            let c = p.choose(compress);
            // The identity is refused only when the field excludes it.
            if c == NotAcceptable {
                prop_assert_eq!(p.identity_weight(), Some(0));
            }
        }

        #[test]
        fn qvalue_never_panics(text in proptest::collection::vec(any::<u8>(), 0..8)) {
            if let Some(q) = qvalue(&text) {
                prop_assert!(q <= 1000);
            }
        }
    }
}
