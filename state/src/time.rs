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

impl Timestamp {
    /// RFC 3339 in UTC with nanoseconds when there are any: `2026-11-30T03:12:00Z`,
    /// `2026-11-30T03:12:00.250Z`.
    pub fn to_rfc3339(self) -> String {
        self.rfc3339().as_str().to_owned()
    }

    /// [`Timestamp::to_rfc3339`] written on the stack: an export of millions of stamps
    /// allocates none.
    pub fn rfc3339(self) -> Rfc3339 {
        let seconds = self.0 / 1_000_000_000;
        let days = i64::try_from(seconds / 86_400).expect("u64 seconds / 86400 fits in i64");
        let (year, month, day) = civil_from_days(days);
        let of_day = seconds % 86_400;
        let mut text = Rfc3339 { bytes: [0; RFC3339_MAX], len: 0 };
        // u64 nanoseconds end in 2554: the year has four digits.
        text.digits(u64::try_from(year).expect("a year after 1970"), 4);
        text.push(b'-');
        text.digits(u64::from(month), 2);
        text.push(b'-');
        text.digits(u64::from(day), 2);
        text.push(b'T');
        text.digits(of_day / 3600, 2);
        text.push(b':');
        text.digits(of_day % 3600 / 60, 2);
        text.push(b':');
        text.digits(of_day % 60, 2);
        match self.0 % 1_000_000_000 {
            0 => {}
            nanos if nanos % 1_000_000 == 0 => {
                text.push(b'.');
                text.digits(nanos / 1_000_000, 3);
            }
            nanos => {
                text.push(b'.');
                text.digits(nanos, 9);
            }
        }
        text.push(b'Z');
        text
    }

    /// Marathon's shape: always milliseconds, truncated (`2016-03-21T09:26:18.987Z`).
    pub fn to_rfc3339_millis(self) -> String {
        self.format_with_fraction(&format!(".{:03}", self.0 % 1_000_000_000 / 1_000_000))
    }

    fn format_with_fraction(self, fraction: &str) -> String {
        let seconds = self.0 / 1_000_000_000;
        let days = i64::try_from(seconds / 86_400).expect("u64 seconds / 86400 fits in i64");
        let (year, month, day) = civil_from_days(days);
        let of_day = seconds % 86_400;
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}Z",
            of_day / 3600,
            of_day % 3600 / 60,
            of_day % 60,
        )
    }

    /// Parses RFC 3339 (`Z` or a `±HH:MM` offset, optional fraction) or seconds since the
    /// epoch (`1764472320`, `1764472320.5`). The error says what was expected.
    pub fn parse(text: &str) -> Result<Timestamp, String> {
        let text = text.trim();
        if !text.contains(['T', 't', ' ']) {
            return Timestamp::parse_epoch(text).ok_or_else(|| {
                format!("'{text}' is neither RFC 3339 (2026-11-30T03:12:00Z) nor epoch seconds")
            });
        }
        Timestamp::parse_rfc3339(text)
            .ok_or_else(|| format!("'{text}' is not RFC 3339, like 2026-11-30T03:12:00Z"))
    }

    /// Exact decimal seconds: no float rounding.
    fn parse_epoch(text: &str) -> Option<Timestamp> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return None;
        }
        let kept = &fraction[..fraction.len().min(9)];
        let nanos = match kept {
            "" => 0,
            kept => kept.parse::<u64>().ok()? * 10u64.pow(9 - kept.len() as u32),
        };
        whole.parse::<u64>().ok()?.checked_mul(1_000_000_000)?.checked_add(nanos).map(Timestamp)
    }

    fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let number = |from: usize, to: usize| -> Option<i64> {
            let digits = text.get(from..to)?;
            digits.bytes().all(|b| b.is_ascii_digit()).then(|| digits.parse().ok())?
        };
        let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
        let separators = text.as_bytes();
        if separators.get(4) != Some(&b'-')
            || separators.get(7) != Some(&b'-')
            || !matches!(separators.get(10), Some(b'T' | b't' | b' '))
            || separators.get(13) != Some(&b':')
            || separators.get(16) != Some(&b':')
        {
            return None;
        }
        let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
            return None;
        }
        if second > 60 {
            return None;
        }
        let mut rest = &text[19..];
        let mut nanos = 0i64;
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let kept = &fraction[..digits.min(9)];
            nanos = kept.parse::<i64>().ok()? * 10i64.pow(9 - kept.len() as u32);
            rest = &fraction[digits..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ => {
                let sign = match rest.as_bytes().first()? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                    return None;
                }
                let hours: i64 = rest.get(1..3)?.parse().ok()?;
                let minutes: i64 = rest.get(4..6)?.parse().ok()?;
                sign * (hours * 3600 + minutes * 60)
            }
        };
        let days = days_from_civil(year, month as u32, day as u32);
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
        let whole = u64::try_from(seconds).ok()?.checked_mul(1_000_000_000)?;
        Some(Timestamp(whole.checked_add(u64::try_from(nanos).ok()?)?))
    }
}

/// The longest RFC 3339 stamp: `2554-07-21T23:34:33.709551615Z`.
const RFC3339_MAX: usize = 30;

/// An RFC 3339 stamp held on the stack ([`Timestamp::rfc3339`]).
#[derive(Clone, Copy)]
pub struct Rfc3339 {
    bytes: [u8; RFC3339_MAX],
    len: usize,
}

impl Rfc3339 {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).expect("only ASCII digits and separators")
    }

    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    /// `value` zero-padded to `width` digits (it has no more).
    fn digits(&mut self, mut value: u64, width: usize) {
        for slot in self.bytes[self.len..self.len + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += width;
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    /// What `to_rfc3339` wrote before it wrote on the stack.
    fn formatted(at: Timestamp) -> String {
        let fraction = match at.0 % 1_000_000_000 {
            0 => String::new(),
            nanos if nanos % 1_000_000 == 0 => format!(".{:03}", nanos / 1_000_000),
            nanos => format!(".{nanos:09}"),
        };
        at.format_with_fraction(&fraction)
    }

    #[test]
    fn a_stamp_written_on_the_stack_is_the_formatted_one() {
        let stamps = [
            0,
            1,
            999_999_999,
            1_000_000_000,
            1_764_558_720_000_000_000,
            1_764_558_720_250_000_000,
            1_764_558_720_250_000_001,
            1_764_558_720_000_001_000,
            951_782_400_000_000_000,
            4_102_444_799_999_000_000,
            u64::MAX,
        ];
        for nanos in stamps.into_iter().chain((0..2_000u64).map(|i| i * 7_919_003_137_000_017)) {
            let at = Timestamp(nanos);
            assert_eq!(at.rfc3339().as_str(), formatted(at), "{nanos}");
            assert_eq!(at.to_rfc3339(), formatted(at), "{nanos}");
        }
    }
}
