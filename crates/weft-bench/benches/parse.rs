//! Request-head parser throughput: `weft_core::parse_request_head` against `httparse` (64 header
//! slots) on the corpus in `weft_bench::CORPUS`.
//!
//! `cargo bench -p weft-bench` prints markdown tables (ns per request, MB/s of head bytes,
//! requests/s, and the weft/httparse throughput ratio: above 1 means weft is faster). Two passes:
//! "parse" (the call alone) and "parse + walk fields" (then visit every field's name and value,
//! which is what a server does next; weft validates every line during the parse but hands the
//! fields out through an iterator that re-splits them, httparse fills its array up front).
//!
//! weft does the full RFC 9110/9112 validation (framing, Host, smuggling rules) during the parse,
//! httparse checks the syntax only, so the comparison slightly favours httparse.
//!
//! Knobs: `WEFT_BENCH_SAMPLES` (default 15 per case and parser, interleaved; the median is
//! reported) and `WEFT_BENCH_SAMPLE_MS` (default 100). A positional argument filters cases by
//! substring (`cargo bench -p weft-bench -- curl`). Without `--bench` (as under
//! `cargo test --benches`) every case runs once as a smoke test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use weft_bench::{Sample, CORPUS, HTTPARSE_HEADERS};
use weft_core::Limits;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Parse,
    ParseAndWalk,
}

impl Mode {
    fn title(self) -> &'static str {
        match self {
            Mode::Parse => "parse",
            Mode::ParseAndWalk => "parse + walk fields",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parser {
    Weft,
    Httparse,
}

/// One parse with weft; returns a value that depends on the whole result.
#[inline(never)]
fn weft_once(buf: &[u8], limits: &Limits, mode: Mode) -> usize {
    match weft_core::parse_request_head(black_box(buf), limits) {
        Ok(Some((head, used))) => {
            let mut acc = used;
            if mode == Mode::ParseAndWalk {
                for field in head.headers.iter() {
                    acc += field.name.len() + field.value.len();
                }
            }
            black_box(&head);
            acc
        }
        other => panic!(
            "weft rejected a corpus request: {:?}",
            other.map(|o| o.map(|(_, n)| n))
        ),
    }
}

/// One parse with httparse; returns a value that depends on the whole result.
#[inline(never)]
fn httparse_once(buf: &[u8], mode: Mode) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; HTTPARSE_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(black_box(buf)) {
        Ok(httparse::Status::Complete(used)) => {
            let mut acc = used;
            if mode == Mode::ParseAndWalk {
                for field in req.headers.iter() {
                    acc += field.name.len() + field.value.len();
                }
            }
            black_box(&req);
            acc
        }
        other => panic!("httparse rejected a corpus request: {other:?}"),
    }
}

/// A benchmark case: one request, or the whole corpus in turn ("mixed").
struct Case {
    name: String,
    samples: Vec<Sample>,
}

impl Case {
    fn head_bytes(&self) -> usize {
        self.samples.iter().map(|s| s.head_len).sum()
    }
    fn requests(&self) -> usize {
        self.samples.len()
    }
}

/// Runs the case `iters` times with `parser` and returns the elapsed time.
fn run(case: &Case, parser: Parser, mode: Mode, limits: &Limits, iters: u64) -> Duration {
    let mut acc = 0usize;
    let start = Instant::now();
    for _ in 0..iters {
        for sample in &case.samples {
            acc = acc.wrapping_add(match parser {
                Parser::Weft => weft_once(sample.bytes, limits, mode),
                Parser::Httparse => httparse_once(sample.bytes, mode),
            });
        }
    }
    let elapsed = start.elapsed();
    black_box(acc);
    elapsed
}

/// Iterations that take about `target` (at least 1).
fn calibrate(case: &Case, parser: Parser, mode: Mode, limits: &Limits, target: Duration) -> u64 {
    let mut iters = 1u64;
    loop {
        let t = run(case, parser, mode, limits, iters);
        if t >= target / 4 || iters >= 1 << 40 {
            let per_iter = t.as_secs_f64() / iters as f64;
            return ((target.as_secs_f64() / per_iter.max(1e-12)) as u64).max(1);
        }
        iters *= 4;
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Median nanoseconds per case iteration for weft and httparse, samples interleaved so that
/// drift on a noisy machine hits both alike.
fn measure(
    case: &Case,
    mode: Mode,
    limits: &Limits,
    samples: usize,
    target: Duration,
) -> (f64, f64) {
    let weft_iters = calibrate(case, Parser::Weft, mode, limits, target);
    let httparse_iters = calibrate(case, Parser::Httparse, mode, limits, target);
    let mut weft = Vec::with_capacity(samples);
    let mut httparse = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = run(case, Parser::Weft, mode, limits, weft_iters);
        weft.push(t.as_secs_f64() * 1e9 / weft_iters as f64);
        let t = run(case, Parser::Httparse, mode, limits, httparse_iters);
        httparse.push(t.as_secs_f64() * 1e9 / httparse_iters as f64);
    }
    (median(&mut weft), median(&mut httparse))
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench_mode = args.iter().any(|a| a == "--bench");
    let filter: Option<&str> = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(String::as_str);

    let mut cases: Vec<Case> = CORPUS
        .iter()
        .map(|s| Case {
            name: s.name.to_owned(),
            samples: vec![*s],
        })
        .collect();
    cases.push(Case {
        name: "mixed (all three in turn)".to_owned(),
        samples: CORPUS.to_vec(),
    });
    if let Some(f) = filter {
        cases.retain(|c| c.name.contains(f));
    }

    let limits = Limits::default();

    if !bench_mode {
        // Smoke test: every case parses with both parsers.
        for case in &cases {
            for mode in [Mode::Parse, Mode::ParseAndWalk] {
                run(case, Parser::Weft, mode, &limits, 1);
                run(case, Parser::Httparse, mode, &limits, 1);
            }
        }
        println!(
            "parse bench: {} cases smoke-tested (run `cargo bench` to measure)",
            cases.len()
        );
        return;
    }

    let samples = env_num("WEFT_BENCH_SAMPLES", 15) as usize;
    let target = Duration::from_millis(env_num("WEFT_BENCH_SAMPLE_MS", 100));
    println!(
        "weft_core::parse_request_head vs httparse::Request::parse ({HTTPARSE_HEADERS} header slots); \
         median of {samples} samples of ~{} ms each",
        target.as_millis()
    );
    for mode in [Mode::Parse, Mode::ParseAndWalk] {
        println!();
        println!("### {}", mode.title());
        println!();
        println!(
            "| request | head bytes | weft ns/req | weft MB/s | weft req/s | httparse ns/req | httparse MB/s | httparse req/s | weft/httparse |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for case in &cases {
            let (weft_ns, httparse_ns) = measure(case, mode, &limits, samples, target);
            let reqs = case.requests() as f64;
            let bytes = case.head_bytes() as f64;
            // Per case iteration -> per request / per second.
            let row = |ns: f64| {
                let per_req = ns / reqs;
                let mb_s = bytes / ns * 1e9 / 1e6;
                let req_s = reqs / ns * 1e9;
                (per_req, mb_s, req_s)
            };
            let (w_ns, w_mb, w_rps) = row(weft_ns);
            let (h_ns, h_mb, h_rps) = row(httparse_ns);
            println!(
                "| {} | {} | {w_ns:.1} | {w_mb:.0} | {} | {h_ns:.1} | {h_mb:.0} | {} | {:.2} |",
                case.name,
                case.head_bytes(),
                thousands(w_rps),
                thousands(h_rps),
                httparse_ns / weft_ns,
            );
        }
    }
}

/// 12345678.9 -> "12,345,679".
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
