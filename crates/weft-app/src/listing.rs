//! The directory listing page: HTML with every name escaped, links percent-encoded, sizes and
//! modification dates (UTC). Directories first, then files, each sorted by name; dot files
//! are not listed (they are still served when asked for by name).

use std::fmt::Write as _;

use crate::mapping::percent_encode;

/// Most entries shown on one listing page (the page is built in memory).
pub const MAX_ENTRIES: usize = 5000;

/// One entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
    /// Seconds since the Unix epoch, when known.
    pub modified: Option<u64>,
}

/// Escapes text for HTML content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1536` -> `1.5 KiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = "KiB";
    for u in UNITS.iter().skip(1) {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2024-01-01 00:00:00` (UTC) for seconds since the epoch.
pub fn format_time(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Sorts entries for display: directories first, then by name (byte order).
pub fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.3em;font-weight:600}\
table{border-collapse:collapse;min-width:32em}\
th,td{padding:.25em 1em .25em 0;text-align:left}\
th{border-bottom:1px solid #ccc}\
.size{text-align:right;font-variant-numeric:tabular-nums}\
td.date{font-variant-numeric:tabular-nums;color:#555}\
a{text-decoration:none}a:hover{text-decoration:underline}\
p.more{color:#a00}";

/// The listing page of the directory at `url_path` (decoded, starting and ending with `/`).
/// `omitted` entries were not read (more than [`MAX_ENTRIES`]).
pub fn render(url_path: &str, entries: &[Entry], omitted: bool) -> String {
    let title = html_escape(&format!("Index of {url_path}"));
    let mut html = String::with_capacity(1024 + entries.len() * 160);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <table>\n<thead><tr><th>Name</th><th class=\"size\">Size</th><th>Modified (UTC)</th></tr></thead>\n\
         <tbody>\n"
    );
    if url_path != "/" {
        html.push_str("<tr><td><a href=\"../\">../</a></td><td class=\"size\"></td><td class=\"date\"></td></tr>\n");
    }
    for e in entries {
        let href = percent_encode(&e.name);
        let name = html_escape(&e.name);
        let date = e.modified.map(format_time).unwrap_or_default();
        if e.is_dir {
            let _ = writeln!(
                html,
                "<tr><td><a href=\"{href}/\">{name}/</a></td><td class=\"size\">-</td><td class=\"date\">{date}</td></tr>"
            );
        } else {
            let _ = writeln!(
                html,
                "<tr><td><a href=\"{href}\">{name}</a></td><td class=\"size\" title=\"{} bytes\">{}</td><td class=\"date\">{date}</td></tr>",
                e.size,
                human_size(e.size)
            );
        }
    }
    html.push_str("</tbody>\n</table>\n");
    if omitted {
        let _ = writeln!(
            html,
            "<p class=\"more\">Only the first {MAX_ENTRIES} entries are shown.</p>"
        );
    }
    html.push_str("</body>\n</html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(html_escape("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&#39;");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(65536), "64.0 KiB");
        assert_eq!(human_size(1 << 20), "1.0 MiB");
        assert_eq!(human_size(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_704_067_200), "2024-01-01 00:00:00");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_time(784_111_777), "1994-11-06 08:49:37");
        // Far future: no panic.
        let _ = format_time(u64::MAX);
    }

    #[test]
    fn page_escapes_names_and_links() {
        let mut entries = vec![
            Entry {
                name: "a&b<c>.txt".into(),
                is_dir: false,
                size: 12,
                modified: Some(1_704_067_200),
            },
            Entry {
                name: "<dir>".into(),
                is_dir: true,
                size: 4096,
                modified: None,
            },
        ];
        sort(&mut entries);
        let html = render("/x&y/", &entries, false);
        assert!(html.contains("<title>Index of /x&amp;y/</title>"));
        assert!(html.contains("<a href=\"%3Cdir%3E/\">&lt;dir&gt;/</a>"));
        assert!(html.contains("<a href=\"a%26b%3Cc%3E.txt\">a&amp;b&lt;c&gt;.txt</a>"));
        assert!(html.contains(">12 B<"));
        assert!(html.contains("2024-01-01 00:00:00"));
        assert!(html.contains("href=\"../\""));
        assert!(!html.contains("<c>"));
        // Directories first.
        let dir_at = html.find("&lt;dir&gt;").unwrap_or(usize::MAX);
        let file_at = html.find("a&amp;b").unwrap_or(0);
        assert!(dir_at < file_at);
        assert!(!render("/", &[], true).contains("href=\"../\""));
    }
}
