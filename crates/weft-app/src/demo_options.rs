//! The demo application's options, in one table for the two ways they arrive: `weft serve`
//! flags, and environment variables for the `wasi:http` component, which has no command
//! line. Each option has a flag (`--cors-origin`) and an environment name (`WEFT_CORS_ORIGIN`);
//! both go through [`apply`], so a value means the same thing on every path.
//!
//! In the environment, an option without a value is set by `1`, `true`, `yes` or `on` (and
//! left off by `0`, `false`, `no`, `off` or an empty value); a repeatable option takes several
//! values separated by `;` (`WEFT_CACHE_CONTROL="css=public, max-age=60;*=no-cache"`); the
//! document root is `WEFT_ROOT`.

use std::path::PathBuf;

use crate::demo::DemoConfig;
use crate::{allow_origins, is_safe_field_value, Cors, StaticOptions};

/// One application option.
#[derive(Clone, Copy, Debug)]
pub struct AppOption {
    /// The `weft serve` flag.
    pub flag: &'static str,
    /// The environment variable of the `wasi:http` component.
    pub env: &'static str,
    /// Whether it takes a value (else it is a switch).
    pub takes_value: bool,
    /// Whether it may be given several times (several values add up).
    pub repeatable: bool,
}

const fn switch(flag: &'static str, env: &'static str) -> AppOption {
    AppOption {
        flag,
        env,
        takes_value: false,
        repeatable: false,
    }
}

const fn value(flag: &'static str, env: &'static str) -> AppOption {
    AppOption {
        flag,
        env,
        takes_value: true,
        repeatable: false,
    }
}

const fn values(flag: &'static str, env: &'static str) -> AppOption {
    AppOption {
        flag,
        env,
        takes_value: true,
        repeatable: true,
    }
}

/// Every option of the application (the server's own, such as `--listen` or the timeouts,
/// are not here). The WebSocket ones have no effect behind a `wasi:http` host, which cannot
/// upgrade a connection.
pub const APP_OPTIONS: &[AppOption] = &[
    switch("--quiet", "WEFT_QUIET"),
    values("--cors-origin", "WEFT_CORS_ORIGIN"),
    switch("--no-listing", "WEFT_NO_LISTING"),
    switch("--allow-dotfiles", "WEFT_ALLOW_DOTFILES"),
    values("--cache-control", "WEFT_CACHE_CONTROL"),
    switch("--etag-inode", "WEFT_ETAG_INODE"),
    value("--file-cache", "WEFT_FILE_CACHE"),
    value("--compress-level", "WEFT_COMPRESS_LEVEL"),
    value("--compress-min-size", "WEFT_COMPRESS_MIN_SIZE"),
    value("--compress-cache", "WEFT_COMPRESS_CACHE"),
    value("--ws-max-message", "WEFT_WS_MAX_MESSAGE"),
    value("--ws-ping-interval", "WEFT_WS_PING_INTERVAL"),
    value("--ws-ping-timeout", "WEFT_WS_PING_TIMEOUT"),
    switch("--ws-no-deflate", "WEFT_WS_NO_DEFLATE"),
    values("--ws-origin", "WEFT_WS_ORIGIN"),
];

/// The environment variable that names the document root (the positional `ROOT` of
/// `weft serve`).
pub const ROOT_ENV: &str = "WEFT_ROOT";

/// The option called `flag`, if it is one of the application's.
pub fn find(flag: &str) -> Option<&'static AppOption> {
    APP_OPTIONS.iter().find(|o| o.flag == flag)
}

/// A number, or `Err` naming the option.
pub fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: not a valid number: {text}"))
}

/// A positive number of seconds.
pub fn seconds(flag: &str, text: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = number(flag, text)?;
    if !(secs > 0.0 && secs < 1e9) {
        return Err(format!("{flag}: must be a positive number of seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `EXT=VALUE` (`*=VALUE` for the default); a later value for the same extension replaces
/// the earlier one.
fn cache_control(files: &mut StaticOptions, arg: &str) -> Result<(), String> {
    let (ext, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("--cache-control: expected EXT=VALUE, got {arg}"))?;
    let ext = ext.strip_prefix('.').unwrap_or(ext);
    let value = value.trim();
    if !is_safe_field_value(value.as_bytes()) || value.is_empty() {
        return Err(format!(
            "--cache-control: not a valid header value: {value}"
        ));
    }
    if ext == "*" {
        files.cache_control = value.to_string();
    } else if !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
        let ext = ext.to_ascii_lowercase();
        files.cache_control_by_ext.retain(|(e, _)| *e != ext);
        files.cache_control_by_ext.push((ext, value.to_string()));
    } else {
        return Err(format!(
            "--cache-control: EXT must be letters and digits, or * for the default (got {ext})"
        ));
    }
    Ok(())
}

/// Applies the option `flag` (one of [`APP_OPTIONS`]) with `value` (ignored by switches) to
/// `config`. `Err` says which option and why.
pub fn apply(config: &mut DemoConfig, flag: &str, value: &str) -> Result<(), String> {
    match flag {
        "--quiet" => config.access_log = false,
        "--cors-origin" => {
            Cors::new(&[value]).map_err(|e| format!("--cors-origin: {e}"))?;
            config.cors_origins.push(value.to_string());
        }
        "--no-listing" => config.files.listing = false,
        "--allow-dotfiles" => config.files.allow_dotfiles = true,
        "--etag-inode" => config.files.etag_inode = true,
        "--file-cache" => config.files.memory_cache = number(flag, value)?,
        "--cache-control" => cache_control(&mut config.files, value)?,
        "--compress-level" => {
            let level: u8 = number(flag, value)?;
            if level > 9 {
                return Err("--compress-level: must be between 0 (off) and 9".into());
            }
            config.files.compress.level = level;
        }
        "--compress-min-size" => config.files.compress.min_size = number(flag, value)?,
        "--compress-cache" => config.files.compress.cache_bytes = number(flag, value)?,
        "--ws-max-message" => {
            let n: usize = number(flag, value)?;
            if n == 0 {
                return Err("--ws-max-message: must be at least 1".into());
            }
            config.ws_echo.config.max_message = n;
            config.ws_echo.config.max_frame = n;
        }
        "--ws-ping-interval" => {
            let t = seconds(flag, value)?;
            config.ws_echo.config.ping_interval = Some(t);
            config.ws_chat.config.ping_interval = Some(t);
        }
        "--ws-ping-timeout" => {
            let t = seconds(flag, value)?;
            config.ws_echo.config.ping_timeout = t;
            config.ws_chat.config.ping_timeout = t;
        }
        "--ws-no-deflate" => {
            config.ws_echo.deflate = false;
            config.ws_chat.deflate = false;
        }
        "--ws-origin" => {
            if value == "*" {
                return Err("--ws-origin: any origin is the default; omit the option".into());
            }
            Cors::new(&[value]).map_err(|e| format!("--ws-origin: {e}"))?;
            config.ws_origins.push(value.to_string());
            let check = allow_origins(config.ws_origins.clone());
            config.ws_echo.origin_check = Some(check.clone());
            config.ws_chat.origin_check = Some(check);
        }
        _ => return Err(format!("unknown option: {flag}")),
    }
    Ok(())
}

/// Whether an environment switch is set: `Err` for a value that is neither yes nor no.
fn switch_value(name: &str, text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{name}: expected 1 or 0 (true/false, yes/no, on/off), got {text:?}"
        )),
    }
}

/// Reads the application's options from environment variables (`lookup` gives a variable's
/// value). `WEFT_*` names that are not options are refused, so that a misspelt option is an
/// error, not a silent default: `names` lists every variable set.
pub fn from_env<'a>(
    config: &mut DemoConfig,
    names: impl IntoIterator<Item = &'a str>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    for name in names {
        if name.starts_with("WEFT_")
            && name != ROOT_ENV
            && !APP_OPTIONS.iter().any(|o| o.env == name)
        {
            return Err(format!("unknown option in the environment: {name}"));
        }
    }
    if let Some(root) = lookup(ROOT_ENV).filter(|r| !r.is_empty()) {
        config.root = Some(PathBuf::from(root));
    }
    for option in APP_OPTIONS {
        let Some(text) = lookup(option.env) else {
            continue;
        };
        let result = if !option.takes_value {
            match switch_value(option.env, &text)? {
                true => apply(config, option.flag, ""),
                false => Ok(()),
            }
        } else if option.repeatable {
            text.split(';')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .try_for_each(|v| apply(config, option.flag, v))
        } else {
            apply(config, option.flag, text.trim())
        };
        result.map_err(|e| format!("{} ({e})", option.env))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn env_config(vars: &[(&str, &str)]) -> Result<DemoConfig, String> {
        let mut config = DemoConfig::default();
        from_env(&mut config, vars.iter().map(|(n, _)| *n), |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })?;
        Ok(config)
    }

    #[test]
    fn every_option_has_its_environment_name() {
        for o in APP_OPTIONS {
            let expected = format!(
                "WEFT_{}",
                o.flag
                    .trim_start_matches('-')
                    .replace('-', "_")
                    .to_uppercase()
            );
            assert_eq!(o.env, expected);
            assert_eq!(find(o.flag).map(|f| f.env), Some(o.env));
        }
    }

    #[test]
    fn the_environment_sets_what_the_flags_set() {
        let c = env_config(&[
            ("WEFT_ROOT", "/site"),
            ("WEFT_QUIET", "1"),
            ("WEFT_NO_LISTING", "yes"),
            ("WEFT_ALLOW_DOTFILES", "0"),
            ("WEFT_CORS_ORIGIN", "http://a.example; *"),
            ("WEFT_CACHE_CONTROL", "*=public, max-age=60;css=no-store"),
            ("WEFT_COMPRESS_LEVEL", "9"),
            ("PATH", "/bin"),
        ])
        .unwrap();
        assert_eq!(c.root, Some(PathBuf::from("/site")));
        assert!(!c.access_log);
        assert!(!c.files.listing);
        assert!(!c.files.allow_dotfiles);
        assert_eq!(c.cors_origins, ["http://a.example", "*"]);
        assert_eq!(c.files.cache_control, "public, max-age=60");
        assert_eq!(
            c.files.cache_control_by_ext,
            [("css".to_string(), "no-store".to_string())]
        );
        assert_eq!(c.files.compress.level, 9);
        let c = env_config(&[]).unwrap();
        assert_eq!(c.root, None);
        assert!(c.access_log && c.files.listing);
    }

    #[test]
    fn the_environment_refuses_nonsense() {
        assert!(env_config(&[("WEFT_COMPRESS_LEVEL", "10")]).is_err());
        assert!(env_config(&[("WEFT_QUIET", "perhaps")]).is_err());
        assert!(env_config(&[("WEFT_COMPRES_LEVEL", "1")]).is_err());
        assert!(env_config(&[("WEFT_CORS_ORIGIN", "example.com")]).is_err());
        let err = env_config(&[("WEFT_FILE_CACHE", "lots")]).unwrap_err();
        assert!(err.starts_with("WEFT_FILE_CACHE"), "{err}");
    }
}
