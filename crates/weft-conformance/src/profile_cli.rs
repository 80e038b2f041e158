//! `--profile rfc`: the command-line side of the portable profile (flags,
//! running it category by category, the summary and the report files).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use weft_conformance::case::Case;
use weft_conformance::profile::{
    catalogue, graded, id, json_report, junit_report, list_line, load_profile, Grade, Offer, Tally,
    MIN_FILE_LEN,
};
use weft_conformance::run::Timing;
use weft_conformance::suite::{run_suite, CaseResult, Settings};
use weft_conformance::target::{ProcessTarget, Target};

use super::{absolute, find_root, target_specs, Args};

/// The profile's flags.
#[derive(Debug, Default)]
pub struct ProfileArgs {
    pub profile: bool,
    pub file_url: Option<String>,
    pub file_bytes: Option<PathBuf>,
    pub ws_url: Option<String>,
    pub categories: Vec<String>,
    pub cases: Vec<String>,
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub server_name: Option<String>,
    pub catalogue: bool,
}

const FLAGS: [&str; 10] = [
    "--profile",
    "--file-url",
    "--file-bytes",
    "--ws-url",
    "--category",
    "--case",
    "--json",
    "--junit",
    "--server-name",
    "--catalogue",
];

pub fn is_flag(f: &str) -> bool {
    FLAGS.contains(&f)
}

/// Default read timeout of a profile case (the cases that wait for a
/// server's close are bounded by it).
const PROFILE_TIMEOUT: Duration = Duration::from_secs(2);
/// Default parallelism of the profile.
const PROFILE_JOBS: usize = 8;

impl ProfileArgs {
    pub fn set(
        &mut self,
        flag: &str,
        value: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<(), String> {
        let url = |v: String, f: &str| {
            if v.starts_with('/') && !v.bytes().any(|b| b <= b' ' || b == 0x7f) {
                Ok(v)
            } else {
                Err(format!("{f} takes a URL path starting with '/', got {v:?}"))
            }
        };
        match flag {
            "--profile" => {
                let v = value(flag)?;
                if v != "rfc" {
                    return Err(format!("unknown profile {v:?} (known: rfc)"));
                }
                self.profile = true;
            }
            "--file-url" => self.file_url = Some(url(value(flag)?, flag)?),
            "--file-bytes" => self.file_bytes = Some(value(flag)?.into()),
            "--ws-url" => self.ws_url = Some(url(value(flag)?, flag)?),
            "--category" => self.categories.push(value(flag)?),
            "--case" => self.cases.push(value(flag)?),
            "--json" => self.json = Some(value(flag)?.into()),
            "--junit" => self.junit = Some(value(flag)?.into()),
            "--server-name" => self.server_name = Some(value(flag)?),
            "--catalogue" => self.catalogue = true,
            _ => return Err(format!("unknown argument {flag:?}")),
        }
        Ok(())
    }
}

/// Runs the profile; returns the exit status (1 only for a broken MUST).
pub fn run_profile(args: Args) -> Result<i32, String> {
    let p = &args.profile;
    let root = find_root();
    let dir = match &args.cases {
        Some(d) => absolute(d.clone()),
        None => root
            .clone()
            .map_err(|e| format!("{e} (or pass --cases)"))?
            .join("conformance")
            .join("rfc"),
    };
    if p.file_url.is_some() != p.file_bytes.is_some() {
        return Err("--file-url and --file-bytes go together".into());
    }
    let file_bytes = match &p.file_bytes {
        Some(f) => {
            let b =
                std::fs::read(absolute(f.clone())).map_err(|e| format!("{}: {e}", f.display()))?;
            if b.len() < MIN_FILE_LEN {
                return Err(format!(
                    "{}: the fixture file must have at least {MIN_FILE_LEN} bytes (it has {})",
                    f.display(),
                    b.len()
                ));
            }
            Some(b)
        }
        None => None,
    };
    let offer = Offer {
        file_url: p.file_url.clone(),
        file_bytes,
        ws_url: p.ws_url.clone(),
    };
    if p.catalogue {
        let cases = load_profile(&dir, &Offer::default()).map_err(|e| e.join("\n"))?;
        print!("{}", catalogue(&cases));
        return Ok(0);
    }
    let mut cases: Vec<Case> = load_profile(&dir, &offer).map_err(|e| e.join("\n"))?;
    let total = cases.len();
    // --category and --case select the union of what they name; --filter narrows further.
    let by_name = !p.categories.is_empty() || !p.cases.is_empty();
    cases.retain(|c| {
        (!by_name
            || p.categories.iter().any(|x| x == c.group())
            || p.cases.iter().any(|x| x == id(c) || *x == c.name))
            && (args.filters.is_empty() || args.filters.iter().any(|f| c.name.contains(f.as_str())))
    });
    if args.list {
        for c in &cases {
            println!("{}", list_line(c));
        }
        return Ok(0);
    }
    if cases.is_empty() {
        return Err(format!(
            "no case selected ({total} found under {})",
            dir.display()
        ));
    }
    for (what, missing) in [
        ("--file-url/--file-bytes", offer.file_url.is_none()),
        ("--ws-url", offer.ws_url.is_none()),
    ] {
        let n = cases
            .iter()
            .filter(|c| {
                c.skip
                    .as_deref()
                    .is_some_and(|s| s.contains(what.split('/').next().unwrap_or(what)))
            })
            .count();
        if missing && n > 0 {
            println!("skipping {n} case(s) that need {what}");
        }
    }

    let mut timing = Timing {
        timeout: PROFILE_TIMEOUT,
        ..Timing::default()
    };
    if let Some(t) = args.timeout {
        timing.timeout = t;
    }
    if let Some(q) = args.quiet {
        timing.quiet = q;
    }
    let settings = Settings {
        timing,
        jobs: if args.jobs == 0 {
            PROFILE_JOBS
        } else {
            args.jobs
        },
        bless: false,
        verbose: args.verbose,
        show_target: false,
        transcripts_only: false,
    };
    let (specs, addr_target) = target_specs(&args, &root)?;
    let mut targets: Vec<Box<dyn Target>> = Vec::new();
    if let Some(t) = addr_target {
        targets.push(Box::new(t));
    }
    for spec in specs {
        targets.push(Box::new(ProcessTarget::start(spec)?));
    }
    let several = targets.len() > 1;
    let mut any_must = false;
    let (mut passed, mut failed, mut warned, mut skipped) = (0, 0, 0, 0);
    for mut t in targets {
        let label = p
            .server_name
            .clone()
            .unwrap_or_else(|| t.label().to_string());
        println!(
            "== RFC profile: {} case(s) against {label} at {}",
            cases.len(),
            t.addr()
        );
        let started = Instant::now();
        let mut results: Vec<CaseResult> = Vec::with_capacity(cases.len());
        // Category by category, so that each summary line shows as it ends.
        let mut start = 0;
        while start < cases.len() {
            let cat = cases[start].group().to_string();
            let end = start
                + cases[start..]
                    .iter()
                    .take_while(|c| c.group() == cat)
                    .count();
            let r = run_suite(t.as_mut(), &mut cases[start..end], &settings);
            let mut tally = Tally::default();
            for g in graded(&cases[start..end], &r) {
                tally.add(g.grade);
            }
            println!("{}", tally.line(&cat));
            results.extend(r);
            start = end;
        }
        let g = graded(&cases, &results);
        let mut total = Tally::default();
        for x in &g {
            total.add(x.grade);
        }
        println!("{}", total.line("total"));
        let secs = started.elapsed().as_secs_f64();
        let musts: Vec<&str> = g
            .iter()
            .filter(|x| x.grade == Grade::Fail)
            .map(|x| x.case.name.as_str())
            .collect();
        if !musts.is_empty() {
            println!("MUST failures: {}", musts.join(" "));
            any_must = true;
        }
        println!("{label}: {} case(s) in {secs:.1} s", cases.len());
        let suffix = |path: &PathBuf| -> PathBuf {
            if several {
                let mut s = path.clone().into_os_string();
                s.push(format!(".{label}"));
                s.into()
            } else {
                path.clone()
            }
        };
        if let Some(j) = &p.json {
            let path = suffix(j);
            std::fs::write(&path, json_report(&label, secs, &g))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if let Some(j) = &p.junit {
            let path = suffix(j);
            std::fs::write(&path, junit_report(&label, &g))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        passed += total.pass;
        warned += total.warn;
        failed += total.fail;
        skipped += total.skip;
    }
    // The last line, as in the transcript suite: MUST failures count as failed,
    // warnings as passed (they are listed above).
    println!(
        "{} passed, {failed} failed, {warned} warned (counted as passed), {skipped} skipped",
        passed + warned
    );
    Ok(if any_must { 1 } else { 0 })
}
