use std::time::SystemTime;

use crate::clock::Instant;

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the value of a `Date` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpDate([u8; 29]);

impl HttpDate {
    /// Formats a wall-clock time given by the caller.
    pub fn from_system_time(t: SystemTime) -> HttpDate {
        let text = httpdate::fmt_http_date(t);
        let mut bytes = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        if text.len() == bytes.len() {
            bytes.copy_from_slice(text.as_bytes());
        }
        HttpDate(bytes)
    }

    /// The 29 bytes of the date.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Formats the `Date` header at most once per second of wall-clock time (the caller supplies
/// the clock readings).
#[derive(Debug)]
pub struct DateCache {
    second: Option<u64>,
    date: HttpDate,
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache::new()
    }
}

impl DateCache {
    /// An empty cache (the first call formats the date).
    pub fn new() -> DateCache {
        DateCache {
            second: None,
            date: HttpDate::from_system_time(SystemTime::UNIX_EPOCH),
        }
    }

    /// The date for wall-clock time `t`, reformatted only when the second changed.
    pub fn get(&mut self, t: SystemTime) -> HttpDate {
        let second = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if self.second != Some(second) {
            self.second = Some(second);
            self.date = HttpDate::from_system_time(t);
        }
        self.date
    }
}

/// The current time as the driver read it: a monotonic instant for deadlines and the formatted
/// wall-clock date for responses.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// The monotonic clock, for deadlines.
    pub instant: Instant,
    /// The wall-clock date, formatted for the `Date` field.
    pub date: HttpDate,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_and_caches() {
        let mut cache = DateCache::new();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(cache.get(t).as_bytes(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        let later = t + Duration::from_millis(999);
        assert_eq!(
            cache.get(later).as_bytes(),
            b"Sun, 06 Nov 1994 08:49:37 GMT"
        );
        let next = t + Duration::from_secs(1);
        assert_eq!(cache.get(next).as_bytes(), b"Sun, 06 Nov 1994 08:49:38 GMT");
    }
}
