//! The host's clock readings turned into the core's `Instant` and `Now`.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use weft_core::{DateCache, Instant, Now};

use crate::wit_types;

/// The last second the `Date` field is written for (9999-12-31T23:59:59Z): the date formatter
/// refuses later times, so a later reading is written as this second.
const LAST_DATE_SECOND: u64 = 253_402_300_799;

thread_local! {
    /// One cache for the instance: the date is formatted once per second.
    static DATES: RefCell<DateCache> = RefCell::new(DateCache::new());
}

/// The core's `Instant` for `nanos` on the host's monotonic clock.
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub fn instant(nanos: u64) -> Instant {
    Instant::from_nanos(nanos)
}

/// Nanoseconds on the host's monotonic clock for the core's `Instant`.
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub fn nanos(instant: Instant) -> u64 {
    instant.as_nanos()
}

/// On a target with a clock (the crate built natively, for its tests), the host's origin is
/// mapped to the first reading of the process's monotonic clock.
#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// The core's `Instant` for `nanos` on the host's monotonic clock.
#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
pub fn instant(nanos: u64) -> Instant {
    let origin = origin();
    origin
        .checked_add(Duration::from_nanos(nanos))
        .unwrap_or(origin)
}

/// Nanoseconds on the host's monotonic clock for the core's `Instant`.
#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
pub fn nanos(instant: Instant) -> u64 {
    let since = instant.saturating_duration_since(origin()).as_nanos();
    u64::try_from(since).unwrap_or(u64::MAX)
}

/// The core's `Now` for the host's readings.
pub fn now(now: wit_types::Now) -> Now {
    let second = now.unix_seconds.min(LAST_DATE_SECOND);
    let wall = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(second))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let date = DATES.with(|cache| match cache.try_borrow_mut() {
        Ok(mut cache) => cache.get(wall),
        Err(_) => weft_core::HttpDate::from_system_time(wall),
    });
    Now {
        instant: instant(now.instant),
        date,
    }
}

/// A duration in nanoseconds.
pub fn duration(nanos: u64) -> Duration {
    Duration::from_nanos(nanos)
}

/// A duration in nanoseconds, saturated.
pub fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A size from the WIT's `u64`, saturated to what this target addresses.
pub fn size(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A size for the WIT.
pub fn size_out(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
