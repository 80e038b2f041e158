//! The portable RFC profile (`--profile rfc`): cases under `conformance/rfc`
//! whose expectations are the RFCs' requirements only, each with an id, the
//! section it checks, a requirement level and a reason. Results are graded
//! Pass / Warn (a SHOULD or MAY not taken) / Fail (a MUST broken) / Skip.
//!
//! A profile file `conformance/rfc/<category>.cases` holds many cases: each
//! starts at a `case: ID` line and runs to the next one; its lines are an
//! ordinary case (see `conformance/README.md`). Before parsing, `{file}`,
//! `{ws}`, `{len}`, `{len-N}` and `{last}` in a case's text are replaced by
//! the fixture file's URL path, the WebSocket echo's URL path, the file's
//! length (minus N) and its last byte offset.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::case::{parse_case, Case, Check, Expectation, Level, ParseError};
use crate::suite::{CaseResult, Status};

/// What the server under test offers to the optional categories.
#[derive(Clone, Debug, Default)]
pub struct Offer {
    /// `--file-url`: the URL path of a static file.
    pub file_url: Option<String>,
    /// `--file-bytes`: that file's exact bytes.
    pub file_bytes: Option<Vec<u8>>,
    /// `--ws-url`: the URL path of a WebSocket echo.
    pub ws_url: Option<String>,
}

/// The smallest fixture file the range cases can use (they ask for bytes up to 99).
pub const MIN_FILE_LEN: usize = 100;

/// The id of a profile case: its name after the `/`.
pub fn id(case: &Case) -> &str {
    case.name.split_once('/').map_or("", |(_, id)| id)
}

/// Loads every `*.cases` file under `dir` (sorted), with the offer's values
/// substituted. Cases whose needs the offer lacks are marked skipped.
pub fn load_profile(dir: &Path, offer: &Offer) -> Result<Vec<Case>, Vec<String>> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "cases"))
            .collect(),
        Err(e) => return Err(vec![format!("cannot read {}: {e}", dir.display())]),
    };
    files.sort();
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    let mut seen = BTreeMap::new();
    for path in files {
        let cat = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        match parse_profile_file(&cat, &path, &text, offer) {
            Ok(list) => {
                for c in list {
                    if let Some(prev) = seen.insert(id(&c).to_string(), c.name.clone()) {
                        errors.push(format!(
                            "{}: case id {} used twice ({prev})",
                            path.display(),
                            id(&c)
                        ));
                    }
                    cases.push(c);
                }
            }
            Err(e) => errors.extend(e.into_iter().map(|e| e.to_string())),
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

fn substitute(text: &[u8], offer: &Offer) -> Vec<u8> {
    let len = offer.file_bytes.as_ref().map_or(0, Vec::len);
    let pairs: [(&[u8], String); 4] = [
        (
            b"{file}",
            offer.file_url.clone().unwrap_or_else(|| "/".into()),
        ),
        (b"{ws}", offer.ws_url.clone().unwrap_or_else(|| "/".into())),
        (b"{len}", len.to_string()),
        (b"{last}", len.saturating_sub(1).to_string()),
    ];
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    'outer: while i < text.len() {
        // `{len-N}`: the file's length minus N.
        if let Some(rest) = text[i..].strip_prefix(b"{len-") {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits > 0 && rest.get(digits) == Some(&b'}') {
                let n: usize = std::str::from_utf8(&rest[..digits])
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0);
                out.extend_from_slice(len.saturating_sub(n).to_string().as_bytes());
                i += 5 + digits + 1;
                continue;
            }
        }
        for (from, to) in &pairs {
            if text[i..].starts_with(from) {
                out.extend_from_slice(to.as_bytes());
                i += from.len();
                continue 'outer;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

/// Parses one profile file of category `cat`.
pub fn parse_profile_file(
    cat: &str,
    path: &Path,
    text: &[u8],
    offer: &Offer,
) -> Result<Vec<Case>, Vec<ParseError>> {
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    let err = |line: usize, msg: String| ParseError {
        path: path.to_path_buf(),
        line,
        msg,
    };
    // (id, first line index, end line index exclusive)
    let mut blocks: Vec<(String, usize, usize)> = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let l = String::from_utf8_lossy(raw);
        let t = l.trim();
        if let Some(id) = t.strip_prefix("case:") {
            let id = id.trim().to_string();
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                errors.push(err(
                    i + 1,
                    format!("case: bad id {id:?} (letters, digits, '-', '.')"),
                ));
            }
            if let Some(b) = blocks.last_mut() {
                b.2 = i;
            }
            blocks.push((id, i + 1, lines.len()));
        } else if blocks.is_empty() && !t.is_empty() && !t.starts_with('#') {
            errors.push(err(
                i + 1,
                "a directive before the first 'case:' line".into(),
            ));
        }
    }
    let mut cases = Vec::new();
    for (id, start, end) in blocks {
        // Blank lines in place of the others keep the line numbers of errors.
        let mut body = vec![b'\n'; start];
        for l in &lines[start..end] {
            body.extend_from_slice(l);
            body.push(b'\n');
        }
        let body = substitute(&body, offer);
        let name = format!("{cat}/{id}");
        match parse_case(&name, path, &body) {
            Ok(mut c) => {
                if c.rfc.is_none() || c.reason.is_none() {
                    errors.push(err(
                        start,
                        format!("case {id}: a profile case needs rfc: and reason:"),
                    ));
                    continue;
                }
                if let Err(e) = apply_offer(&mut c, offer) {
                    errors.push(err(start, format!("case {id}: {e}")));
                    continue;
                }
                cases.push(c);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

/// Skips a case whose needs are not offered, and fills its file checks.
fn apply_offer(c: &mut Case, offer: &Offer) -> Result<(), String> {
    let mut missing = Vec::new();
    for need in &c.needs {
        match need.as_str() {
            "file" if offer.file_url.is_none() || offer.file_bytes.is_none() => {
                missing.push("--file-url and --file-bytes")
            }
            "ws" if offer.ws_url.is_none() => missing.push("--ws-url"),
            _ => {}
        }
    }
    if !missing.is_empty() {
        if c.skip.is_none() {
            c.skip = Some(format!("needs {}", missing.join(" and ")));
        }
        return Ok(());
    }
    if let (Expectation::Assert { assertions, .. }, Some(bytes)) =
        (&mut c.expect, offer.file_bytes.as_ref())
    {
        for a in assertions {
            match a.check {
                Check::FileBody(span) => a.check = Check::Body(span.slice(bytes).to_vec()),
                Check::FileDecodedBody(span) => {
                    a.check = Check::DecodedBody(span.slice(bytes).to_vec())
                }
                _ => {}
            }
        }
    }
    let uses_file = matches!(&c.expect, Expectation::Assert { assertions, .. }
        if assertions.iter().any(|a| matches!(a.check, Check::FileBody(_) | Check::FileDecodedBody(_))));
    if uses_file && !c.needs.iter().any(|n| n == "file") {
        return Err("expect-body-file without 'needs: file'".into());
    }
    Ok(())
}

/// The grade of one case's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grade {
    Pass,
    /// A SHOULD or MAY not met.
    Warn,
    /// A MUST broken (or the target died).
    Fail,
    Skip,
}

impl Grade {
    pub fn word(self) -> &'static str {
        match self {
            Grade::Pass => "pass",
            Grade::Warn => "warn",
            Grade::Fail => "fail",
            Grade::Skip => "skip",
        }
    }
}

pub fn grade(case: &Case, r: &CaseResult) -> Grade {
    match r.status {
        Status::Passed => Grade::Pass,
        Status::Skipped => Grade::Skip,
        Status::Failed => {
            let died = r
                .notes
                .iter()
                .any(|n| n.contains("TARGET DIED") || n.contains("not run"));
            let must = case.rfc.as_ref().is_none_or(|q| q.level == Level::Must);
            if must || died {
                Grade::Fail
            } else {
                Grade::Warn
            }
        }
    }
}

/// Counts per grade.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
}

impl Tally {
    pub fn add(&mut self, g: Grade) {
        match g {
            Grade::Pass => self.pass += 1,
            Grade::Warn => self.warn += 1,
            Grade::Fail => self.fail += 1,
            Grade::Skip => self.skip += 1,
        }
    }

    pub fn run(&self) -> usize {
        self.pass + self.warn + self.fail
    }

    /// Passed cases among those run, in percent (100 when none ran).
    pub fn score(&self) -> f64 {
        if self.run() == 0 {
            100.0
        } else {
            100.0 * self.pass as f64 / self.run() as f64
        }
    }

    /// One console line: `category  pass N  warn N  fail N  skip N  score S%`.
    pub fn line(&self, label: &str) -> String {
        format!(
            "{label:<20} pass {:>3}  warn {:>3}  fail {:>3}  skip {:>3}  score {:>5.1}%",
            self.pass,
            self.warn,
            self.fail,
            self.skip,
            self.score()
        )
    }
}

/// The first failure line of a result (for reports).
pub fn first_problem(case: &Case, r: &CaseResult) -> String {
    if let Some(n) = r.notes.first() {
        return n.lines().next().unwrap_or("").to_string();
    }
    if r.status == Status::Skipped {
        return case.skip.clone().unwrap_or_default();
    }
    r.modes
        .iter()
        .find(|m| !m.failures.is_empty())
        .map(|m| {
            format!(
                "[{}] {}",
                m.mode,
                m.failures[0].lines().next().unwrap_or("")
            )
        })
        .unwrap_or_default()
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn xml(s: &str) -> String {
    s.chars()
        .filter(|c| *c == '\n' || *c == '\t' || (*c as u32) >= 0x20)
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One graded case, for the reports.
pub struct Graded<'a> {
    pub case: &'a Case,
    pub grade: Grade,
    pub problem: String,
    pub secs: f64,
}

/// Grades the results (in case order).
pub fn graded<'a>(cases: &'a [Case], results: &[CaseResult]) -> Vec<Graded<'a>> {
    cases
        .iter()
        .zip(results)
        .map(|(c, r)| Graded {
            case: c,
            grade: grade(c, r),
            problem: first_problem(c, r),
            secs: r
                .modes
                .iter()
                .filter_map(|m| m.transcript.as_ref())
                .map(|t| t.elapsed.as_secs_f64())
                .sum(),
        })
        .collect()
}

/// Per-category tallies, in category order of first appearance.
pub fn tallies(g: &[Graded<'_>]) -> Vec<(String, Tally)> {
    let mut out: Vec<(String, Tally)> = Vec::new();
    for x in g {
        let cat = x.case.group();
        match out.iter_mut().find(|(c, _)| c == cat) {
            Some((_, t)) => t.add(x.grade),
            None => {
                let mut t = Tally::default();
                t.add(x.grade);
                out.push((cat.to_string(), t));
            }
        }
    }
    out
}

/// The `--json` report.
pub fn json_report(server: &str, secs: f64, g: &[Graded<'_>]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{{\n  \"profile\": \"rfc\",\n  \"server\": {},\n  \"seconds\": {secs:.1},",
        json_str(server)
    );
    let mut total = Tally::default();
    out.push_str("  \"categories\": {\n");
    let t = tallies(g);
    for (i, (cat, tally)) in t.iter().enumerate() {
        total.pass += tally.pass;
        total.warn += tally.warn;
        total.fail += tally.fail;
        total.skip += tally.skip;
        let _ = writeln!(
            out,
            "    {}: {{\"pass\": {}, \"warn\": {}, \"fail\": {}, \"skip\": {}, \"score\": {:.1}}}{}",
            json_str(cat),
            tally.pass,
            tally.warn,
            tally.fail,
            tally.skip,
            tally.score(),
            if i + 1 < t.len() { "," } else { "" }
        );
    }
    out.push_str("  },\n");
    let _ = writeln!(
        out,
        "  \"total\": {{\"pass\": {}, \"warn\": {}, \"fail\": {}, \"skip\": {}, \"score\": {:.1}}},",
        total.pass,
        total.warn,
        total.fail,
        total.skip,
        total.score()
    );
    out.push_str("  \"cases\": [\n");
    for (i, x) in g.iter().enumerate() {
        let q = x.case.rfc.as_ref();
        let _ = writeln!(
            out,
            "    {{\"id\": {}, \"category\": {}, \"rfc\": {}, \"section\": {}, \"level\": {}, \"reason\": {}, \"result\": {}, \"detail\": {}}}{}",
            json_str(id(x.case)),
            json_str(x.case.group()),
            q.map_or(0, |q| q.spec),
            json_str(q.map_or("", |q| q.section.as_str())),
            json_str(&q.map_or(String::new(), |q| q.level.to_string())),
            json_str(x.case.reason.as_deref().unwrap_or("")),
            json_str(x.grade.word()),
            json_str(&x.problem),
            if i + 1 < g.len() { "," } else { "" }
        );
    }
    out.push_str("  ]\n}\n");
    out
}

/// The `--junit` report: one testsuite per category; a MUST broken is a
/// `<failure>`, a SHOULD/MAY not taken passes with a `WARN` line in
/// `<system-out>`, a skipped case is `<skipped>`.
pub fn junit_report(server: &str, g: &[Graded<'_>]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"weft-conformance rfc: {}\">",
        xml(server)
    );
    for (cat, tally) in tallies(g) {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            xml(&cat),
            tally.run() + tally.skip,
            tally.fail,
            tally.skip
        );
        for x in g.iter().filter(|x| x.case.group() == cat) {
            let q = x.case.rfc.as_ref();
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{} ({} {})\" time=\"{:.3}\">",
                xml(&cat),
                xml(id(x.case)),
                q.map_or(String::new(), |q| q.to_string()),
                q.map_or(String::new(), |q| q.level.to_string()),
                x.secs
            );
            match x.grade {
                Grade::Pass => {}
                Grade::Fail => {
                    let _ = write!(out, "<failure message=\"{}\"/>", xml(&x.problem));
                }
                Grade::Warn => {
                    let _ = write!(out, "<system-out>WARN: {}</system-out>", xml(&x.problem));
                }
                Grade::Skip => {
                    let _ = write!(out, "<skipped message=\"{}\"/>", xml(&x.problem));
                }
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// One `--list` line of a case.
pub fn list_line(c: &Case) -> String {
    let q = c.rfc.as_ref();
    format!(
        "{:<44} {:<6} {:<16} {}{}",
        c.name,
        q.map_or(String::new(), |q| q.level.to_string()),
        q.map_or(String::new(), |q| q.to_string()),
        c.reason.as_deref().unwrap_or(""),
        if c.needs.is_empty() {
            String::new()
        } else {
            format!(" [needs {}]", c.needs.join(", "))
        }
    )
}

/// The catalogue document (`docs/CONFORMANCE-CATALOGUE.md`), generated from
/// the cases (loaded without an offer, so in file order with every need).
pub fn catalogue(cases: &[Case]) -> String {
    let mut out = String::new();
    out.push_str(
        "# The portable RFC profile: catalogue\n\n\
         Generated from `conformance/rfc/*.cases` by `weft-conformance --profile rfc --catalogue`; \
         do not edit (the test `rfc_profile` fails when this file is stale). How to run the \
         profile and what the grades mean: `conformance/README.md`, section *The portable RFC \
         profile*.\n\n",
    );
    // Per category: counts per level, and which needs its cases have (with how many).
    let mut counts: Vec<(String, [usize; 3], String)> = Vec::new();
    for c in cases {
        let cat = c.group().to_string();
        let lvl = c.rfc.as_ref().map_or(0, |q| q.level as usize);
        match counts.iter_mut().find(|(k, _, _)| *k == cat) {
            Some((_, n, _)) => n[lvl] += 1,
            None => {
                let mut n = [0; 3];
                n[lvl] += 1;
                counts.push((cat, n, String::new()));
            }
        }
    }
    for (cat, n, needs) in counts.iter_mut() {
        let total: usize = n.iter().sum();
        let mut parts = Vec::new();
        for need in ["file", "ws"] {
            let with = cases
                .iter()
                .filter(|c| c.group() == cat && c.needs.iter().any(|x| x == need))
                .count();
            if with == total {
                parts.push(need.to_string());
            } else if with > 0 {
                parts.push(format!("{need} ({with})"));
            }
        }
        *needs = parts.join(", ");
    }
    out.push_str("| category | MUST | SHOULD | MAY | cases | needs |\n| --- | ---: | ---: | ---: | ---: | --- |\n");
    let mut tot = [0; 3];
    for (cat, n, needs) in &counts {
        let _ = writeln!(
            out,
            "| {cat} | {} | {} | {} | {} | {} |",
            n[0],
            n[1],
            n[2],
            n.iter().sum::<usize>(),
            if needs.is_empty() { "-" } else { needs }
        );
        for i in 0..3 {
            tot[i] += n[i];
        }
    }
    let _ = writeln!(
        out,
        "| **total** | {} | {} | {} | {} | |\n",
        tot[0],
        tot[1],
        tot[2],
        tot.iter().sum::<usize>()
    );
    for (cat, _, _) in &counts {
        let _ = writeln!(
            out,
            "## {cat}\n\n| id | section | level | reason |\n| --- | --- | --- | --- |"
        );
        for c in cases.iter().filter(|c| c.group() == cat) {
            let q = c.rfc.as_ref();
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                id(c),
                q.map_or(String::new(), |q| q.to_string()),
                q.map_or(String::new(), |q| q.level.to_string()),
                c.reason.as_deref().unwrap_or("").replace('|', "\\|")
            );
        }
        out.push('\n');
    }
    out
}
