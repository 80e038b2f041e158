//! `weft-conformance`: runs the transcript suite against a server.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use weft_conformance::case::{parse_duration, Case};
use weft_conformance::fuzz::{corpus, run_fuzz, FuzzReport, FuzzSettings};
use weft_conformance::run::Timing;
use weft_conformance::suite::{
    compare_targets, load_cases, run_suite, CaseResult, Settings, Status,
};
use weft_conformance::target::{AddrTarget, ProcessSpec, ProcessTarget, Target};

mod profile_cli;

const USAGE: &str = "\
usage: weft-conformance [OPTIONS]

Replays the .case transcripts under conformance/cases against a server.

targets:
  --target native          start target/release/weft on the fixture site (default)
  --target wasm            start weft.wasm under wasmtime on the fixture site
  --target all             both; cases whose normalised bytes differ between them fail
  --target serve           weft-http-fs.wasm under `wasmtime serve` on the fixture site,
                           compared with the native build on the application's cases
                           (the host's HTTP stack decides the rest: not applicable)
  --target addr=HOST:PORT  a server already running on loopback
  --target engine-host     start target/release/weft-host (the protocol engine component under
                           a wasmtime host) on the fixture site; compared without the fields
                           weft's application adds (conformance/README.md)
  --target node-host       the same engine component under the Node host
                           (js/weft-engine/bin/weft-node.js; scripts/build-engine --js),
                           compared by the same rule

options:
  --weft PATH              native binary (default: <repo>/target/release/weft)
  --wasm PATH              component (default: <repo>/target/wasm32-wasip2/release/weft.wasm)
  --wasmtime PATH          wasmtime executable (default: found on PATH)
  --http-wasm PATH         wasi:http component for --target serve (default:
                           <repo>/target/wasm32-wasip2/release/weft_http_fs.wasm)
  --engine-host PATH       weft-host binary (default: <repo>/target/release/weft-host)
  --node PATH              node executable for --target node-host (default: found on PATH)
  --cases DIR              cases directory (default: <repo>/conformance/cases)
  --site DIR               fixture site (default: <repo>/conformance/fixtures/site)
  --filter SUBSTR          run only cases whose name contains SUBSTR (repeatable: any matches)
  -j, --jobs N             run N cases at a time (default 1)
  --bless                  rewrite the expect: payloads of the selected exact-mode cases
                           from what the target answered
  --timeout DUR            default per-case read timeout (default 3s)
  --quiet DUR              silence that ends reading once the expectation is met (default 100ms)
  --startup-timeout DUR    wait for the server's listening line (default 10s native, 60s wasm)
  --fuzz N[:SEED]          after the cases, send N seeded pseudo-random inputs (mutated case
                           bytes, random bytes, reset bursts) to each target; the target must
                           survive and answer with parseable HTTP/1.1 (default SEED: random)
  --fuzz-only              run the fuzz pass without the cases
  --list                   print the selected case names and exit

portable RFC profile (cases under conformance/rfc; see conformance/README.md):
  --profile rfc            run the portable profile: graded pass / warn / fail per category;
                           exit status 1 only when a MUST is broken
  --file-url PATH          URL path of a static file of the server (ranges, conditionals, ...)
  --file-bytes FILE        that file's exact bytes (at least 100)
  --ws-url PATH            URL path of a WebSocket echo (websocket categories)
  --category NAME          only this category (repeatable)
  --case ID                only this case (repeatable)
  --json FILE / --junit FILE   also write the results as JSON / JUnit XML
  --server-name NAME       the server's name in the reports (default: the target)
  --catalogue              print the catalogue (Markdown) and exit
  -v, --verbose            also print passing cases
  -h, --help               this text

Exit status: 0 when every case passed, 1 when any failed, 2 on a usage or setup error.";

#[derive(Clone, Debug, PartialEq, Eq)]
enum TargetArg {
    Native,
    Wasm,
    All,
    /// The application's cases on a wasi:http host, compared with native.
    Serve,
    Addr(String),
    EngineHost,
    NodeHost,
}

#[derive(Debug)]
struct Args {
    target: TargetArg,
    weft: Option<PathBuf>,
    wasm: Option<PathBuf>,
    wasmtime: Option<PathBuf>,
    http_wasm: Option<PathBuf>,
    engine_host: Option<PathBuf>,
    node: Option<PathBuf>,
    cases: Option<PathBuf>,
    site: Option<PathBuf>,
    filters: Vec<String>,
    jobs: usize,
    bless: bool,
    timeout: Option<Duration>,
    quiet: Option<Duration>,
    startup_timeout: Option<Duration>,
    list: bool,
    verbose: bool,
    /// `--fuzz N[:SEED]`: inputs and seed (None: random).
    fuzz: Option<(usize, Option<u64>)>,
    fuzz_only: bool,
    /// The portable profile's flags (`--profile rfc` and the rest).
    profile: profile_cli::ProfileArgs,
}

/// Parses `N` or `N:SEED`.
fn parse_fuzz(v: &str) -> Result<(usize, Option<u64>), String> {
    let bad = || format!("bad --fuzz value {v:?} (want N or N:SEED, e.g. 2000 or 2000:7)");
    let (n, seed) = match v.split_once(':') {
        Some((n, seed)) => (n, Some(seed.parse::<u64>().map_err(|_| bad())?)),
        None => (v, None),
    };
    let n = n
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(bad)?;
    Ok((n, seed))
}

fn parse_args(argv: Vec<String>) -> Result<Option<Args>, String> {
    let mut a = Args {
        target: TargetArg::Native,
        weft: None,
        wasm: None,
        wasmtime: None,
        http_wasm: None,
        engine_host: None,
        node: None,
        cases: None,
        site: None,
        filters: Vec::new(),
        jobs: 0,
        bless: false,
        timeout: None,
        quiet: None,
        startup_timeout: None,
        list: false,
        verbose: false,
        fuzz: None,
        fuzz_only: false,
        profile: Default::default(),
    };
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ if arg.starts_with("-j") && arg.len() > 2 => {
                ("-j".to_string(), Some(arg[2..].to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        let dur = |s: String| parse_duration(&s);
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--target" => {
                let v = value("--target")?;
                a.target = match v.as_str() {
                    "native" => TargetArg::Native,
                    "wasm" => TargetArg::Wasm,
                    "all" => TargetArg::All,
                    "serve" => TargetArg::Serve,
                    "engine-host" => TargetArg::EngineHost,
                    "node-host" => TargetArg::NodeHost,
                    _ => match v.strip_prefix("addr=") {
                        Some(addr) => TargetArg::Addr(addr.to_string()),
                        None => {
                            return Err(format!(
                                "unknown target {v:?} (native, wasm, all, serve, engine-host, node-host, addr=HOST:PORT)"
                            ))
                        }
                    },
                };
            }
            "--weft" => a.weft = Some(value("--weft")?.into()),
            "--wasm" => a.wasm = Some(value("--wasm")?.into()),
            "--wasmtime" => a.wasmtime = Some(value("--wasmtime")?.into()),
            "--http-wasm" => a.http_wasm = Some(value("--http-wasm")?.into()),
            "--engine-host" => a.engine_host = Some(value("--engine-host")?.into()),
            "--node" => a.node = Some(value("--node")?.into()),
            "--cases" => a.cases = Some(value("--cases")?.into()),
            "--site" => a.site = Some(value("--site")?.into()),
            "--filter" => a.filters.push(value("--filter")?),
            "-j" | "--jobs" => {
                let v = value("-j")?;
                a.jobs = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or(format!("bad job count {v:?}"))?;
            }
            "--bless" => a.bless = true,
            "--timeout" => a.timeout = Some(dur(value("--timeout")?)?),
            "--quiet" => a.quiet = Some(dur(value("--quiet")?)?),
            "--startup-timeout" => a.startup_timeout = Some(dur(value("--startup-timeout")?)?),
            "--fuzz" => a.fuzz = Some(parse_fuzz(&value("--fuzz")?)?),
            "--fuzz-only" => a.fuzz_only = true,
            "--list" => a.list = true,
            "-v" | "--verbose" => a.verbose = true,
            f if profile_cli::is_flag(f) => {
                a.profile.set(f, &mut value)?;
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
        if inline.is_some()
            && matches!(
                flag.as_str(),
                "--bless" | "--list" | "--verbose" | "--help" | "--fuzz-only" | "--catalogue"
            )
        {
            return Err(format!("{flag} takes no value"));
        }
    }
    if a.bless
        && matches!(
            a.target,
            TargetArg::All | TargetArg::Serve | TargetArg::EngineHost | TargetArg::NodeHost
        )
    {
        return Err("--bless needs one of weft's own builds (native, wasm or addr=...)".into());
    }
    if a.target == TargetArg::Serve && a.fuzz.is_some() {
        return Err("--fuzz tests weft's own HTTP parsing: not with --target serve".into());
    }
    if a.target == TargetArg::Serve && a.profile.profile {
        return Err("--profile rfc grades a server's HTTP; behind --target serve that is wasmtime's, not weft's".into());
    }
    if a.profile.profile && (a.bless || a.fuzz.is_some()) {
        return Err("--profile rfc takes neither --bless nor --fuzz".into());
    }
    if a.fuzz_only && a.fuzz.is_none() {
        return Err("--fuzz-only needs --fuzz N[:SEED]".into());
    }
    Ok(Some(a))
}

fn is_root(dir: &Path) -> bool {
    dir.join("conformance").is_dir()
        && std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
}

/// The repository root: the nearest ancestor of the current directory with a
/// workspace Cargo.toml and a conformance/ folder, else the one this crate
/// was built in.
fn find_root() -> Result<PathBuf, String> {
    if let Ok(cwd) = std::env::current_dir() {
        if let Some(root) = cwd.ancestors().find(|d| is_root(d)) {
            return Ok(root.to_path_buf());
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if is_root(&built) {
        return built
            .canonicalize()
            .map_err(|e| format!("{}: {e}", built.display()));
    }
    Err("cannot find the weft repository root (a directory with a workspace Cargo.toml and conformance/); run from inside the repo".into())
}

fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

/// A seed for `--fuzz N` without one: from the clock and the process id.
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut z = nanos ^ (u64::from(std::process::id()) << 32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % 1_000_000
}

fn main() {
    let code = real_main();
    std::process::exit(code);
}

fn real_main() -> i32 {
    let args = match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("weft-conformance: {e}\n\n{USAGE}");
            return 2;
        }
    };
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("weft-conformance: {e}");
            2
        }
    }
}

fn run(mut args: Args) -> Result<i32, String> {
    if args.profile.profile {
        return profile_cli::run_profile(args);
    }
    args.jobs = args.jobs.max(1);
    let root = find_root();
    let need_root = |what: &str| root.clone().map_err(|e| format!("{e} (or pass {what})"));
    let cases_dir = match args.cases.clone() {
        Some(d) => absolute(d),
        None => need_root("--cases")?.join("conformance").join("cases"),
    };
    let mut cases: Vec<Case> = load_cases(&cases_dir).map_err(|errs| errs.join("\n"))?;
    let total = cases.len();
    // The fuzz corpus: what every loaded case sends, whatever the filter.
    let fuzz_corpus = corpus(&cases);
    if args.fuzz_only {
        cases.clear();
    } else if !args.filters.is_empty() {
        cases.retain(|c| args.filters.iter().any(|f| c.name.contains(f.as_str())));
    }
    if args.list {
        for c in &cases {
            println!(
                "{}{}",
                c.name,
                c.desc
                    .as_deref()
                    .map(|d| format!("  # {d}"))
                    .unwrap_or_default()
            );
        }
        return Ok(0);
    }
    let serve = args.target == TargetArg::Serve;
    if serve {
        let skipped = weft_conformance::serve::not_applicable(&cases);
        let count: usize = skipped.values().sum();
        let groups: Vec<String> = skipped.iter().map(|(g, n)| format!("{g} {n}")).collect();
        println!(
            "not applicable on serve (the host's HTTP stack decides): {count} case(s): {}",
            groups.join(", ")
        );
        cases.retain(weft_conformance::serve::applicable);
        cases
            .iter_mut()
            .for_each(weft_conformance::serve::compare_only);
    }
    if cases.is_empty() && args.fuzz.is_none() {
        return Err(format!(
            "no case selected ({total} found under {})",
            cases_dir.display()
        ));
    }

    let mut timing = Timing::default();
    if let Some(t) = args.timeout {
        timing.timeout = t;
    }
    if let Some(q) = args.quiet {
        timing.quiet = q;
    }
    if matches!(args.target, TargetArg::EngineHost | TargetArg::NodeHost) {
        timing.dropped_fields = weft_conformance::run::ENGINE_HOST_DROPPED;
    }
    let settings = Settings {
        timing,
        jobs: args.jobs,
        bless: args.bless,
        verbose: args.verbose,
        show_target: matches!(args.target, TargetArg::All | TargetArg::Serve),
        transcripts_only: serve,
    };

    // Build every target spec first so that a missing binary fails fast.
    let (specs, addr_target) = target_specs(&args, &root)?;

    let fuzz = args.fuzz.map(|(n, seed)| {
        let seed = seed.unwrap_or_else(random_seed);
        let out_dir = match &root {
            Ok(r) => r.join("target"),
            Err(_) => absolute("target".into()),
        };
        FuzzSettings::new(n, seed, out_dir)
    });
    let mut fuzz_reports: Vec<(String, FuzzReport)> = Vec::new();
    let mut fuzz_pass = |t: &mut dyn Target, label: &str| {
        let Some(f) = &fuzz else { return };
        eprintln!(
            "weft-conformance: fuzzing {label} at {} with {} input(s), seed {} ({} corpus entries)",
            t.addr(),
            f.count,
            f.seed,
            fuzz_corpus.len()
        );
        let rep = run_fuzz(t, &fuzz_corpus, f, label);
        println!("{}", rep.summary(label, f.seed));
        fuzz_reports.push((label.to_string(), rep));
    };

    let mut results: Vec<(String, Vec<CaseResult>)> = Vec::new();
    if let Some(mut t) = addr_target {
        eprintln!(
            "weft-conformance: {} case(s) against {}",
            cases.len(),
            t.addr()
        );
        let r = run_suite(&mut t, &mut cases, &settings);
        results.push(("addr".into(), r));
        fuzz_pass(&mut t, "addr");
    }
    for spec in specs {
        let label = spec.label.clone();
        let mut t = ProcessTarget::start(spec)?;
        if !cases.is_empty() {
            eprintln!(
                "weft-conformance: {} case(s) against {label} at {} (server log: {})",
                cases.len(),
                t.addr(),
                t.log_path().display()
            );
        }
        let r = run_suite(&mut t, &mut cases, &settings);
        fuzz_pass(&mut t, &label);
        drop(t);
        results.push((label, r));
    }

    let mut core_answers = Vec::new();
    let cross = if serve && results.len() == 2 {
        let comparison = weft_conformance::serve::compare_application(
            &cases,
            (&results[0].0, &results[0].1),
            (&results[1].0, &results[1].1),
        );
        for msg in comparison.failures.values() {
            print!("{msg}");
        }
        if !comparison.core_answers.is_empty() {
            let names: Vec<&str> = comparison
                .core_answers
                .iter()
                .map(|&i| cases[i].name.as_str())
                .collect();
            println!(
                "not applicable on serve (answered by native's protocol core, by the host's parser here): {} case(s): {}",
                names.len(),
                names.join(", ")
            );
        }
        core_answers = comparison.core_answers;
        comparison.failures
    } else if results.len() == 2 {
        let diffs = compare_targets(
            &cases,
            (&results[0].0, &results[0].1),
            (&results[1].0, &results[1].1),
        );
        for msg in diffs.values() {
            print!("{msg}");
        }
        diffs
    } else {
        Default::default()
    };

    let (mut passed, mut failed, mut skipped, mut blessed) = (0, 0, 0, 0);
    for (i, case) in cases.iter().enumerate() {
        let statuses: Vec<Status> = results.iter().map(|(_, r)| r[i].status).collect();
        blessed += results.iter().filter(|(_, r)| r[i].blessed).count();
        if case.skip.is_some() || core_answers.contains(&i) {
            skipped += 1;
        } else if statuses.iter().all(|s| *s == Status::Passed) && !cross.contains_key(&i) {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    // Each target's fuzz run counts as one item.
    for (_, rep) in &fuzz_reports {
        if rep.passed() {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    if blessed > 0 {
        println!("blessed {blessed} case file(s)");
    }
    if skipped > 0 {
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    } else {
        println!("{passed} passed, {failed} failed");
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

/// The servers to start (native, wasm) or the one already running (`addr=`).
fn target_specs(
    args: &Args,
    root: &Result<PathBuf, String>,
) -> Result<(Vec<ProcessSpec>, Option<AddrTarget>), String> {
    let need_root = |what: &str| root.clone().map_err(|e| format!("{e} (or pass {what})"));
    let mut specs = Vec::new();
    let mut addr_target = None;
    match &args.target {
        TargetArg::Addr(a) => addr_target = Some(AddrTarget::new(a)?),
        t => {
            let root = need_root("--weft/--wasm and --site")?;
            let site = absolute(
                args.site
                    .clone()
                    .unwrap_or_else(|| root.join("conformance/fixtures/site")),
            );
            if matches!(t, TargetArg::Native | TargetArg::All | TargetArg::Serve) {
                let weft = absolute(
                    args.weft
                        .clone()
                        .unwrap_or_else(|| root.join("target/release/weft")),
                );
                let st = args.startup_timeout.unwrap_or(Duration::from_secs(10));
                specs.push(ProcessSpec::native(&weft, &site, &root, st)?);
            }
            if matches!(t, TargetArg::Wasm | TargetArg::All) {
                let wasm = absolute(
                    args.wasm
                        .clone()
                        .unwrap_or_else(|| root.join("target/wasm32-wasip2/release/weft.wasm")),
                );
                let st = args.startup_timeout.unwrap_or(Duration::from_secs(60));
                specs.push(ProcessSpec::wasm(
                    args.wasmtime.as_deref(),
                    &wasm,
                    &site,
                    &root,
                    st,
                )?);
            }
            if *t == TargetArg::EngineHost {
                let host = absolute(
                    args.engine_host
                        .clone()
                        .unwrap_or_else(|| root.join("target/release/weft-host")),
                );
                let st = args.startup_timeout.unwrap_or(Duration::from_secs(60));
                specs.push(ProcessSpec::engine_host(&host, &site, &root, st)?);
            }
            if *t == TargetArg::NodeHost {
                let st = args.startup_timeout.unwrap_or(Duration::from_secs(60));
                specs.push(ProcessSpec::node_host(
                    args.node.as_deref(),
                    &site,
                    &root,
                    st,
                )?);
            }
            if *t == TargetArg::Serve {
                let component = absolute(args.http_wasm.clone().unwrap_or_else(|| {
                    root.join("target/wasm32-wasip2/release/weft_http_fs.wasm")
                }));
                let st = args.startup_timeout.unwrap_or(Duration::from_secs(60));
                specs.push(ProcessSpec::serve(
                    args.wasmtime.as_deref(),
                    &component,
                    &site,
                    &root,
                    st,
                )?);
            }
        }
    }

    Ok((specs, addr_target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        parse_args(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn cli_flags() {
        let a = args(&[
            "--target",
            "addr=127.0.0.1:9",
            "--filter=basics",
            "-j4",
            "--bless",
            "--quiet",
            "50ms",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.target, TargetArg::Addr("127.0.0.1:9".into()));
        assert_eq!(a.filters, vec!["basics"]);
        assert_eq!(a.jobs, 4);
        assert!(a.bless);
        assert_eq!(a.quiet, Some(Duration::from_millis(50)));
        assert_eq!(args(&["-j", "2"]).unwrap().unwrap().jobs, 2);
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--target", "mars"]).is_err());
        assert!(args(&["-j", "0"]).is_err());
        assert!(args(&["--timeout"]).is_err());
        assert!(args(&["--bless", "--target", "all"]).is_err());
        assert!(args(&["--wat"]).is_err());
        assert_eq!(
            args(&["--fuzz", "2000"]).unwrap().unwrap().fuzz,
            Some((2000, None))
        );
        let a = args(&["--fuzz=10:7", "--fuzz-only"]).unwrap().unwrap();
        assert_eq!(a.fuzz, Some((10, Some(7))));
        assert!(a.fuzz_only);
        assert!(args(&["--fuzz", "0"]).is_err());
        assert!(args(&["--fuzz", "10:x"]).is_err());
        assert!(args(&["--fuzz", "ten"]).is_err());
        assert!(args(&["--fuzz-only"]).is_err());
    }

    #[test]
    fn profile_flags() {
        let a = args(&[
            "--profile",
            "rfc",
            "--file-url=/lorem.txt",
            "--file-bytes",
            "x.txt",
            "--ws-url",
            "/echo",
            "--category",
            "host",
            "--case",
            "rl-get-file",
            "--json",
            "r.json",
            "--junit",
            "r.xml",
            "--catalogue",
        ])
        .unwrap()
        .unwrap();
        let p = &a.profile;
        assert!(p.profile && p.catalogue);
        assert_eq!(p.file_url.as_deref(), Some("/lorem.txt"));
        assert_eq!(p.ws_url.as_deref(), Some("/echo"));
        assert_eq!((p.categories.len(), p.cases.len()), (1, 1));
        assert_eq!(a.jobs, 0, "unset: the profile picks its own default");
        assert!(args(&["--profile", "nginx"]).is_err());
        assert!(args(&["--file-url", "lorem.txt"]).is_err());
        assert!(args(&["--profile", "rfc", "--bless"]).is_err());
        assert!(args(&["--profile", "rfc", "--fuzz", "10"]).is_err());
        assert!(args(&["--catalogue=yes"]).is_err());
    }
}
