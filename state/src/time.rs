//! Time as data. The leader stamps each entry; nothing in this crate reads a clock.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Nanoseconds since the Unix epoch.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const fn from_secs(secs: u64) -> Timestamp {
        Timestamp(secs * 1_000_000_000)
    }

    pub const fn from_millis(millis: u64) -> Timestamp {
        Timestamp(millis * 1_000_000)
    }

    pub const fn nanos(self) -> u64 {
        self.0
    }

    /// Seconds as a double, the form Mesos uses for `TaskStatus.timestamp`.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    pub fn plus(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration.as_nanos().min(u128::from(u64::MAX)) as u64))
    }

    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.0 / 1_000_000_000, self.0 % 1_000_000_000)
    }
}
