//! The built component (`target/weft-engine.wasm`, `scripts/build-engine`) imports nothing and
//! exports exactly the world `engine` of `wit/engine.wit`: the same interfaces, functions
//! (resource constructors and methods included) with the same parameter names and types, and
//! the same type definitions.
//!
//! When the component is missing the test fails if `WEFT_REQUIRE_WASM` is set (as
//! `scripts/test` does) and is reported as skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use wasmparser::{Parser, Payload};
use wit_parser::decoding::{decode, DecodedWasm};
use wit_parser::{Handle, Resolve, Type, TypeDefKind, WorldId, WorldItem};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn component() -> Option<Vec<u8>> {
    let path = repo_root().join("target/weft-engine.wasm");
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(_) => {
            assert!(
                std::env::var_os("WEFT_REQUIRE_WASM").is_none(),
                "{} is missing: run scripts/build-engine",
                path.display()
            );
            eprintln!("skipped: {} not built", path.display());
            None
        }
    }
}

/// Top-level (imports, exports) of a component.
fn top_level(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("valid component") {
            Payload::Version { encoding, .. } if depth == 0 => {
                assert_eq!(encoding, wasmparser::Encoding::Component, "not a component");
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    imports.push(import.expect("import").name.0.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    exports.push(export.expect("export").name.0.to_string());
                }
            }
            _ => {}
        }
    }
    (imports, exports)
}

/// A type, written out structurally (named types by name: their definitions are compared
/// separately).
fn ty(resolve: &Resolve, t: &Type) -> String {
    let Type::Id(id) = t else {
        return format!("{t:?}").to_lowercase();
    };
    let def = &resolve.types[*id];
    if let Some(name) = &def.name {
        return name.clone();
    }
    match &def.kind {
        TypeDefKind::List(t) => format!("list<{}>", ty(resolve, t)),
        TypeDefKind::Option(t) => format!("option<{}>", ty(resolve, t)),
        TypeDefKind::Tuple(t) => {
            let items: Vec<_> = t.types.iter().map(|t| ty(resolve, t)).collect();
            format!("tuple<{}>", items.join(", "))
        }
        TypeDefKind::Result(r) => format!(
            "result<{}, {}>",
            r.ok.as_ref().map_or("_".into(), |t| ty(resolve, t)),
            r.err.as_ref().map_or("_".into(), |t| ty(resolve, t))
        ),
        TypeDefKind::Handle(Handle::Own(id)) => {
            format!(
                "own<{}>",
                resolve.types[*id].name.clone().unwrap_or_default()
            )
        }
        TypeDefKind::Handle(Handle::Borrow(id)) => {
            format!(
                "borrow<{}>",
                resolve.types[*id].name.clone().unwrap_or_default()
            )
        }
        TypeDefKind::Type(t) => ty(resolve, t),
        other => format!("{other:?}"),
    }
}

/// A named type's definition.
fn definition(resolve: &Resolve, kind: &TypeDefKind) -> String {
    match kind {
        TypeDefKind::Record(r) => {
            let fields: Vec<_> = r
                .fields
                .iter()
                .map(|f| format!("{}: {}", f.name, ty(resolve, &f.ty)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        TypeDefKind::Variant(v) => {
            let cases: Vec<_> = v
                .cases
                .iter()
                .map(|c| match &c.ty {
                    Some(t) => format!("{}({})", c.name, ty(resolve, t)),
                    None => c.name.clone(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        TypeDefKind::Enum(e) => {
            let cases: Vec<_> = e.cases.iter().map(|c| c.name.as_str()).collect();
            format!("enum {{ {} }}", cases.join(", "))
        }
        TypeDefKind::Resource => "resource".into(),
        TypeDefKind::Type(t) => format!("= {}", ty(resolve, t)),
        other => format!("{other:?}"),
    }
}

/// Every exported interface of `world`: its name, then each named type and function.
fn describe(resolve: &Resolve, world: WorldId) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (key, item) in &resolve.worlds[world].exports {
        let name = resolve.name_world_key(key);
        let WorldItem::Interface { id, .. } = item else {
            out.insert(name, vec![format!("{item:?}")]);
            continue;
        };
        let iface = &resolve.interfaces[*id];
        let mut lines = Vec::new();
        for (type_name, tid) in &iface.types {
            lines.push(format!(
                "type {type_name} {}",
                definition(resolve, &resolve.types[*tid].kind)
            ));
        }
        for (func_name, func) in &iface.functions {
            let params: Vec<_> = func
                .params
                .iter()
                .map(|p| format!("{}: {}", p.name, ty(resolve, &p.ty)))
                .collect();
            let result = func.result.as_ref().map_or("()".into(), |t| ty(resolve, t));
            lines.push(format!(
                "func {func_name}({}) -> {result}",
                params.join(", ")
            ));
        }
        lines.sort();
        out.insert(name, lines);
    }
    assert!(
        resolve.worlds[world].imports.is_empty(),
        "the world imports {:?}",
        resolve.worlds[world].imports.keys().collect::<Vec<_>>()
    );
    out
}

#[test]
fn the_component_imports_nothing() {
    let Some(bytes) = component() else { return };
    let (imports, exports) = top_level(&bytes);
    assert_eq!(
        imports,
        Vec::<String>::new(),
        "the engine must import nothing"
    );
    let mut exports = exports;
    exports.sort();
    assert_eq!(
        exports,
        [
            "weft:engine/http@0.1.0",
            "weft:engine/types@0.1.0",
            "weft:engine/websocket@0.1.0"
        ]
    );
}

#[test]
fn the_component_exports_the_wit_world() {
    let Some(bytes) = component() else { return };
    let DecodedWasm::Component(built, built_world) = decode(&bytes).expect("decodes") else {
        panic!("not a component");
    };
    let mut source = Resolve::default();
    let package = source
        .push_file(repo_root().join("wit/engine.wit"))
        .expect("wit/engine.wit parses");
    let source_world = source
        .select_world(&[package], Some("engine"))
        .expect("world engine");
    let expected = describe(&source, source_world);
    let actual = describe(&built, built_world);
    assert_eq!(expected.keys().count(), 3, "{expected:#?}");
    for (name, lines) in &expected {
        assert!(lines.len() > 3, "{name}: {lines:#?}");
    }
    assert_eq!(
        actual, expected,
        "the component and wit/engine.wit disagree"
    );
}
