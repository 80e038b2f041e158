//! Compiles the site and the options into `weft-http-proxy.wasm` (the proxy world has no
//! filesystem and no environment), and links the component with the proxy adapter, so that
//! it imports nothing beyond the `wasi:http/proxy` world.
//!
//! - `WEFT_SITE=DIR`: the files to serve (every regular file below DIR; a relative DIR is
//!   taken from the repository root); unset: the built-in demo site.
//! - `WEFT_*` options (the names of `weft_app::demo_options`): read here, at build time, and
//!   applied by the component as the other components apply their environment.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Stops the build with `message`.
fn fail(message: String) -> ! {
    eprintln!("weft-http-proxy: {message}");
    std::process::exit(1);
}

fn files_below(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(format!("WEFT_SITE: cannot read {}: {e}", dir.display())));
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        // Follows links, as a directory served from disk would.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => files_below(&path, &rel, out),
            Ok(m) if m.is_file() => out.push((rel, path)),
            _ => {}
        }
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=WEFT_SITE");
    println!(
        "cargo:rerun-if-env-changed={}",
        weft_app::demo_options::ROOT_ENV
    );
    let mut code = String::new();
    match std::env::var_os("WEFT_SITE") {
        Some(dir) => {
            let manifest = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
            let dir = Path::new(&manifest).join("../..").join(dir);
            let dir = std::fs::canonicalize(&dir)
                .unwrap_or_else(|e| fail(format!("WEFT_SITE={}: {e}", dir.display())));
            println!("cargo:rerun-if-changed={}", dir.display());
            let mut files = Vec::new();
            files_below(&dir, "", &mut files);
            code.push_str("pub static SITE: Option<&[(&str, &[u8])]> = Some(&[\n");
            for (name, path) in files {
                let _ = writeln!(
                    code,
                    "    ({name:?}, include_bytes!({:?})),",
                    path.display().to_string()
                );
            }
            code.push_str("]);\n");
        }
        None => code.push_str("pub static SITE: Option<&[(&str, &[u8])]> = None;\n"),
    }
    code.push_str("pub static OPTIONS: &[(&str, &str)] = &[\n");
    for option in weft_app::demo_options::APP_OPTIONS {
        println!("cargo:rerun-if-env-changed={}", option.env);
        if let Ok(value) = std::env::var(option.env) {
            let _ = writeln!(code, "    ({:?}, {value:?}),", option.env);
        }
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    std::fs::write(out.join("site.rs"), code)
        .unwrap_or_else(|e| fail(format!("cannot write {}/site.rs: {e}", out.display())));
}
