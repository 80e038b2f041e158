//! Loading cases, running them against a target (optionally in parallel),
//! blessing exact expectations and reporting.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::case::{parse_case, Case, Expectation, Mode, ParseError};
use crate::diff;
use crate::escape::escape_for_line;
use crate::response::normalize_dates;
use crate::run::{evaluate, run_mode, End, Timing, Transcript};
use crate::target::Target;

/// How long the liveness probe after a case whose connection was closed
/// must stay open.
const PROBE_LINGER: Duration = Duration::from_millis(50);

/// Finds every `*.case` file under `dir` (recursively, sorted by path) and
/// parses it. All parse errors are returned together.
pub fn load_cases(dir: &Path) -> Result<Vec<Case>, Vec<String>> {
    let files = match case_files(dir) {
        Ok(files) => files,
        Err(e) => {
            return Err(vec![format!(
                "cannot read cases directory {}: {e}",
                dir.display()
            )])
        }
    };
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        let name = case_name(dir, &path);
        match std::fs::read(&path) {
            Ok(text) => match parse_case(&name, &path, &text) {
                Ok(c) => cases.push(c),
                Err(e) => errors.push(e.to_string()),
            },
            Err(e) => errors.push(
                ParseError {
                    path,
                    line: 0,
                    msg: e.to_string(),
                }
                .to_string(),
            ),
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

/// Every `*.case` file under `dir`, recursively, sorted by path.
pub fn case_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    Ok(files)
}

/// A case's name: its path below `dir` without the extension, `/`-separated.
pub fn case_name(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "case") {
            out.push(path);
        }
    }
    Ok(())
}

/// Settings for one run of the suite.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub timing: Timing,
    pub jobs: usize,
    pub bless: bool,
    pub verbose: bool,
    /// Prefix report lines with the target label (for `--target all`).
    pub show_target: bool,
    /// Only gather the transcripts; the case's own expectation is not checked (they are
    /// compared between targets instead: `--target serve`).
    pub transcripts_only: bool,
}

/// The result of one mode of one case.
#[derive(Clone, Debug)]
pub struct ModeResult {
    pub mode: Mode,
    /// `None` when no connection could be made.
    pub transcript: Option<Transcript>,
    pub failures: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

/// The result of one case on one target.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub status: Status,
    pub modes: Vec<ModeResult>,
    /// Failures not tied to a mode (target died, bless refused, not run).
    pub notes: Vec<String>,
    pub blessed: bool,
}

/// Formats a failure report: a header line per failing mode, details
/// indented below.
pub fn report(label: Option<&str>, case: &Case, res: &CaseResult) -> String {
    let mut out = String::new();
    // A profile case whose requirement is a SHOULD or MAY warns.
    let fail = match &case.rfc {
        Some(q) if q.level != crate::case::Level::Must => "WARN",
        _ => "FAIL",
    };
    let prefix = label.map(|l| format!("{l} ")).unwrap_or_default();
    // Failures without the trailing timing line, to spot repeats.
    let gist = |f: &[String]| -> Vec<String> {
        f.iter()
            .filter(|l| !l.starts_with("read: "))
            .cloned()
            .collect()
    };
    let mut seen: Vec<(Mode, Vec<String>)> = Vec::new();
    for m in &res.modes {
        if m.failures.is_empty() {
            continue;
        }
        let g = gist(&m.failures);
        if let Some((first, _)) = seen.iter().find(|(_, s)| *s == g) {
            out.push_str(&format!(
                "{fail} {prefix}{} [{}]: same failure as [{first}]\n",
                case.name, m.mode
            ));
            continue;
        }
        seen.push((m.mode, g));
        let mut first = true;
        for f in &m.failures {
            for (i, line) in f.lines().enumerate() {
                if first && i == 0 {
                    out.push_str(&format!(
                        "{fail} {prefix}{} [{}]: {line}\n",
                        case.name, m.mode
                    ));
                    first = false;
                } else if i == 0 {
                    out.push_str(&format!("    {line}\n"));
                } else {
                    out.push_str(&format!("{line}\n"));
                }
            }
        }
    }
    for n in &res.notes {
        let mut lines = n.lines();
        if let Some(l) = lines.next() {
            out.push_str(&format!("{fail} {prefix}{}: {l}\n", case.name));
        }
        for l in lines {
            out.push_str(&format!("    {l}\n"));
        }
    }
    out
}

/// Runs every mode of a case (blessing first when asked) and judges them.
pub fn run_case(
    target_addr: std::net::SocketAddr,
    case: &mut Case,
    settings: &Settings,
) -> CaseResult {
    if case.skip.is_some() {
        return CaseResult {
            status: Status::Skipped,
            modes: Vec::new(),
            notes: Vec::new(),
            blessed: false,
        };
    }
    let mut transcripts = Vec::new();
    for &mode in &case.modes {
        transcripts.push((mode, run_mode(target_addr, case, mode, &settings.timing)));
    }
    let mut notes = Vec::new();
    let mut blessed = false;
    if settings.bless {
        if let Expectation::Exact(old) = &case.expect {
            match bless_payload(&transcripts) {
                Ok(new) => {
                    if normalize_dates(old) != new {
                        match rewrite_expect(case, &new) {
                            Ok(()) => {
                                case.expect = Expectation::Exact(new);
                                blessed = true;
                            }
                            Err(e) => notes.push(format!("cannot bless: {e}")),
                        }
                    }
                }
                Err(e) => notes.push(format!("cannot bless: {e}")),
            }
        }
    }
    let modes: Vec<ModeResult> = transcripts
        .into_iter()
        .map(|(mode, t)| match t {
            Ok(t) => {
                let failures = match settings.transcripts_only {
                    true => Vec::new(),
                    false => evaluate(case, &t, &settings.timing),
                };
                ModeResult {
                    mode,
                    transcript: Some(t),
                    failures,
                }
            }
            Err(e) => ModeResult {
                mode,
                transcript: None,
                failures: vec![e],
            },
        })
        .collect();
    let failed = !notes.is_empty() || modes.iter().any(|m| !m.failures.is_empty());
    CaseResult {
        status: if failed {
            Status::Failed
        } else {
            Status::Passed
        },
        modes,
        notes,
        blessed,
    }
}

/// The normalised bytes every mode agreed on.
fn bless_payload(transcripts: &[(Mode, Result<Transcript, String>)]) -> Result<Vec<u8>, String> {
    let mut agreed: Option<(Mode, &[u8])> = None;
    for (mode, t) in transcripts {
        let t = t.as_ref().map_err(|e| format!("mode {mode}: {e}"))?;
        match agreed {
            None => agreed = Some((*mode, &t.normalized)),
            Some((m0, bytes)) if bytes != t.normalized.as_slice() => {
                return Err(format!(
                    "modes {m0} and {mode} got different bytes\n{}",
                    diff::render(bytes, &t.normalized).trim_end_matches('\n')
                ))
            }
            Some(_) => {}
        }
    }
    Ok(agreed.map(|(_, b)| b.to_vec()).unwrap_or_default())
}

/// Longest escaped text on one payload line written by `--bless`.
const BLESS_LINE: usize = 100;

/// Formats an `expect:` payload as case-file lines: the first on the
/// `expect:` line, a `+ ` continuation line after every `\n` and wherever an
/// escaped line would pass [`BLESS_LINE`] characters.
pub fn format_expect(indent: &str, payload: &[u8]) -> Vec<String> {
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    for (i, &b) in payload.iter().enumerate() {
        if b == b'\n' {
            pieces.push(&payload[start..=i]);
            start = i + 1;
        }
    }
    if start < payload.len() {
        pieces.push(&payload[start..]);
    }
    let mut texts = Vec::new();
    for piece in pieces {
        let mut from = 0;
        while from < piece.len() {
            // Grow the piece while its escaped form fits the line.
            let mut to = from;
            let mut width = 0;
            while to < piece.len() {
                let w = escape_for_line(&piece[to..to + 1]).len();
                if width + w > BLESS_LINE && to > from {
                    break;
                }
                width += w;
                to += 1;
            }
            texts.push(escape_for_line(&piece[from..to]));
            from = to;
        }
    }
    let mut lines = Vec::new();
    let mut iter = texts.into_iter();
    match iter.next() {
        Some(t) => lines.push(format!("{indent}expect: {t}")),
        None => lines.push(format!("{indent}expect:")),
    }
    for t in iter {
        lines.push(format!("{indent}+ {t}"));
    }
    lines
}

/// Replaces the `expect:` lines of the case file with `payload`.
fn rewrite_expect(case: &Case, payload: &[u8]) -> Result<(), String> {
    let (first, last) = case.expect_lines.ok_or("case has no expect: line")?;
    let text = std::fs::read(&case.path).map_err(|e| format!("{}: {e}", case.path.display()))?;
    let text =
        String::from_utf8(text).map_err(|_| format!("{}: not UTF-8", case.path.display()))?;
    let crlf = text.contains("\r\n");
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if last >= lines.len() {
        return Err(format!(
            "{}: changed since it was read",
            case.path.display()
        ));
    }
    let indent: String = lines[first]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    let mut out: Vec<String> = lines[..first].iter().map(|s| s.to_string()).collect();
    out.extend(format_expect(&indent, payload));
    out.extend(lines[last + 1..].iter().map(|s| s.to_string()));
    let joined = out.join(if crlf { "\r\n" } else { "\n" });
    std::fs::write(&case.path, joined).map_err(|e| format!("{}: {e}", case.path.display()))
}

/// Runs all `cases` against one target. Results come back in case order.
/// After every case the target is checked; a dead target is reported as
/// `TARGET DIED after case X`, that case fails, and the target is restarted
/// when possible (otherwise every case not yet run fails).
pub fn run_suite(
    target: &mut dyn Target,
    cases: &mut [Case],
    settings: &Settings,
) -> Vec<CaseResult> {
    let n = cases.len();
    let label = target.label().to_string();
    let show_label = settings.show_target.then_some(label.as_str());
    let target = Mutex::new(target);
    let next = AtomicUsize::new(0);
    let dead = AtomicBool::new(false);
    let slots: Vec<Mutex<(&mut Case, Option<CaseResult>)>> =
        cases.iter_mut().map(|c| Mutex::new((c, None))).collect();
    let out_lock = Mutex::new(());
    let jobs = settings.jobs.clamp(1, n.max(1));

    let worker = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= n {
            return;
        }
        let mut slot = slots[i].lock().unwrap_or_else(|p| p.into_inner());
        let case = &mut *slot.0;
        let result = if dead.load(Ordering::SeqCst) {
            CaseResult {
                status: Status::Failed,
                modes: Vec::new(),
                notes: vec![format!("not run: the {label} target is dead")],
                blessed: false,
            }
        } else {
            let addr = target.lock().unwrap_or_else(|p| p.into_inner()).addr();
            let mut r = run_case(addr, case, settings);
            if r.status != Status::Skipped {
                let mut t = target.lock().unwrap_or_else(|p| p.into_inner());
                // A connection the server closed may mean it is dying, and a
                // fault case (client reset, expect-alive) may kill it a moment
                // later: then give the probe connection a moment to be reset.
                let closed = case.expect_alive
                    || r.modes.iter().any(|m| {
                        m.transcript
                            .as_ref()
                            .is_none_or(|t| t.end.closed() || t.end == End::Aborted)
                    });
                let linger = if closed { PROBE_LINGER } else { Duration::ZERO };
                if let Err(why) = t.check_alive(settings.timing.connect, linger) {
                    let mut note = format!("TARGET DIED after case {}: {why}", case.name);
                    if jobs > 1 {
                        note.push_str(&format!(
                            "\n(with -j {jobs}, cases running at the same time may be the cause)"
                        ));
                    }
                    match t.restart() {
                        Ok(()) => {
                            note.push_str(&format!("\nrestarted {label} target at {}", t.addr()))
                        }
                        Err(e) => {
                            note.push_str(&format!(
                                "\ncannot restart: {}\nevery case not yet run is counted as failed",
                                e.trim_end()
                            ));
                            dead.store(true, Ordering::SeqCst);
                        }
                    }
                    {
                        let _g = out_lock.lock().unwrap_or_else(|p| p.into_inner());
                        let mut stderr = std::io::stderr().lock();
                        let _ = writeln!(stderr, "!!! {}", note.replace('\n', "\n!!! "));
                    }
                    r.notes.push(note);
                    r.status = Status::Failed;
                }
            }
            r
        };
        {
            let _g = out_lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut stdout = std::io::stdout().lock();
            let text = report(show_label, case, &result);
            let _ = stdout.write_all(text.as_bytes());
            if result.blessed {
                let _ = writeln!(stdout, "blessed {} ({})", case.name, case.path.display());
            }
            if settings.verbose && text.is_empty() {
                let word = if result.status == Status::Skipped {
                    "skip"
                } else {
                    "ok"
                };
                let _ = writeln!(
                    stdout,
                    "{word:<4} {}{}",
                    show_label.map(|l| format!("{l} ")).unwrap_or_default(),
                    case.name
                );
            }
            let _ = stdout.flush();
        }
        slot.1 = Some(result);
    };

    std::thread::scope(|s| {
        for _ in 1..jobs {
            s.spawn(worker);
        }
        worker();
    });

    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .1
                .expect("every case ran")
        })
        .collect()
}

/// The decoded responses of a transcript (framing removed), for `compare: decoded` cases.
fn decoded_view(case: &Case, t: &crate::run::Transcript) -> String {
    let methods = case.request_methods();
    let parsed = crate::response::parse_responses(&t.normalized, &methods, true);
    let mut view = String::new();
    for r in &parsed.responses {
        view.push_str(&format!("{} {} {:?}\n", r.version, r.status, r.reason));
        for (name, value) in &r.headers {
            view.push_str(&format!("{name}: {:?}\n", String::from_utf8_lossy(value)));
        }
        view.push_str(&format!("body {:?}\n", String::from_utf8_lossy(&r.body)));
        for (name, value) in &r.trailers {
            view.push_str(&format!(
                "trailer {name}: {:?}\n",
                String::from_utf8_lossy(value)
            ));
        }
    }
    view.push_str(&format!("tail {:?}\n", parsed.tail));
    view
}

/// Compares the normalised bytes of two targets mode by mode; returns one
/// message per case (index into `cases`) whose bytes differ. Fault cases
/// (a `reset` step or `expect-alive`) are not compared: what arrives before
/// the client's reset depends on timing.
pub fn compare_targets(
    cases: &[Case],
    (la, a): (&str, &[CaseResult]),
    (lb, b): (&str, &[CaseResult]),
) -> BTreeMap<usize, String> {
    let mut out = BTreeMap::new();
    for (i, case) in cases.iter().enumerate() {
        if case.expect_alive || case.has_reset() {
            continue;
        }
        let mut msg = String::new();
        for (ma, mb) in a[i].modes.iter().zip(&b[i].modes) {
            let (Some(ta), Some(tb)) = (&ma.transcript, &mb.transcript) else {
                continue;
            };
            let differs = match &case.compare_decoded {
                None => ta.normalized != tb.normalized,
                Some(_) => decoded_view(case, ta) != decoded_view(case, tb),
            };
            if differs {
                if msg.is_empty() {
                    msg = format!(
                        "FAIL {} [{}]: {la} and {lb} answered differently\n",
                        case.name, ma.mode
                    );
                    msg.push_str(&diff::render_labeled(
                        (la, lb),
                        &ta.normalized,
                        &tb.normalized,
                    ));
                } else {
                    msg.push_str(&format!("    also differs in mode {}\n", ma.mode));
                }
            }
        }
        if !msg.is_empty() {
            out.insert(i, msg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escape::unescape;

    #[test]
    fn format_expect_splits_after_newlines() {
        let lines = format_expect("", b"HTTP/1.1 200 OK\r\nDate: <date>\r\n\r\nhello world\n");
        assert_eq!(
            lines,
            vec![
                "expect: HTTP/1.1 200 OK\\r\\n",
                "+ Date: <date>\\r\\n",
                "+ \\r\\n",
                "+ hello world\\n",
            ]
        );
        assert_eq!(format_expect("  ", b""), vec!["  expect:"]);
    }

    #[test]
    fn format_expect_round_trips_through_the_parser() {
        let mut payload: Vec<u8> = b" lead and trail \n".to_vec();
        payload.extend(std::iter::repeat_n(b'x', 250));
        payload.extend_from_slice(b"\x00\xff \n");
        let lines = format_expect("", &payload);
        assert!(lines.iter().all(|l| l.len() <= BLESS_LINE + 8), "{lines:?}");
        let text = format!("send: x\n{}\n", lines.join("\n"));
        let case = parse_case("t", Path::new("t.case"), text.as_bytes()).unwrap();
        assert_eq!(case.expect, Expectation::Exact(payload));
        assert_eq!(unescape(b"\\x20").unwrap(), b" ");
    }
}
