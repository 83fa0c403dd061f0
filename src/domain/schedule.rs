//! When sessions happen: program-local dates and wall times, turned into UTC instants.
//!
//! A cohort meets in a weekly slot that is defined in the program's time zone
//! ("Tuesday 18:00 in Vancouver"), so the UTC instant of a session moves when daylight
//! saving time starts or ends, while the local wall time stays put. Everything stored is
//! UTC; everything a person sees is local.
//!
//! Formation does its arithmetic on day numbers (`i64`, days from the common era) so that
//! its hot loop never builds a `NaiveDate`; the `*_days` helpers here are the single
//! source of that arithmetic and the public `NaiveDate` functions are thin wrappers over
//! them, which keeps both views of the rules identical.

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, Offset, TimeDelta, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;

/// The first date on or after `from` that falls on `weekday`.
///
/// Saturates at `NaiveDate::MAX` (which then need not be that weekday): dates that far
/// out only come from corrupt data and must not panic.
pub fn next_on_weekday(from: NaiveDate, weekday: Weekday) -> NaiveDate {
    let ahead = (7 + weekday.num_days_from_monday() - from.weekday().num_days_from_monday()) % 7;
    from.checked_add_days(Days::new(u64::from(ahead)))
        .unwrap_or(NaiveDate::MAX)
}

/// The UTC instant of a program-local date and wall time.
///
/// * An ambiguous local time (the repeated hour when clocks fall back) resolves to the
///   earlier instant, so a session is never silently an hour late.
/// * A local time that does not exist (the skipped hour when clocks spring forward) is
///   shifted forward by the length of the gap — 02:30 becomes 03:30 — which is what a
///   wall clock that was not yet changed would show, and what people expect.
pub fn local_to_utc(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let local = date.and_time(time);
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => at.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _later) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            // Read the wall time with the offset in force just before the gap. A day
            // before (read as UTC) is safely before the gap and, in every real zone, after
            // the previous transition, which is months earlier.
            let probe = local
                .checked_sub_signed(TimeDelta::days(1))
                .unwrap_or(local);
            let before = tz.offset_from_utc_datetime(&probe).fix();
            let utc = local
                .checked_sub_signed(TimeDelta::seconds(i64::from(before.local_minus_utc())))
                .unwrap_or(local);
            Utc.from_utc_datetime(&utc)
        }
    }
}

/// Start instants of `count` sessions, every `interval_weeks` weeks from `first_date`, at
/// the same local wall `time` in `tz` (so DST changes move the UTC instant, not the wall
/// time).
///
/// Stops early rather than panicking if dates would run past `NaiveDate::MAX`.
pub fn weekly_sessions(
    tz: Tz,
    first_date: NaiveDate,
    time: NaiveTime,
    count: u32,
    interval_weeks: u32,
) -> Vec<DateTime<Utc>> {
    let step = 7 * u64::from(interval_weeks);
    (0..u64::from(count))
        .map_while(|k| first_date.checked_add_days(Days::new(step * k)))
        .map(|date| local_to_utc(tz, date, time))
        .collect()
}

/// The earliest date a new cohort whose latest member was dosed on `latest_dosed_on`
/// may first meet: not before `latest_dosed_on + min_days_after_dosing` (integration
/// needs the dosing behind everyone), not before `today + notice_days` (so the welcome
/// email lands first), and on the program's `weekday`.
pub fn earliest_first_session_date(
    latest_dosed_on: NaiveDate,
    today: NaiveDate,
    weekday: Weekday,
    min_days_after_dosing: i64,
    notice_days: i64,
) -> NaiveDate {
    date_from_days(earliest_first_session_days(
        days(latest_dosed_on),
        days(today),
        weekday,
        min_days_after_dosing,
        notice_days,
    ))
}

/// A date as a day number (days from the common era; 0001-01-01 is day 1, a Monday).
pub(crate) fn days(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce())
}

/// The date of a day number, clamped to chrono's representable range.
pub(crate) fn date_from_days(day: i64) -> NaiveDate {
    let clamped = day.clamp(
        i64::from(NaiveDate::MIN.num_days_from_ce()),
        i64::from(NaiveDate::MAX.num_days_from_ce()),
    );
    i32::try_from(clamped)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .expect("a day number clamped to chrono's range is a valid date")
}

/// [`next_on_weekday`] on day numbers; saturating, so rules read from data cannot
/// overflow it.
pub(crate) fn next_on_weekday_days(from: i64, weekday: Weekday) -> i64 {
    // Day 1 is a Monday, so (day - 1) mod 7 is the weekday counted from Monday.
    let today = (from - 1).rem_euclid(7);
    let wanted = i64::from(weekday.num_days_from_monday());
    from.saturating_add((wanted - today).rem_euclid(7))
}

/// [`earliest_first_session_date`] on day numbers. Monotone (never decreasing) in
/// `latest`, which formation relies on.
pub(crate) fn earliest_first_session_days(
    latest: i64,
    today: i64,
    weekday: Weekday,
    min_days_after_dosing: i64,
    notice_days: i64,
) -> i64 {
    let not_before = latest
        .saturating_add(min_days_after_dosing)
        .max(today.saturating_add(notice_days));
    next_on_weekday_days(not_before, weekday)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;
    use chrono_tz::America::Vancouver;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid test time")
    }

    #[test]
    fn next_on_weekday_returns_the_same_day_when_it_already_matches() {
        let tuesday = d(2026, 10, 20);
        assert_eq!(tuesday.weekday(), Weekday::Tue);
        assert_eq!(next_on_weekday(tuesday, Weekday::Tue), tuesday);
        assert_eq!(
            next_on_weekday(d(2026, 10, 21), Weekday::Tue),
            d(2026, 10, 27)
        );
        assert_eq!(next_on_weekday(d(2026, 10, 19), Weekday::Tue), tuesday);
    }

    #[test]
    fn next_on_weekday_saturates_instead_of_panicking_at_the_end_of_time() {
        let last = NaiveDate::MAX;
        let other = last.weekday().succ();
        assert_eq!(next_on_weekday(last, other), NaiveDate::MAX);
    }

    #[test]
    fn tuesday_1800_vancouver_keeps_local_time_across_november_dst_change() {
        let sessions = weekly_sessions(Vancouver, d(2026, 10, 20), t(18, 0), 4, 1);
        assert_eq!(sessions.len(), 4);
        for s in &sessions {
            let local = s.with_timezone(&Vancouver);
            assert_eq!(local.weekday(), Weekday::Tue);
            assert_eq!((local.hour(), local.minute()), (18, 0));
        }
        // PDT (UTC-7) before 2026-11-01, PST (UTC-8) after: 01:00 UTC becomes 02:00 UTC,
        // both on the following UTC day.
        let utc: Vec<_> = sessions
            .iter()
            .map(|s| (s.date_naive(), s.hour()))
            .collect();
        assert_eq!(
            utc,
            vec![
                (d(2026, 10, 21), 1),
                (d(2026, 10, 28), 1),
                (d(2026, 11, 4), 2),
                (d(2026, 11, 11), 2),
            ]
        );
    }

    #[test]
    fn weekly_sessions_respects_the_interval() {
        let sessions = weekly_sessions(Vancouver, d(2026, 1, 6), t(18, 0), 3, 4);
        let dates: Vec<_> = sessions
            .iter()
            .map(|s| s.with_timezone(&Vancouver).date_naive())
            .collect();
        assert_eq!(dates, vec![d(2026, 1, 6), d(2026, 2, 3), d(2026, 3, 3)]);
        assert!(weekly_sessions(Vancouver, d(2026, 1, 6), t(18, 0), 0, 1).is_empty());
    }

    #[test]
    fn spring_forward_gap_shifts_forward_by_the_gap() {
        // 2026-03-08 02:00 PST jumps to 03:00 PDT in Vancouver; 02:30 does not exist.
        let at = local_to_utc(Vancouver, d(2026, 3, 8), t(2, 30));
        let local = at.with_timezone(&Vancouver);
        assert_eq!((local.hour(), local.minute()), (3, 30));
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 3, 8, 10, 30, 0).unwrap());
    }

    #[test]
    fn ambiguous_fall_back_hour_resolves_to_the_earlier_instant() {
        // 2026-11-01 01:30 happens twice in Vancouver: first in PDT (UTC-7), then in PST.
        let at = local_to_utc(Vancouver, d(2026, 11, 1), t(1, 30));
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 11, 1, 8, 30, 0).unwrap());
    }

    #[test]
    fn ordinary_local_time_converts_with_the_offset_of_that_day() {
        let summer = local_to_utc(Vancouver, d(2026, 7, 7), t(18, 0));
        let winter = local_to_utc(Vancouver, d(2026, 1, 6), t(18, 0));
        assert_eq!(summer, Utc.with_ymd_and_hms(2026, 7, 8, 1, 0, 0).unwrap());
        assert_eq!(winter, Utc.with_ymd_and_hms(2026, 1, 7, 2, 0, 0).unwrap());
    }

    #[test]
    fn earliest_first_session_waits_for_dosing_and_notice_then_the_weekday() {
        // Dosed Thursday 2026-10-15, min 1 day after → Fri 16th; today Mon 12th + 2 → 14th.
        // Later of the two is Fri 16th, next Tuesday is the 20th.
        assert_eq!(
            earliest_first_session_date(d(2026, 10, 15), d(2026, 10, 12), Weekday::Tue, 1, 2),
            d(2026, 10, 20)
        );
        // Notice dominates: dosed long ago, today is Sunday 18th + 2 = Tue 20th.
        assert_eq!(
            earliest_first_session_date(d(2026, 9, 1), d(2026, 10, 18), Weekday::Tue, 1, 2),
            d(2026, 10, 20)
        );
        // Dosed Monday 19th + 1 = Tue 20th, which is itself a Tuesday.
        assert_eq!(
            earliest_first_session_date(d(2026, 10, 19), d(2026, 10, 1), Weekday::Tue, 1, 2),
            d(2026, 10, 20)
        );
    }

    #[test]
    fn earliest_first_session_does_not_overflow_on_absurd_rules() {
        let far =
            earliest_first_session_date(d(2026, 1, 1), d(2026, 1, 1), Weekday::Tue, i64::MAX, 2);
        assert_eq!(far, NaiveDate::MAX);
        let _ = earliest_first_session_date(
            d(2026, 1, 1),
            d(2026, 1, 1),
            Weekday::Tue,
            i64::MIN,
            i64::MIN,
        );
    }

    proptest! {
        #[test]
        fn day_number_helpers_agree_with_chrono(offset in -200_000i64..200_000, wd in 0u8..7) {
            let weekday = Weekday::try_from(wd).expect("0..7 is a weekday");
            let date = date_from_days(days(d(2026, 1, 1)) + offset);
            prop_assert_eq!(date_from_days(days(date)), date);
            let next = next_on_weekday(date, weekday);
            prop_assert_eq!(days(next), next_on_weekday_days(days(date), weekday));
            prop_assert_eq!(next.weekday(), weekday);
            prop_assert!(next >= date && (next - date).num_days() < 7);
        }

        #[test]
        fn earliest_first_session_is_monotone_in_the_latest_dosing(
            a in -1000i64..1000, b in -1000i64..1000, today in -1000i64..1000,
            min_after in 0i64..10, notice in 0i64..10, wd in 0u8..7,
        ) {
            let weekday = Weekday::try_from(wd).expect("0..7 is a weekday");
            let base = days(d(2026, 1, 1));
            let (lo, hi) = (a.min(b) + base, a.max(b) + base);
            let f = |l| earliest_first_session_days(l, base + today, weekday, min_after, notice);
            prop_assert!(f(lo) <= f(hi));
            prop_assert!(f(hi) >= hi + min_after && f(hi) >= base + today + notice);
        }

        #[test]
        fn weekly_sessions_always_land_on_the_local_wall_time_or_just_after_a_gap(
            start in 0i64..3000, hour in 0u32..24, minute in 0u32..60,
        ) {
            let first = date_from_days(days(d(2024, 1, 2)) + start);
            let sessions = weekly_sessions(Vancouver, first, t(hour, minute), 3, 1);
            prop_assert_eq!(sessions.len(), 3);
            for (k, s) in sessions.iter().enumerate() {
                let local = s.with_timezone(&Vancouver);
                let wanted = first + TimeDelta::weeks(k as i64);
                let wall = wanted.and_time(t(hour, minute));
                let got = local.naive_local();
                // Exact, or shifted forward by the one-hour gap.
                prop_assert!(got == wall || got == wall + TimeDelta::hours(1), "{got} vs {wall}");
            }
        }
    }
}
