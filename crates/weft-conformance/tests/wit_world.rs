//! The built component imports exactly what `wit/weft.wit` declares: an accidental new import
//! (an interface a host may not provide) fails this test.
//!
//! Needs `target/wasm32-wasip2/release/weft.wasm` (`cargo build --release --target
//! wasm32-wasip2 -p weft-server`). When it is missing the test fails if `WEFT_REQUIRE_WASM`
//! is set (as `scripts/test` does) and is reported as skipped otherwise.

use std::collections::BTreeSet;
use std::path::PathBuf;

use wasmparser::{Parser, Payload};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `import NAME;` lines of the `world server` in wit/weft.wit.
fn declared_imports() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo_root().join("wit/weft.wit")).expect("wit/weft.wit");
    text.lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("import "))
        .map(|l| l.trim_end_matches(';').trim().to_string())
        .collect()
}

/// The top-level component imports of the built component.
fn component_imports(bytes: &[u8]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("valid component") {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    names.insert(import.expect("import").name.name.to_string());
                }
            }
            _ => {}
        }
    }
    names
}

#[test]
fn component_imports_match_the_wit_world() {
    let wasm = repo_root().join("target/wasm32-wasip2/release/weft.wasm");
    let Ok(bytes) = std::fs::read(&wasm) else {
        assert!(
            std::env::var_os("WEFT_REQUIRE_WASM").is_none(),
            "{} is missing: build it first",
            wasm.display()
        );
        eprintln!("skipped: {} not built", wasm.display());
        return;
    };
    let actual = component_imports(&bytes);
    let declared = declared_imports();
    assert!(!actual.is_empty(), "no imports found: not a component?");
    let extra: Vec<_> = actual.difference(&declared).collect();
    let unused: Vec<_> = declared.difference(&actual).collect();
    assert!(
        extra.is_empty() && unused.is_empty(),
        "the component and wit/weft.wit disagree\n  imported but not declared: {extra:?}\n  declared but not imported: {unused:?}"
    );
}
