//! Every case file under `conformance/cases` parses to the same structure as
//! recorded in `tests/case_snapshot.txt`: one line per file, `NAME LEN DIGEST`,
//! where DIGEST is the FNV-1a 64 hash (hex) of the `{:#?}` rendering of the
//! parse result (`Ok(Case)` or `Err(ParseError)`) and LEN its length.
//!
//! This guards refactors of the case parser: any change in what a recorded case
//! file parses to shows up as a digest mismatch naming the file (files added
//! since the snapshot are not compared until it is regenerated). When the parsed
//! structure changes on purpose (a new field, a new directive used by a case),
//! regenerate the snapshot with
//! `WEFT_CASE_SNAPSHOT_UPDATE=1 cargo test -p weft-conformance --test case_snapshot`
//! and review the diff of `case_snapshot.txt` (only the files you expect
//! should change).

use std::path::{Path, PathBuf};

use weft_conformance::case::parse_case;
use weft_conformance::suite::{case_files, case_name};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `NAME LEN DIGEST` for every case file, sorted by name.
fn current_snapshot() -> String {
    let cases = repo_root().join("conformance/cases");
    let mut out = String::new();
    for path in case_files(&cases).expect("read cases dir") {
        let name = case_name(&cases, &path);
        let rel = path.strip_prefix(&cases).expect("under cases dir");
        // A path independent of where the repository is checked out.
        let shown = Path::new("conformance/cases").join(rel);
        let text = std::fs::read(&path).expect("read case file");
        let rendering = format!("{:#?}", parse_case(&name, &shown, &text));
        out.push_str(&format!(
            "{name} {} {:016x}\n",
            rendering.len(),
            fnv1a64(rendering.as_bytes())
        ));
    }
    out
}

#[test]
fn every_case_file_parses_as_recorded() {
    let snapshot_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/case_snapshot.txt");
    let now = current_snapshot();
    if std::env::var_os("WEFT_CASE_SNAPSHOT_UPDATE").is_some() {
        std::fs::write(&snapshot_path, &now).expect("write snapshot");
        return;
    }
    let recorded = std::fs::read_to_string(&snapshot_path).expect("tests/case_snapshot.txt");
    // Compared by file: a case added or removed since the snapshot is no difference (the
    // snapshot guards what existing cases parse to; regenerate it to cover new ones).
    let name = |line: &str| line.split(' ').next().unwrap_or("").to_string();
    let now_by_name: std::collections::HashMap<String, &str> =
        now.lines().map(|l| (name(l), l)).collect();
    let differing: Vec<String> = recorded
        .lines()
        .filter_map(|rec| {
            let current = now_by_name.get(&name(rec))?;
            (*current != rec).then(|| format!("recorded: {rec}\nnow:      {current}"))
        })
        .collect();
    let compared = recorded
        .lines()
        .filter(|rec| now_by_name.contains_key(&name(rec)))
        .count();
    assert!(compared > 0, "no recorded case file exists any more");
    assert!(
        differing.is_empty(),
        "{} of {} case files parse differently from tests/case_snapshot.txt:\n{}",
        differing.len(),
        compared,
        differing.join("\n")
    );
}
