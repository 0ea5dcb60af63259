//! UTC calendar time from a Unix timestamp, for plugins that format dates (wasm guests have no
//! time zone database, and std has no calendar), on the `time` crate.

use ::time::{OffsetDateTime, PrimitiveDateTime};

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcDateTime {
    /// The year (`2024`).
    pub year: i64,
    /// The month, 1-12.
    pub month: u32,
    /// The day of the month, 1-31.
    pub day: u32,
    /// The hour, 0-23.
    pub hour: u32,
    /// The minute, 0-59.
    pub minute: u32,
    /// The second, 0-59.
    pub second: u32,
}

impl UtcDateTime {
    /// The UTC date and time `epoch_secs` seconds after 1970-01-01T00:00:00Z; past the end of
    /// the year 9999, the last second of that year.
    pub fn from_epoch_secs(epoch_secs: u64) -> Self {
        let t = utc(epoch_secs);
        UtcDateTime {
            year: i64::from(t.year()),
            month: u32::from(u8::from(t.month())),
            day: u32::from(t.day()),
            hour: u32::from(t.hour()),
            minute: u32::from(t.minute()),
            second: u32::from(t.second()),
        }
    }
}

/// `epoch_secs` as a UTC date-time, saturating at the last second `time` represents.
pub(crate) fn utc(epoch_secs: u64) -> OffsetDateTime {
    i64::try_from(epoch_secs)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or_else(|| PrimitiveDateTime::MAX.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        let t = |year, month, day, hour, minute, second| UtcDateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        };
        assert_eq!(UtcDateTime::from_epoch_secs(0), t(1970, 1, 1, 0, 0, 0));
        assert_eq!(
            UtcDateTime::from_epoch_secs(951_782_400),
            t(2000, 2, 29, 0, 0, 0)
        );
        assert_eq!(
            UtcDateTime::from_epoch_secs(1_584_039_838),
            t(2020, 3, 12, 19, 3, 58)
        );
        assert_eq!(
            UtcDateTime::from_epoch_secs(1_735_689_599),
            t(2024, 12, 31, 23, 59, 59)
        );
        assert_eq!(
            UtcDateTime::from_epoch_secs(u64::MAX),
            t(9999, 12, 31, 23, 59, 59)
        );
    }
}
