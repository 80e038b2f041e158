//! `weft-engine-pack CORE.wasm OUT.wasm`: encodes the weft-engine core module (built for
//! `wasm32-unknown-unknown` with wit-bindgen's component-type section) as a component, checks
//! that the component imports nothing, and writes it. Used by `scripts/build-engine`.

use std::process::ExitCode;

use wasmparser::{Parser, Payload};
use wit_component::ComponentEncoder;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: weft-engine-pack CORE.wasm OUT.wasm");
        return ExitCode::from(2);
    };
    match pack(input, output) {
        Ok(size) => {
            println!("weft-engine-pack: wrote {output} ({size} bytes)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weft-engine-pack: {e}");
            ExitCode::FAILURE
        }
    }
}

fn pack(input: &str, output: &str) -> Result<usize, String> {
    let module = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
    let component = ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .map_err(|e| format!("{input}: {e:#}"))?
        .encode()
        .map_err(|e| format!("encoding {input}: {e:#}"))?;
    let imports = top_level_imports(&component)?;
    if !imports.is_empty() {
        return Err(format!(
            "the component imports {imports:?}: the engine must import nothing"
        ));
    }
    // An unchanged component keeps its file (and its time stamp: what is built from it is
    // not rebuilt).
    if std::fs::read(output).ok().as_deref() != Some(component.as_slice()) {
        std::fs::write(output, &component).map_err(|e| format!("{output}: {e}"))?;
    }
    Ok(component.len())
}

/// The names the component imports at its top level.
fn top_level_imports(component: &[u8]) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        match payload.map_err(|e| format!("not a valid component: {e}"))? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| format!("bad import: {e}"))?;
                    names.push(import.name.0.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}
