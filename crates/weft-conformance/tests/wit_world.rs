//! Each built component imports and exports exactly what its WIT world declares: an
//! accidental new import (an interface a host may not provide) fails these tests.
//!
//! - `weft.wasm` (the raw-socket server): `world server` in wit/weft.wit;
//! - `weft_http_fs.wasm` (wasi:http, files and environment): `world files` in wit/http.wit;
//! - `weft_http_proxy.wasm` (wasi:http, strict): `world proxy` in wit/http.wit, whose
//!   imports must also all belong to the `wasi:http/proxy` world.
//!
//! Build them with `cargo build --release --target wasm32-wasip2 -p weft-server -p
//! weft-http-fs` and `cargo build --release --target wasm32-wasip1 -p weft-http-proxy`
//! (scripts/test does). When one is missing its test fails if `WEFT_REQUIRE_WASM` is set (as
//! `scripts/test` does) and is reported as skipped otherwise.

use std::collections::BTreeSet;
use std::path::PathBuf;

use wasmparser::{Parser, Payload};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What a world declares: its `import NAME;` and `export NAME;` lines.
#[derive(Debug, Default, PartialEq, Eq)]
struct Surface {
    imports: BTreeSet<String>,
    exports: BTreeSet<String>,
}

/// The imports and exports of `world NAME { ... }` in `file` (below wit/).
fn declared(file: &str, world: &str) -> Surface {
    let text = std::fs::read_to_string(repo_root().join("wit").join(file)).expect("a wit file");
    let start = format!("world {world} {{");
    let body = text
        .split_once(&start)
        .unwrap_or_else(|| panic!("no `{start}` in wit/{file}"))
        .1;
    let body = body.split_once("\n}").map_or(body, |(b, _)| b);
    let mut surface = Surface::default();
    for line in body.lines().map(str::trim) {
        let name = |rest: &str| rest.trim_end_matches(';').trim().to_string();
        if let Some(rest) = line.strip_prefix("import ") {
            surface.imports.insert(name(rest));
        } else if let Some(rest) = line.strip_prefix("export ") {
            surface.exports.insert(name(rest));
        }
    }
    surface
}

/// The top-level imports and exports of a component.
fn actual(bytes: &[u8]) -> Surface {
    let mut surface = Surface::default();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("valid component") {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    surface
                        .imports
                        .insert(import.expect("import").name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    surface
                        .exports
                        .insert(export.expect("export").name.name.to_string());
                }
            }
            _ => {}
        }
    }
    surface
}

/// The built component's surface, or `None` (test skipped) when it is not built.
fn built(path: &str) -> Option<Surface> {
    let wasm = repo_root().join(path);
    let Ok(bytes) = std::fs::read(&wasm) else {
        assert!(
            std::env::var_os("WEFT_REQUIRE_WASM").is_none(),
            "{} is missing: build it first (see this file's header)",
            wasm.display()
        );
        eprintln!("skipped: {} not built", wasm.display());
        return None;
    };
    Some(actual(&bytes))
}

fn check(component: &str, file: &str, world: &str) -> Option<Surface> {
    let actual = built(component)?;
    let declared = declared(file, world);
    assert!(
        !actual.imports.is_empty(),
        "no imports found: not a component?"
    );
    let extra: Vec<_> = actual.imports.difference(&declared.imports).collect();
    let unused: Vec<_> = declared.imports.difference(&actual.imports).collect();
    assert!(
        extra.is_empty() && unused.is_empty(),
        "{component} and world {world} of wit/{file} disagree\n  imported but not declared: {extra:?}\n  declared but not imported: {unused:?}"
    );
    if !declared.exports.is_empty() {
        assert_eq!(
            actual.exports, declared.exports,
            "{component} exports other than world {world} of wit/{file} declares"
        );
    }
    Some(actual)
}

#[test]
fn the_socket_server_imports_match_its_world() {
    check(
        "target/wasm32-wasip2/release/weft.wasm",
        "weft.wit",
        "server",
    );
}

#[test]
fn the_http_component_with_files_matches_its_world() {
    check(
        "target/wasm32-wasip2/release/weft_http_fs.wasm",
        "http.wit",
        "files",
    );
}

/// What the `wasi:http/proxy` world (0.2) lets a component import.
const PROXY_WORLD: &[&str] = &[
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:http/types",
    "wasi:http/outgoing-handler",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
];

#[test]
fn the_strict_http_component_stays_inside_the_proxy_world() {
    let Some(actual) = check(
        "target/wasm32-wasip1/release/weft_http_proxy.wasm",
        "http.wit",
        "proxy",
    ) else {
        return;
    };
    for import in &actual.imports {
        let interface = import.split('@').next().unwrap_or(import);
        assert!(
            PROXY_WORLD.contains(&interface),
            "weft_http_proxy.wasm imports {import}, which the wasi:http/proxy world does not offer"
        );
    }
}
