//! The portable RFC profile (`conformance/rfc`): it parses, every case carries its requirement,
//! and `docs/CONFORMANCE-CATALOGUE.md` is what the cases generate (regenerate it with
//! `WEFT_CATALOGUE_UPDATE=1 cargo test -p weft-conformance --test rfc_profile`, or
//! `weft-conformance --profile rfc --catalogue > docs/CONFORMANCE-CATALOGUE.md`).

use std::path::PathBuf;

use weft_conformance::case::{Check, Expectation, Level};
use weft_conformance::profile::{catalogue, load_profile, Offer};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn profile_parses_with_requirements() {
    let cases = load_profile(&repo_root().join("conformance/rfc"), &Offer::default())
        .unwrap_or_else(|e| panic!("{}", e.join("\n")));
    assert!(cases.len() >= 350, "only {} cases", cases.len());
    for c in &cases {
        let q = c.rfc.as_ref().expect("rfc:");
        assert!([9110, 9112, 6455, 7692].contains(&q.spec), "{}", c.name);
        assert!(
            c.reason.as_deref().is_some_and(|r| !r.is_empty()),
            "{}",
            c.name
        );
        // Portable: never exact bytes.
        assert!(
            !matches!(c.expect, Expectation::Exact(_)),
            "{} is exact",
            c.name
        );
        // Without an offer, the cases that need the file or the echo are skipped.
        assert_eq!(c.skip.is_some(), !c.needs.is_empty(), "{}", c.name);
    }
    for cat in [
        "request-line",
        "fields",
        "host",
        "smuggling",
        "websocket-frames",
    ] {
        assert!(cases.iter().any(|c| c.group() == cat), "no {cat} case");
    }
    assert!(cases
        .iter()
        .any(|c| c.rfc.as_ref().is_some_and(|q| q.level == Level::Should)));
}

#[test]
fn offer_fills_file_checks_and_unskips() {
    let file: Vec<u8> = (0..200u8).collect();
    let offer = Offer {
        file_url: Some("/f.bin".into()),
        file_bytes: Some(file.clone()),
        ws_url: Some("/echo".into()),
    };
    let cases = load_profile(&repo_root().join("conformance/rfc"), &offer)
        .unwrap_or_else(|e| panic!("{}", e.join("\n")));
    assert!(cases.iter().all(|c| c.skip.is_none()));
    let first5 = cases
        .iter()
        .find(|c| c.name == "ranges/rng-first-5")
        .expect("rng-first-5");
    let Expectation::Assert { assertions, .. } = &first5.expect else {
        panic!("assertions")
    };
    assert!(assertions
        .iter()
        .any(|a| a.check == Check::Body(file[..5].to_vec())));
    assert!(assertions.iter().any(
        |a| matches!(&a.check, Check::Header { value: Some(v), .. } if v == b"bytes 0-4/200")
    ));
    assert!(!format!("{:?}", first5.steps).contains("{file}"));
}

#[test]
fn catalogue_is_current() {
    let cases = load_profile(&repo_root().join("conformance/rfc"), &Offer::default())
        .unwrap_or_else(|e| panic!("{}", e.join("\n")));
    let want = catalogue(&cases);
    let path = repo_root().join("docs/CONFORMANCE-CATALOGUE.md");
    if std::env::var_os("WEFT_CATALOGUE_UPDATE").is_some() {
        std::fs::write(&path, &want).expect("write the catalogue");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/CONFORMANCE-CATALOGUE.md is stale: regenerate it with \
         WEFT_CATALOGUE_UPDATE=1 cargo test -p weft-conformance --test rfc_profile"
    );
}
