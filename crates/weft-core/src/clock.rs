//! The monotonic instant of every deadline.
//!
//! On every target with a clock this is `std::time::Instant`. `wasm32-unknown-unknown` has
//! none (`std::time::Instant::now` panics there and there is no other way to make one), so a
//! build for it (the `weft-engine` component, whose host passes the time in) uses
//! [`NanoInstant`]: nanoseconds on the host's monotonic clock. The core needs only ordering
//! and `checked_add`, which both types have.

use std::time::Duration;

#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
pub use std::time::Instant;

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub use NanoInstant as Instant;

/// A point on a monotonic clock given as nanoseconds from an origin its owner chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NanoInstant(u64);

impl NanoInstant {
    /// The instant `nanos` nanoseconds after the clock's origin.
    pub const fn from_nanos(nanos: u64) -> NanoInstant {
        NanoInstant(nanos)
    }

    /// Nanoseconds since the clock's origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + after`, or `None` when that is past the clock's range (a deadline that never
    /// comes).
    pub fn checked_add(self, after: Duration) -> Option<NanoInstant> {
        let after = u64::try_from(after.as_nanos()).ok()?;
        self.0.checked_add(after).map(NanoInstant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_add_is_never_on_overflow() {
        let t = NanoInstant::from_nanos(5);
        assert_eq!(
            t.checked_add(Duration::from_nanos(7)),
            Some(NanoInstant::from_nanos(12))
        );
        assert_eq!(
            NanoInstant::from_nanos(u64::MAX).checked_add(Duration::from_nanos(1)),
            None
        );
        assert_eq!(t.checked_add(Duration::MAX), None);
        assert!(NanoInstant::from_nanos(1) < NanoInstant::from_nanos(2));
    }
}
