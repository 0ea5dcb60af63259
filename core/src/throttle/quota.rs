//! Quota periods: which calendar days a `DAY`, `WEEK` or `MONTH` quota counts together, in
//! UTC, with AWS's `offset` (the day a period starts).
//!
//! Written here rather than taken from a crate: it is three lines of calendar arithmetic per
//! period on the `time` crate's `Date`, and AWS's meaning of `offset` is its own.

use std::time::SystemTime;

use ::time::{Date, Duration as Days, Month};

use crate::config::{QuotaDefinition, QuotaPeriod};
use crate::error::{Error, KeyPath};

/// A compiled quota: so many requests per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotaRule {
    pub(crate) limit: u64,
    pub(crate) period: QuotaPeriod,
    /// Days after Sunday (`WEEK`) or after the 1st (`MONTH`) that a period starts.
    offset: u8,
}

impl QuotaRule {
    /// `quota` at `at`: `offset` must name a day of the period.
    pub(crate) fn compile(quota: &QuotaDefinition, at: &KeyPath) -> Result<Self, Error> {
        let most = match quota.period {
            QuotaPeriod::Day => 0,
            QuotaPeriod::Week => 6,
            QuotaPeriod::Month => 27,
        };
        let offset = u8::try_from(quota.offset)
            .ok()
            .filter(|o| u64::from(*o) <= most);
        let Some(offset) = offset else {
            let period = match quota.period {
                QuotaPeriod::Day => "DAY",
                QuotaPeriod::Week => "WEEK",
                QuotaPeriod::Month => "MONTH",
            };
            return Err(Error::config(
                at.key("offset"),
                format!("a {period} quota's offset is a day of the period, 0 to {most}"),
            ));
        };
        Ok(QuotaRule {
            limit: quota.limit,
            period: quota.period,
            offset,
        })
    }

    /// The period that `day` falls in: its first day and the first day of the next one.
    pub(crate) fn period_of(&self, day: Date) -> (Date, Date) {
        match self.period {
            QuotaPeriod::Day => (day, day.next_day().unwrap_or(day)),
            QuotaPeriod::Week => {
                let since_sunday = i64::from(day.weekday().number_days_from_sunday());
                let back = (since_sunday - i64::from(self.offset)).rem_euclid(7);
                let start = day.saturating_sub(Days::days(back));
                (start, start.saturating_add(Days::days(7)))
            }
            QuotaPeriod::Month => {
                let start_day = self.offset + 1;
                let this_month = month_day(day.year(), day.month(), start_day);
                let start = if day >= this_month {
                    this_month
                } else {
                    let (year, month) = previous_month(day.year(), day.month());
                    month_day(year, month, start_day)
                };
                let (year, month) = next_month(start.year(), start.month());
                (start, month_day(year, month, start_day))
            }
        }
    }

    /// The period `now` falls in (UTC).
    pub(crate) fn period_at(&self, now: SystemTime) -> (Date, Date) {
        self.period_of(crate::time::utc_date(now))
    }
}

/// Day `day` (1-28) of a month: always a real date.
fn month_day(year: i32, month: Month, day: u8) -> Date {
    Date::from_calendar_date(year, month, day).unwrap_or(Date::MIN)
}

fn previous_month(year: i32, month: Month) -> (i32, Month) {
    match month {
        Month::January => (year - 1, Month::December),
        other => (year, other.previous()),
    }
}

fn next_month(year: i32, month: Month) -> (i32, Month) {
    match month {
        Month::December => (year + 1, Month::January),
        other => (year, other.next()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::time::macros::date;

    fn rule(period: QuotaPeriod, offset: u8) -> QuotaRule {
        QuotaRule {
            limit: 10,
            period,
            offset,
        }
    }

    #[test]
    fn days_weeks_and_months_start_where_aws_says() {
        let day = rule(QuotaPeriod::Day, 0);
        assert_eq!(
            day.period_of(date!(2026 - 12 - 31)),
            (date!(2026 - 12 - 31), date!(2027 - 01 - 01))
        );
        // 2026-11-29 is a Sunday: offset 0 starts weeks on Sunday, 1 on Monday.
        let week = rule(QuotaPeriod::Week, 0);
        assert_eq!(
            week.period_of(date!(2026 - 11 - 29)),
            (date!(2026 - 11 - 29), date!(2026 - 12 - 06))
        );
        assert_eq!(
            week.period_of(date!(2026 - 12 - 05)),
            (date!(2026 - 11 - 29), date!(2026 - 12 - 06))
        );
        let monday = rule(QuotaPeriod::Week, 1);
        assert_eq!(
            monday.period_of(date!(2026 - 11 - 29)),
            (date!(2026 - 11 - 23), date!(2026 - 11 - 30))
        );
        assert_eq!(
            monday.period_of(date!(2026 - 11 - 30)),
            (date!(2026 - 11 - 30), date!(2026 - 12 - 07))
        );
        let month = rule(QuotaPeriod::Month, 0);
        assert_eq!(
            month.period_of(date!(2024 - 02 - 29)),
            (date!(2024 - 02 - 01), date!(2024 - 03 - 01))
        );
        assert_eq!(
            month.period_of(date!(2026 - 12 - 31)),
            (date!(2026 - 12 - 01), date!(2027 - 01 - 01))
        );
        let fifteenth = rule(QuotaPeriod::Month, 14);
        assert_eq!(
            fifteenth.period_of(date!(2027 - 01 - 14)),
            (date!(2026 - 12 - 15), date!(2027 - 01 - 15))
        );
        assert_eq!(
            fifteenth.period_of(date!(2027 - 01 - 15)),
            (date!(2027 - 01 - 15), date!(2027 - 02 - 15))
        );
    }

    #[test]
    fn an_offset_outside_the_period_is_a_load_error() {
        let at = KeyPath::root().key("usagePlans").key("free").key("quota");
        let quota = |period, offset| QuotaDefinition {
            limit: 5,
            period,
            offset,
        };
        assert!(QuotaRule::compile(&quota(QuotaPeriod::Week, 6), &at).is_ok());
        for (period, offset) in [
            (QuotaPeriod::Day, 1),
            (QuotaPeriod::Week, 7),
            (QuotaPeriod::Month, 28),
        ] {
            let error = QuotaRule::compile(&quota(period, offset), &at).unwrap_err();
            let text = error.to_string();
            assert!(text.contains("usagePlans.free.quota.offset"), "{text}");
        }
    }
}
