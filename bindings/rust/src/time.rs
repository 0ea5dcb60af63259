//! UTC calendar time from a Unix timestamp, for plugins that format dates (wasm guests have no
//! time zone database, and std has no calendar).

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
    /// The UTC date and time `epoch_secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_epoch_secs(epoch_secs: u64) -> Self {
        let (days, rem) = (epoch_secs / 86_400, epoch_secs % 86_400);
        // Howard Hinnant's civil_from_days.
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        UtcDateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }
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
    }
}
