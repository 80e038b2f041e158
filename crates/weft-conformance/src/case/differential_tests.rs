//! TEMPORARY: the new parser against the pre-refactor one (`legacy.rs`) on
//! every case file and on many malformed variants of each. Removed with
//! `legacy.rs` once the refactor is done.

#![allow(clippy::vec_init_then_push)]

use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "case") {
            out.push(path);
        }
    }
}

/// Variants of a case text, one line at a time changed.
fn variants(text: &[u8]) -> Vec<Vec<u8>> {
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let mut out = vec![text.to_vec()];
    let join = |ls: &[Vec<u8>]| ls.join(&b'\n');
    let owned: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
    for i in 0..lines.len() {
        let l = lines[i];
        let colon = l.iter().position(|&b| b == b':');
        let mut edits: Vec<Option<Vec<Vec<u8>>>> = Vec::new();
        // Delete, duplicate.
        edits.push(Some(vec![]));
        edits.push(Some(vec![l.to_vec(), l.to_vec()]));
        // Comment, continuation, reset, expect-alive around it.
        edits.push(Some(vec![[l, b" # c"].concat()]));
        edits.push(Some(vec![l.to_vec(), b"+ x\\r\\n".to_vec()]));
        edits.push(Some(vec![l.to_vec(), b"+ \\q".to_vec()]));
        edits.push(Some(vec![b"reset".to_vec(), l.to_vec()]));
        edits.push(Some(vec![l.to_vec(), b"reset".to_vec()]));
        edits.push(Some(vec![b"expect-alive".to_vec(), l.to_vec()]));
        edits.push(Some(vec![b"\t".to_vec(), l.to_vec()]));
        edits.push(Some(vec![[b"  ", l, b"\r"].concat()]));
        if let Some(c) = colon {
            let name = &l[..c];
            // No colon, empty value, odd values.
            let mut nc = l.to_vec();
            nc[c] = b' ';
            edits.push(Some(vec![nc]));
            edits.push(Some(vec![[name, b":"].concat()]));
            for v in [
                &b" x"[..],
                b" 0",
                b" 2",
                b" -1s",
                b" 5 parsecs",
                b" 1.5s # c",
                b" decoded",
                b" decoded why",
                b" split:x",
                b" whole whole",
                b" \\x1",
                b" \xff",
                b" bad name: x",
                b" X-A: \\q",
                b" 4xx",
                b" 2000",
                b" GET HEAD",
            ] {
                edits.push(Some(vec![[name, b":", v].concat()]));
            }
        } else {
            edits.push(Some(vec![[l, b": yes"].concat()]));
            edits.push(Some(vec![[l, b" yes"].concat()]));
        }
        for e in edits.into_iter().flatten() {
            let mut ls: Vec<Vec<u8>> = owned[..i].to_vec();
            ls.extend(e);
            ls.extend_from_slice(&owned[i + 1..]);
            out.push(join(&ls));
        }
    }
    out
}

#[test]
fn new_parser_matches_legacy_on_all_cases_and_variants() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/cases");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut extra: Vec<&[u8]> = vec![
        b"",
        b"\n",
        b"+x\n",
        b"send\n",
        b"send: a\n",
        b"expect-flushed-lines x\nsend: a\n",
        b"shutdown:\nsend: a\nexpect-close\n",
        b"send: a\nexpect-responses: 1\nresponse: 2\nexpect-status: 200\n",
        b"send: a\nexpect-responses: 3\nexpect-body: a\n+b\n\n+c\n",
        b"send: a\nexpect-decoded-body: a\n+b\nexpect: c\n+d\n",
        b"skip:\nsend: a\n",
        b"skip: why\n",
        b"send: a\nexpect-close\nexpect-close\n",
        b"send: a\nexpect-open\nexpect-close\n",
        b"send: a\nreset\nexpect-alive\nexpect-open\n",
    ];
    let texts: Vec<(PathBuf, Vec<u8>)> = files
        .iter()
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .collect();
    let mut n = 0;
    for (path, text) in &texts {
        for v in variants(text) {
            let new = format!("{:?}", super::parse_case("n", path, &v));
            let old = format!("{:?}", super::legacy::parse_case("n", path, &v));
            assert_eq!(
                new,
                old,
                "{}: {:?}",
                path.display(),
                String::from_utf8_lossy(&v)
            );
            n += 1;
        }
    }
    for t in extra.drain(..) {
        let p = Path::new("x.case");
        let new = format!("{:?}", super::parse_case("n", p, t));
        let old = format!("{:?}", super::legacy::parse_case("n", p, t));
        assert_eq!(new, old, "{:?}", String::from_utf8_lossy(t));
    }
    assert!(n > 10_000, "{n}");
}
