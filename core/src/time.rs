//! The one date routine: the wall-clock time of a request, and the two ways API Gateway prints
//! it (Common Log Format text and epoch milliseconds), on the `time` crate.
//!
//! A leaf: the log phase (`$context.requestTime`, `$context.requestTimeEpoch`), the Lambda
//! events (`requestTime`, `time`, `requestTimeEpoch`, `timeEpoch`) and the JWT claim checks
//! (`exp`, `nbf`, `iat` in epoch seconds) all come here, and so does the throttle phase's
//! [`Clock`] (token buckets, quota periods, usage days).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ::time::{OffsetDateTime, PrimitiveDateTime};

/// The months as Common Log Format names them.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The time source of the gateway's token buckets and quota periods: the system's clocks, or a
/// manual clock that moves only when told (for tests of rates and of quota periods rolling over
/// at midnight UTC, without waiting for them).
#[derive(Clone, Debug)]
pub struct Clock {
    inner: ClockInner,
}

#[derive(Clone, Debug)]
enum ClockInner {
    /// Monotonic time since `origin` (buckets) and the system's wall clock (quotas).
    System { origin: Instant },
    /// Nanoseconds after `start`, moved by [`Clock::advance`].
    Manual {
        start: SystemTime,
        elapsed: Arc<AtomicU64>,
    },
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The system's clocks (the default).
    pub fn system() -> Self {
        Clock {
            inner: ClockInner::System {
                origin: Instant::now(),
            },
        }
    }

    /// A clock that reads `start` until [`Clock::advance`] moves it. Clones share it.
    pub fn manual(start: SystemTime) -> Self {
        Clock {
            inner: ClockInner::Manual {
                start,
                elapsed: Arc::new(AtomicU64::new(0)),
            },
        }
    }

    /// Moves a manual clock (and every clone of it) forward by `by`; the system clock cannot
    /// be moved, and ignores it.
    pub fn advance(&self, by: Duration) {
        if let ClockInner::Manual { elapsed, .. } = &self.inner {
            let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            elapsed.fetch_add(nanos, Ordering::AcqRel);
        }
    }

    /// The wall-clock time.
    pub fn now(&self) -> SystemTime {
        match &self.inner {
            ClockInner::System { .. } => SystemTime::now(),
            ClockInner::Manual { start, elapsed } => {
                *start + Duration::from_nanos(elapsed.load(Ordering::Acquire))
            }
        }
    }

    /// Monotonic time since the clock was made: what token buckets count in.
    pub(crate) fn elapsed(&self) -> Duration {
        match &self.inner {
            ClockInner::System { origin } => origin.elapsed(),
            ClockInner::Manual { elapsed, .. } => {
                Duration::from_nanos(elapsed.load(Ordering::Acquire))
            }
        }
    }
}

/// The UTC calendar date of `time` (the epoch for an earlier time).
pub(crate) fn utc_date(time: SystemTime) -> ::time::Date {
    utc(time).date()
}

/// `time` in UTC, clamped into the `time` crate's range.
pub(crate) fn utc(time: SystemTime) -> OffsetDateTime {
    i64::try_from(epoch_seconds(time))
        .ok()
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
        .unwrap_or_else(|| PrimitiveDateTime::MAX.assume_utc())
}

/// Midnight UTC at the start of `date`, as a system time.
#[allow(dead_code)] // The Redis store expires quota counters at a period's end.
pub(crate) fn midnight(date: ::time::Date) -> SystemTime {
    let seconds = date.midnight().assume_utc().unix_timestamp();
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

/// The wall-clock time of `instant`, a monotonic clock reading taken earlier: requests read
/// the wall clock only when something prints or sends their arrival time.
pub(crate) fn wall_clock(instant: Instant) -> SystemTime {
    let now = SystemTime::now();
    now.checked_sub(instant.elapsed()).unwrap_or(now)
}

/// `time` in milliseconds since the Unix epoch (0 for an earlier time).
pub(crate) fn epoch_millis(time: SystemTime) -> u64 {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// `time` in whole seconds since the Unix epoch (0 for an earlier time).
pub(crate) fn epoch_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The wall clock now, in whole seconds since the Unix epoch: what JWT's `exp`, `nbf` and
/// `iat` count.
pub(crate) fn epoch_seconds_now() -> u64 {
    epoch_seconds(SystemTime::now())
}

/// `25/Nov/2026:06:27:37 +0000`: `time` in API Gateway's request-time format (Common Log
/// Format, UTC, whole seconds). A time before 1970 prints as the epoch, one after the year
/// 9999 as its last second: the system clock never reads either.
pub(crate) fn clf_time(time: SystemTime) -> String {
    let utc = utc(time);
    // The calendar is the `time` crate's; the fixed-width fields are printed here: the
    // crate's interpreted format descriptions cost ten times more, and every Lambda event
    // and every access log line with a request time pays for this.
    let (year, month, day) = utc.to_calendar_date();
    let (hour, minute, second) = utc.to_hms();
    let mut text = String::with_capacity(26);
    push_digits(&mut text, u32::from(day), 2);
    text.push('/');
    text.push_str(MONTHS[usize::from(u8::from(month)).clamp(1, 12) - 1]);
    text.push('/');
    push_digits(&mut text, u32::try_from(year).unwrap_or(0), 4);
    for (separator, value) in [(':', hour), (':', minute), (':', second)] {
        text.push(separator);
        push_digits(&mut text, u32::from(value), 2);
    }
    text.push_str(" +0000");
    text
}

/// The last `width` decimal digits of `value`, zero-padded.
fn push_digits(text: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10u32.pow(place) % 10;
        text.push(char::from(b'0' + digit as u8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn request_time_is_common_log_format() {
        assert_eq!(
            clf_time(SystemTime::UNIX_EPOCH),
            "01/Jan/1970:00:00:00 +0000"
        );
        // 2020-03-12T19:03:58Z
        assert_eq!(clf_time(at(1_584_039_838)), "12/Mar/2020:19:03:58 +0000");
        // 2024-02-29T23:59:59Z, a leap day
        assert_eq!(clf_time(at(1_709_251_199)), "29/Feb/2024:23:59:59 +0000");
        // 2000-02-29, the leap day of a century divisible by 400
        assert_eq!(clf_time(at(951_782_400)), "29/Feb/2000:00:00:00 +0000");
        // Milliseconds are dropped, not rounded.
        assert_eq!(
            clf_time(SystemTime::UNIX_EPOCH + Duration::from_millis(1_583_348_638_999)),
            "04/Mar/2020:19:03:58 +0000"
        );
    }

    #[test]
    fn times_the_clock_never_reads_stay_in_range() {
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(clf_time(before), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(epoch_millis(before), 0);
        assert_eq!(epoch_seconds(before), 0);
        assert_eq!(clf_time(at(400_000_000_000)), "31/Dec/9999:23:59:59 +0000");
    }

    #[test]
    fn epoch_millis_counts_from_1970() {
        assert_eq!(epoch_millis(SystemTime::UNIX_EPOCH), 0);
        assert_eq!(
            epoch_millis(SystemTime::UNIX_EPOCH + Duration::from_millis(1_583_348_638_390)),
            1_583_348_638_390
        );
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = Clock::manual(at(1_700_000_000));
        let clone = clock.clone();
        assert_eq!(clock.now(), at(1_700_000_000));
        assert_eq!(clock.elapsed(), Duration::ZERO);
        clone.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), at(1_700_000_000) + Duration::from_millis(1500));
        assert_eq!(clock.elapsed(), Duration::from_millis(1500));
        // 2023-11-14T22:13:20Z
        assert_eq!(utc_date(clock.now()).to_string(), "2023-11-14");
        assert_eq!(midnight(utc_date(clock.now())), at(1_699_920_000));
    }

    #[test]
    fn epoch_seconds_drop_the_milliseconds() {
        assert_eq!(epoch_seconds(SystemTime::UNIX_EPOCH), 0);
        assert_eq!(
            epoch_seconds(SystemTime::UNIX_EPOCH + Duration::from_millis(1_583_348_638_999)),
            1_583_348_638
        );
    }

    #[test]
    fn wall_clock_gives_the_time_of_an_earlier_instant() {
        let before = SystemTime::now();
        let instant = Instant::now();
        let after = SystemTime::now();
        std::thread::sleep(Duration::from_millis(30));
        let then = wall_clock(instant);
        // Within the readings around it (1 ms of slack for the two clocks' rounding).
        let slack = Duration::from_millis(1);
        assert!(then + slack >= before, "{then:?} < {before:?}");
        assert!(then <= after + slack, "{then:?} > {after:?}");
    }
}
