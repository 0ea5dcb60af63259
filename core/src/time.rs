//! The one date routine: the wall-clock time of a request, and the two ways API Gateway prints
//! it (Common Log Format text and epoch milliseconds), on the `time` crate.
//!
//! A leaf: the log phase (`$context.requestTime`, `$context.requestTimeEpoch`), the Lambda
//! events (`requestTime`, `time`, `requestTimeEpoch`, `timeEpoch`) and the JWT claim checks
//! (`exp`, `nbf`, `iat` in epoch seconds) all come here.

use std::time::{Duration, Instant, SystemTime};

use ::time::format_description::BorrowedFormatItem;
use ::time::macros::format_description;
use ::time::{OffsetDateTime, PrimitiveDateTime};

/// `25/Nov/2026:06:27:37 +0000`: API Gateway's request time (Common Log Format), in UTC.
const CLF: &[BorrowedFormatItem<'static>] = format_description!(
    "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
);

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
    let utc = i64::try_from(epoch_seconds(time))
        .ok()
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
        .unwrap_or_else(|| PrimitiveDateTime::MAX.assume_utc());
    // Formatting fails only on a writer's error or a component the value lacks; a String
    // and a UTC date-time have neither.
    utc.format(CLF).unwrap_or_default()
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
