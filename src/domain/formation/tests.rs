//! Tests of `domain::formation`, including the brute-force oracle.
use super::super::schedule::earliest_first_session_date;
use super::*;
use proptest::prelude::*;
use std::cmp::Reverse;
use std::collections::BTreeMap;

fn base() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid base date")
}

fn day(n: i64) -> NaiveDate {
    base() + chrono::TimeDelta::days(n)
}

fn p(id: i64, dosed: i64, modality: Modality) -> WaitingPatient {
    WaitingPatient {
        id,
        dosed_on: day(dosed),
        modality,
    }
}

fn k(id: i64, dosed: i64) -> WaitingPatient {
    p(id, dosed, Modality::Ketamine)
}

fn rules() -> FormationRules {
    FormationRules::default()
}

fn none() -> Exclusions {
    Exclusions::default()
}

fn reasons(plan: &FormationPlan) -> BTreeMap<i64, WaitReason> {
    plan.waiting
        .iter()
        .map(|w| (w.patient_id, w.reason))
        .collect()
}

/// `date + n` days, saturating at chrono's range (rules in tests can be absurd).
fn plus(date: NaiveDate, n: i64) -> NaiveDate {
    chrono::TimeDelta::try_days(n)
        .and_then(|d| date.checked_add_signed(d))
        .unwrap_or(if n > 0 {
            NaiveDate::MAX
        } else {
            NaiveDate::MIN
        })
}

/// Checks a plan against the rules, independently of how it was computed.
fn check_plan(
    rules: &FormationRules,
    today: NaiveDate,
    open: &[OpenCohort],
    waiting: &[WaitingPatient],
    ex: &Exclusions,
    plan: &FormationPlan,
) -> Result<(), String> {
    // Most recent dosing per id, as plan() does.
    let mut by_id: HashMap<i64, WaitingPatient> = HashMap::new();
    for w in waiting {
        let keep = by_id
            .get(&w.id)
            .is_none_or(|k| (w.dosed_on, w.modality) > (k.dosed_on, k.modality));
        if keep {
            by_id.insert(w.id, *w);
        }
    }
    let efs = |latest: NaiveDate| {
        earliest_first_session_date(
            latest,
            today,
            rules.weekday,
            rules.min_days_after_dosing,
            rules.notice_days,
        )
    };
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for c in &plan.cohorts {
        let ms: Vec<WaitingPatient> = c
            .members
            .iter()
            .map(|id| by_id.get(id).copied().ok_or(format!("{id} is not waiting")))
            .collect::<Result<_, _>>()?;
        for m in &ms {
            *seen.entry(m.id).or_default() += 1;
        }
        if ms.len() < rules.min_size.max(1) || ms.len() > rules.max_size {
            return Err(format!("size {} of {c:?}", ms.len()));
        }
        let sorted = ms
            .windows(2)
            .all(|w| (w[0].dosed_on, w[0].id) < (w[1].dosed_on, w[1].id));
        if !sorted {
            return Err(format!("members not sorted in {c:?}"));
        }
        if !rules.mixed && ms.iter().any(|m| m.modality != ms[0].modality) {
            return Err(format!("modalities mixed in {c:?}"));
        }
        let common = ms.iter().all(|m| m.modality == ms[0].modality);
        if common && c.modality != ms[0].modality || !common && c.modality != Modality::Mixed {
            return Err(format!("modality field of {c:?}"));
        }
        let (from, to) = (ms[0].dosed_on, ms[ms.len() - 1].dosed_on);
        if (c.window_from, c.window_to) != (from, to) {
            return Err(format!("window of {c:?}"));
        }
        if (to - from).num_days() > rules.dosing_window_days {
            return Err(format!("spread of {c:?}"));
        }
        if c.first_session_on != efs(to) {
            return Err(format!("first session of {c:?}"));
        }
        if c.first_session_on > plus(from, rules.max_wait_days) {
            return Err(format!("max wait in {c:?}"));
        }
        for (i, a) in ms.iter().enumerate() {
            for b in &ms[i + 1..] {
                if ex.excluded(a.id, b.id) {
                    return Err(format!("excluded pair {} {} in {c:?}", a.id, b.id));
                }
            }
        }
    }
    let open_by_id: HashMap<i64, &OpenCohort> = open.iter().map(|c| (c.id, c)).collect();
    let mut joiners: BTreeMap<i64, Vec<WaitingPatient>> = BTreeMap::new();
    for j in &plan.joined {
        let w = by_id.get(&j.patient_id).ok_or("joined is not waiting")?;
        *seen.entry(w.id).or_default() += 1;
        joiners.entry(j.cohort_id).or_default().push(*w);
    }
    for (cid, ws) in &joiners {
        let c = open_by_id.get(cid).ok_or("joined an unknown cohort")?;
        if c.member_ids.len() + ws.len() > c.max_size {
            return Err(format!("cohort {cid} over capacity"));
        }
        if c.first_session_on < plus(today, rules.notice_days) {
            return Err(format!("cohort {cid} starts too soon for notice"));
        }
        let dates: Vec<NaiveDate> = c
            .member_dosed_on
            .iter()
            .copied()
            .chain(ws.iter().map(|w| w.dosed_on))
            .collect();
        let (lo, hi) = (
            dates.iter().min().ok_or("no dates")?,
            dates.iter().max().ok_or("no dates")?,
        );
        if (*hi - *lo).num_days() > rules.dosing_window_days {
            return Err(format!("cohort {cid} window exceeded"));
        }
        for w in ws {
            if !rules.mixed && w.modality != c.modality {
                return Err(format!("{} joined cohort {cid} of another modality", w.id));
            }
            if c.first_session_on < plus(w.dosed_on, rules.min_days_after_dosing) {
                return Err(format!("{} joined {cid} too soon after dosing", w.id));
            }
            if c.first_session_on > plus(w.dosed_on, rules.max_wait_days) {
                return Err(format!("{} joined {cid} after max wait", w.id));
            }
            let others = c.member_ids.iter().copied().chain(ws.iter().map(|o| o.id));
            for o in others.filter(|&o| o != w.id) {
                if ex.excluded(o, w.id) {
                    return Err(format!("{} joined {cid} with excluded {o}", w.id));
                }
            }
        }
    }
    for w in &plan.waiting {
        *seen.entry(w.patient_id).or_default() += 1;
        let wp = by_id.get(&w.patient_id).ok_or("waiting is not waiting")?;
        let impossible = efs(wp.dosed_on) > plus(wp.dosed_on, rules.max_wait_days);
        if w.reason != WaitReason::AlreadyInCohort
            && impossible != (w.reason == WaitReason::MaxWaitExceeded)
        {
            return Err(format!("reason of {w:?}"));
        }
    }
    for id in by_id.keys() {
        if seen.get(id) != Some(&1) {
            return Err(format!("{id} appears {:?} times", seen.get(id)));
        }
    }
    if seen.len() != by_id.len() {
        return Err("someone unknown appears".into());
    }
    Ok(())
}

fn plan_checked(
    rules: &FormationRules,
    today: NaiveDate,
    open: &[OpenCohort],
    waiting: &[WaitingPatient],
    ex: &Exclusions,
) -> FormationPlan {
    let out = plan(rules, today, open, waiting, ex);
    if let Err(e) = check_plan(rules, today, open, waiting, ex, &out) {
        panic!("invalid plan: {e}\n{out:#?}");
    }
    out
}

#[test]
fn forms_one_cohort_from_four_dosed_within_the_window() {
    let waiting = [k(1, 0), k(2, 3), k(3, 7), k(4, 10)];
    let out = plan_checked(&rules(), day(0), &[], &waiting, &none());
    assert_eq!(out.cohorts.len(), 1);
    let c = &out.cohorts[0];
    assert_eq!(c.members, vec![1, 2, 3, 4]);
    assert_eq!((c.window_from, c.window_to), (day(0), day(10)));
    assert_eq!(c.modality, Modality::Ketamine);
    // Latest dosed on day 10 (Sun 2026-01-11) + 1 → Mon 12th → Tue 13th.
    assert_eq!(
        c.first_session_on,
        NaiveDate::from_ymd_opt(2026, 1, 13).expect("date")
    );
    assert!(out.waiting.is_empty() && out.joined.is_empty());
}

#[test]
fn fewer_than_min_size_wait_as_too_few_in_window() {
    let waiting = [k(1, 0), k(2, 1), k(3, 2)];
    let out = plan_checked(&rules(), day(0), &[], &waiting, &none());
    assert!(out.cohorts.is_empty());
    assert_eq!(out.waiting.len(), 3);
    assert!(out
        .waiting
        .iter()
        .all(|w| w.reason == WaitReason::TooFewInWindow));
}

#[test]
fn max_size_splits_into_the_fewest_cohorts() {
    let waiting: Vec<_> = (0..13).map(|i| k(i, 0)).collect();
    let out = plan_checked(&rules(), day(0), &[], &waiting, &none());
    // 13 people fit as 12 + (1 waiting) or as two cohorts: placing all wins.
    assert_eq!(out.cohorts.len(), 2);
    assert_eq!(
        out.cohorts.iter().map(|c| c.members.len()).sum::<usize>(),
        13
    );
    let sizes: Vec<_> = (0..24).map(|i| k(i, 0)).collect();
    let out = plan_checked(&rules(), day(0), &[], &sizes, &none());
    assert_eq!(out.cohorts.len(), 2);
}

#[test]
fn dosing_window_is_never_exceeded() {
    // 0..=3 and 15..=18 cannot share a 14-day window.
    let waiting = [
        k(1, 0),
        k(2, 1),
        k(3, 2),
        k(4, 3),
        k(5, 15),
        k(6, 16),
        k(7, 17),
        k(8, 18),
    ];
    let out = plan_checked(&rules(), day(0), &[], &waiting, &none());
    assert_eq!(out.cohorts.len(), 2);
    assert_eq!(out.cohorts[0].members, vec![1, 2, 3, 4]);
    assert_eq!(out.cohorts[1].members, vec![5, 6, 7, 8]);
}

#[test]
fn minimal_spread_among_equally_many_cohorts() {
    // Five on day 0..=4 and one on day 12, min 4 max 5: placing 5 of 6 in one cohort is
    // forced (6 > 5, 6 < 8); the one left out should minimise spread: the day-12 one.
    let r = FormationRules {
        max_size: 5,
        ..rules()
    };
    let waiting = [k(1, 0), k(2, 1), k(3, 2), k(4, 3), k(5, 4), k(6, 12)];
    let out = plan_checked(&r, day(0), &[], &waiting, &none());
    assert_eq!(out.cohorts.len(), 1);
    assert_eq!(out.cohorts[0].members, vec![1, 2, 3, 4, 5]);
    assert_eq!(
        reasons(&out),
        BTreeMap::from([(6, WaitReason::TooFewInWindow)])
    );
}

#[test]
fn ties_prefer_earlier_dosing_then_lower_id() {
    let r = FormationRules {
        max_size: 4,
        ..rules()
    };
    let waiting = [k(9, 0), k(3, 0), k(5, 0), k(1, 0), k(7, 0)];
    let out = plan_checked(&r, day(0), &[], &waiting, &none());
    assert_eq!(out.cohorts[0].members, vec![1, 3, 5, 7]);
    assert_eq!(
        out.waiting,
        vec![Waiting {
            patient_id: 9,
            reason: WaitReason::TooFewInWindow
        }]
    );
}

#[test]
fn modalities_stay_apart_unless_the_program_is_mixed() {
    let waiting = [
        k(1, 0),
        k(2, 0),
        p(3, 0, Modality::Psilocybin),
        p(4, 0, Modality::Psilocybin),
    ];
    let out = plan_checked(&rules(), day(0), &[], &waiting, &none());
    assert!(out.cohorts.is_empty());
    let mixed = FormationRules {
        mixed: true,
        ..rules()
    };
    let out = plan_checked(&mixed, day(0), &[], &waiting, &none());
    assert_eq!(out.cohorts.len(), 1);
    assert_eq!(out.cohorts[0].modality, Modality::Mixed);
}

#[test]
fn excluded_pair_never_shares_a_cohort_and_explains_the_wait() {
    let waiting = [k(1, 0), k(2, 0), k(3, 0), k(4, 0), k(5, 0)];
    let ex = Exclusions::new([(1, 2)]);
    let out = plan_checked(&rules(), day(0), &[], &waiting, &ex);
    assert_eq!(out.cohorts.len(), 1);
    assert_eq!(out.cohorts[0].members.len(), 4);
    assert_eq!(out.waiting.len(), 1);
    assert_eq!(out.waiting[0].reason, WaitReason::ExcludedPairs);

    // Four people, one excluded pair: no valid cohort; everyone waits on exclusions.
    let ex = Exclusions::new([(4, 1)]);
    let out = plan_checked(&rules(), day(0), &[], &waiting[..4], &ex);
    assert!(out.cohorts.is_empty());
    assert!(out
        .waiting
        .iter()
        .all(|w| w.reason == WaitReason::ExcludedPairs));
}

#[test]
fn exclusions_are_symmetric_and_ignore_self_pairs() {
    let ex = Exclusions::new([(2, 1), (3, 3)]);
    assert!(ex.excluded(1, 2) && ex.excluded(2, 1));
    assert!(!ex.excluded(3, 3));
    assert_eq!(ex.len(), 1);
    assert!(Exclusions::default().is_empty());
}

#[test]
fn leftovers_blocked_by_an_exclusion_take_a_free_seat_where_they_fit() {
    // All dosed the same day. 5 is excluded from 1 and 6, so the DP forms 1..=4 and
    // leaves 5 and 6; 6 then fits the seat left in that cohort, 5 does not.
    let waiting: Vec<_> = (1..=6).map(|i| k(i, 0)).collect();
    let ex = Exclusions::new([(5, 6), (5, 1)]);
    let out = plan_checked(&rules(), day(0), &[], &waiting, &ex);
    assert_eq!(out.cohorts.len(), 1);
    assert_eq!(out.cohorts[0].members, vec![1, 2, 3, 4, 6]);
    assert_eq!(
        out.waiting,
        vec![Waiting {
            patient_id: 5,
            reason: WaitReason::ExcludedPairs
        }]
    );
}

#[test]
fn notice_days_hold_back_the_first_session() {
    // Dosed long ago relative to the weekday, today is Monday 2026-01-05: with two days
    // notice, Tuesday the 6th is too soon, so the 13th.
    let today = NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
    let waiting = [k(1, -3), k(2, -3), k(3, -2), k(4, -2)];
    let out = plan_checked(&rules(), today, &[], &waiting, &none());
    assert_eq!(
        out.cohorts[0].first_session_on,
        NaiveDate::from_ymd_opt(2026, 1, 13).expect("date")
    );
    let quick = FormationRules {
        notice_days: 1,
        ..rules()
    };
    let out = plan_checked(&quick, today, &[], &waiting, &none());
    assert_eq!(
        out.cohorts[0].first_session_on,
        NaiveDate::from_ymd_opt(2026, 1, 6).expect("date")
    );
}

#[test]
fn min_days_after_dosing_holds_back_the_first_session() {
    // Latest dosed Monday 2026-01-05; +1 day is Tuesday the 6th; +2 days pushes to 13th.
    let waiting = [k(1, 1), k(2, 2), k(3, 3), k(4, 4)];
    let out = plan_checked(&rules(), day(0), &[], &waiting, &none());
    assert_eq!(
        out.cohorts[0].first_session_on,
        NaiveDate::from_ymd_opt(2026, 1, 6).expect("date")
    );
    let slow = FormationRules {
        min_days_after_dosing: 2,
        ..rules()
    };
    let out = plan_checked(&slow, day(0), &[], &waiting, &none());
    assert_eq!(
        out.cohorts[0].first_session_on,
        NaiveDate::from_ymd_opt(2026, 1, 13).expect("date")
    );
}

#[test]
fn max_wait_exceeded_is_reported_for_those_no_cohort_can_reach_in_time() {
    // Dosed 30 days before today: any first session is > 21 days after dosing.
    let waiting = [k(1, -30), k(2, -30), k(3, -30), k(4, -30), k(5, 0)];
    let out = plan_checked(&rules(), day(0), &[], &waiting, &none());
    assert!(out.cohorts.is_empty());
    let r = reasons(&out);
    for id in 1..=4 {
        assert_eq!(r[&id], WaitReason::MaxWaitExceeded);
    }
    assert_eq!(r[&5], WaitReason::TooFewInWindow);
}

#[test]
fn max_wait_limits_who_the_earliest_member_can_wait_for() {
    // Mondays, max wait 15: with people dosed on day 14 the first session is day 18,
    // too late for someone dosed on day 0.
    let r = FormationRules {
        weekday: Weekday::Mon,
        max_wait_days: 15,
        ..rules()
    };
    // day 14 = Thu 2026-01-15; +1 → Fri 16th → Mon 19th = day 18 > 0 + 15.
    let waiting = [k(1, 0), k(2, 14), k(3, 14), k(4, 14), k(5, 14)];
    let out = plan_checked(&r, day(0), &[], &waiting, &none());
    assert_eq!(out.cohorts.len(), 1);
    assert_eq!(out.cohorts[0].members, vec![2, 3, 4, 5]);
}

fn open_cohort(id: i64, first: i64, dosed: &[i64], max_size: usize) -> OpenCohort {
    OpenCohort {
        id,
        modality: Modality::Ketamine,
        first_session_on: day(first),
        member_dosed_on: dosed.iter().map(|&d| day(d)).collect(),
        member_ids: (0..dosed.len() as i64).map(|i| 1000 * id + i).collect(),
        max_size,
    }
}

#[test]
fn rolling_admission_fills_open_seats_first() {
    // Open cohort 7 starts day 12 (a Tuesday: 2026-01-13), members dosed days 0 and 2,
    // two seats left. Patients dosed day 3, 4, 5 fit; only two seats.
    let open = [open_cohort(7, 12, &[0, 2], 4)];
    let waiting = [k(1, 5), k(2, 3), k(3, 4), p(4, 3, Modality::Psilocybin)];
    let out = plan_checked(&rules(), day(0), &open, &waiting, &none());
    assert_eq!(
        out.joined,
        vec![
            Joined {
                cohort_id: 7,
                patient_id: 2
            },
            Joined {
                cohort_id: 7,
                patient_id: 3
            }
        ]
    );
    assert_eq!(
        reasons(&out),
        BTreeMap::from([
            (1, WaitReason::TooFewInWindow),
            (4, WaitReason::TooFewInWindow)
        ])
    );
}

#[test]
fn rolling_admission_respects_window_dosing_gap_and_max_wait() {
    let open = [open_cohort(7, 12, &[0], 12)];
    let waiting = [
        k(1, 15),  // too far from the member's day 0 (and dosed after the first session)
        k(2, 11),  // dosed the day before day 12: min_days_after_dosing 1 is fine
        k(3, 12),  // dosed on the first session day: too soon
        k(4, -10), // first session 22 days after dosing: max wait exceeded
        k(5, -9),  // 21 days: fine
    ];
    let out = plan_checked(&rules(), day(-20), &open, &waiting, &none());
    let joined: Vec<_> = out.joined.iter().map(|j| j.patient_id).collect();
    assert_eq!(joined, vec![5]);
    // 5 joined with day −9: 2 at day 11 would make the spread 20.
    let open = [open_cohort(7, 12, &[0], 12)];
    let out = plan_checked(&rules(), day(-20), &open, &[k(2, 11), k(3, 12)], &none());
    let joined: Vec<_> = out.joined.iter().map(|j| j.patient_id).collect();
    assert_eq!(joined, vec![2]);
}

#[test]
fn rolling_admission_respects_notice_days() {
    // First session on day 12; today is day 11 with two days notice: too late to join.
    let open = [open_cohort(7, 12, &[0], 12)];
    let out = plan_checked(&rules(), day(11), &open, &[k(1, 5)], &none());
    assert!(out.joined.is_empty());
    let out = plan_checked(&rules(), day(10), &open, &[k(1, 5)], &none());
    assert_eq!(out.joined.len(), 1);
}

#[test]
fn rolling_admission_respects_exclusions_with_members_and_joiners() {
    let open = [open_cohort(7, 12, &[0], 12)];
    let ex = Exclusions::new([(7000, 1), (2, 3)]);
    let out = plan_checked(&rules(), day(0), &open, &[k(1, 1), k(2, 2), k(3, 3)], &ex);
    let joined: Vec<_> = out.joined.iter().map(|j| j.patient_id).collect();
    assert_eq!(joined, vec![2]);
}

#[test]
fn rolling_admission_is_by_first_session_then_id() {
    let open = [
        open_cohort(9, 12, &[0], 2),
        open_cohort(8, 12, &[0], 2),
        open_cohort(1, 19, &[0], 2),
    ];
    let out = plan_checked(
        &rules(),
        day(0),
        &open,
        &[k(1, 1), k(2, 2), k(3, 3)],
        &none(),
    );
    assert_eq!(
        out.joined,
        vec![
            Joined {
                cohort_id: 8,
                patient_id: 1
            },
            Joined {
                cohort_id: 9,
                patient_id: 2
            },
            Joined {
                cohort_id: 1,
                patient_id: 3
            },
        ]
    );
}

#[test]
fn waiting_patient_already_in_an_open_cohort_is_left_alone() {
    let open = [open_cohort(7, 12, &[0], 12)];
    let out = plan_checked(&rules(), day(0), &open, &[k(7000, 1)], &none());
    assert_eq!(
        out.waiting,
        vec![Waiting {
            patient_id: 7000,
            reason: WaitReason::AlreadyInCohort
        }]
    );
}

#[test]
fn a_patient_listed_twice_counts_once_with_the_latest_dosing() {
    let waiting = [k(1, 0), k(1, 2), k(2, 2), k(3, 2), k(4, 2)];
    let out = plan_checked(&rules(), day(0), &[], &waiting, &none());
    assert_eq!(out.cohorts.len(), 1);
    assert_eq!(out.cohorts[0].window_from, day(2));
}

#[test]
fn plan_is_deterministic_across_runs_and_input_order() {
    let waiting: Vec<_> = (0..200)
        .map(|i| {
            p(
                i,
                (i * 37) % 60,
                if i % 3 == 0 {
                    Modality::Psilocybin
                } else {
                    Modality::Ketamine
                },
            )
        })
        .collect();
    let ex = Exclusions::new((0..40).map(|i| (i, (i * 7 + 3) % 200)));
    let first = plan_checked(&rules(), day(0), &[], &waiting, &ex);
    let mut reversed = waiting.clone();
    reversed.reverse();
    for _ in 0..5 {
        let ex2 = Exclusions::new((0..40).rev().map(|i| ((i * 7 + 3) % 200, i)));
        assert_eq!(plan(&rules(), day(0), &[], &reversed, &ex2), first);
    }
}

#[test]
fn absurd_rules_do_not_panic() {
    let waiting = [k(1, 0), k(2, 0), k(3, 0), k(4, 0)];
    let open = [open_cohort(7, 12, &[0], 12)];
    for r in [
        FormationRules {
            min_size: 0,
            ..rules()
        },
        FormationRules {
            min_size: 9,
            max_size: 3,
            ..rules()
        },
        FormationRules {
            max_size: 0,
            ..rules()
        },
        FormationRules {
            dosing_window_days: -1,
            ..rules()
        },
        FormationRules {
            dosing_window_days: i64::MAX,
            max_wait_days: i64::MAX,
            ..rules()
        },
        FormationRules {
            min_days_after_dosing: i64::MAX,
            notice_days: i64::MIN,
            ..rules()
        },
        FormationRules {
            min_days_after_dosing: i64::MIN,
            notice_days: i64::MAX,
            max_wait_days: i64::MIN,
            ..rules()
        },
    ] {
        plan_checked(&r, day(0), &open, &waiting, &Exclusions::new([(1, 2)]));
        plan_checked(&r, NaiveDate::MAX, &open, &waiting, &none());
    }
    let extremes = [
        k(1, 0),
        p(2, 0, Modality::Mixed),
        WaitingPatient {
            id: 3,
            dosed_on: NaiveDate::MAX,
            modality: Modality::Mdma,
        },
    ];
    plan_checked(&rules(), NaiveDate::MIN, &[], &extremes, &none());
}

#[test]
fn packed_entries_round_trip_and_sort_by_key_day_id() {
    let entries = [
        Entry {
            key: 2,
            day: -5,
            id: i64::MIN,
            modality: Modality::Mixed,
        },
        Entry {
            key: 0,
            day: 700_000,
            id: -1,
            modality: Modality::Psilocybin,
        },
        Entry {
            key: 0,
            day: 700_000,
            id: 1,
            modality: Modality::Mdma,
        },
        Entry {
            key: 0,
            day: -700_000,
            id: i64::MAX,
            modality: Modality::Ketamine,
        },
    ];
    for e in &entries {
        assert_eq!(unpack(pack(e)), *e);
    }
    let mut packed: Vec<u128> = entries.iter().map(pack).collect();
    packed.sort_unstable();
    let sorted: Vec<Entry> = packed.into_iter().map(unpack).collect();
    let mut expected = entries.to_vec();
    expected.sort_by_key(|e| (e.key, e.day, e.id));
    assert_eq!(sorted, expected);
}

#[test]
fn duplicate_ids_are_found_whether_ids_are_dense_or_sparse() {
    let dup = |ids: &[i64]| has_duplicate_ids(ids.iter().copied());
    assert!(!dup(&[]));
    assert!(!dup(&[1, 2, 64, 65, 128, 0]));
    assert!(dup(&[1, 2, 64, 1]));
    assert!(dup(&[-5, 200, 63, -5]));
    assert!(!dup(&[i64::MIN, i64::MAX, 0]));
    assert!(dup(&[i64::MIN, i64::MAX, i64::MIN]));
}

#[test]
fn wait_reasons_serialise_in_snake_case() {
    for r in [
        WaitReason::TooFewInWindow,
        WaitReason::MaxWaitExceeded,
        WaitReason::ExcludedPairs,
        WaitReason::AlreadyInCohort,
    ] {
        let json = serde_json::to_string(&r).expect("serialises");
        assert_eq!(json, format!("\"{}\"", r.as_str()));
    }
}

// ---- brute-force oracle ----

/// (placed, cohorts, summed spread) of the lexicographically best plan, by trying every
/// assignment of each patient to an existing group, a new group, or nowhere.
fn oracle(rules: &FormationRules, today: NaiveDate, ps: &[WaitingPatient]) -> (usize, usize, i64) {
    fn valid(rules: &FormationRules, today: NaiveDate, g: &[WaitingPatient]) -> bool {
        let from = g.iter().map(|p| p.dosed_on).min().expect("non-empty group");
        let to = g.iter().map(|p| p.dosed_on).max().expect("non-empty group");
        let first = earliest_first_session_date(
            to,
            today,
            rules.weekday,
            rules.min_days_after_dosing,
            rules.notice_days,
        );
        g.len() >= rules.min_size.max(1)
            && g.len() <= rules.max_size
            && (rules.mixed || g.iter().all(|p| p.modality == g[0].modality))
            && (to - from).num_days() <= rules.dosing_window_days
            && first <= from + chrono::TimeDelta::days(rules.max_wait_days)
    }
    fn go(
        rules: &FormationRules,
        today: NaiveDate,
        ps: &[WaitingPatient],
        groups: &mut Vec<Vec<WaitingPatient>>,
        best: &mut Option<(Reverse<usize>, usize, i64)>,
    ) {
        let Some((first, rest)) = ps.split_first() else {
            if groups.iter().all(|g| valid(rules, today, g)) {
                let placed = groups.iter().map(Vec::len).sum();
                let spread = groups
                    .iter()
                    .map(|g| {
                        let lo = g.iter().map(|p| p.dosed_on).min().expect("non-empty");
                        let hi = g.iter().map(|p| p.dosed_on).max().expect("non-empty");
                        (hi - lo).num_days()
                    })
                    .sum();
                let score = (Reverse(placed), groups.len(), spread);
                if best.is_none_or(|b| score < b) {
                    *best = Some(score);
                }
            }
            return;
        };
        go(rules, today, rest, groups, best); // unplaced
        for i in 0..groups.len() {
            if groups[i].len() < rules.max_size {
                groups[i].push(*first);
                go(rules, today, rest, groups, best);
                groups[i].pop();
            }
        }
        groups.push(vec![*first]);
        go(rules, today, rest, groups, best);
        groups.pop();
    }
    let mut best = None;
    go(rules, today, ps, &mut Vec::new(), &mut best);
    let (Reverse(placed), cohorts, spread) = best.expect("placing nobody is always possible");
    (placed, cohorts, spread)
}

fn summary(out: &FormationPlan) -> (usize, usize, i64) {
    (
        out.cohorts.iter().map(|c| c.members.len()).sum(),
        out.cohorts.len(),
        out.cohorts
            .iter()
            .map(|c| (c.window_to - c.window_from).num_days())
            .sum(),
    )
}

fn weekday() -> impl Strategy<Value = Weekday> {
    (0u8..7).prop_map(|w| Weekday::try_from(w).expect("0..7 is a weekday"))
}

fn small_rules() -> impl Strategy<Value = FormationRules> {
    (
        1usize..=4,
        0usize..=3,
        0i64..8,
        3i64..20,
        0i64..3,
        0i64..4,
        weekday(),
        any::<bool>(),
    )
        .prop_map(
            |(min, extra, window, max_wait, min_after, notice, weekday, mixed)| FormationRules {
                min_size: min,
                max_size: min + extra,
                dosing_window_days: window,
                max_wait_days: max_wait,
                min_days_after_dosing: min_after,
                notice_days: notice,
                weekday,
                mixed,
            },
        )
}

fn modality(n: u8) -> Modality {
    [Modality::Ketamine, Modality::Psilocybin, Modality::Mdma][usize::from(n)]
}

/// Unique ids in scrambled order, dates over `span` days, `kinds` modalities.
fn patients(max: usize, span: i64, kinds: u8) -> impl Strategy<Value = Vec<WaitingPatient>> {
    prop::collection::vec((0..span, 0..kinds), 0..=max).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (d, m))| p((i as i64 * 7919) % 1009, d, modality(m)))
            .collect()
    })
}

#[derive(Debug, Clone)]
struct Instance {
    rules: FormationRules,
    today: i64,
    open: Vec<OpenCohort>,
    waiting: Vec<WaitingPatient>,
    exclusions: Vec<(i64, i64)>,
}

fn instance() -> impl Strategy<Value = Instance> {
    let open = prop::collection::vec(
        (
            1i64..20,
            0i64..30,
            prop::collection::vec(0i64..30, 0..4),
            1usize..7,
            0u8..2,
        ),
        0..3,
    );
    (
        small_rules(),
        0i64..15,
        open,
        patients(40, 40, 2),
        prop::collection::vec((0usize..40, 0usize..40), 0..12),
    )
        .prop_map(|(rules, today, open, waiting, pairs)| {
            let open = open
                .into_iter()
                .map(|(id, first, dosed, max, m)| OpenCohort {
                    id,
                    modality: modality(m),
                    first_session_on: day(first),
                    member_ids: (0..dosed.len() as i64)
                        .map(|i| 5000 + 10 * id + i)
                        .collect(),
                    member_dosed_on: dosed.into_iter().map(day).collect(),
                    max_size: max,
                })
                // Unique cohort ids.
                .fold(Vec::<OpenCohort>::new(), |mut acc, c| {
                    if acc.iter().all(|o| o.id != c.id) {
                        acc.push(c);
                    }
                    acc
                });
            let ids: Vec<i64> = waiting
                .iter()
                .map(|w| w.id)
                .chain(open.iter().flat_map(|c| c.member_ids.iter().copied()))
                .collect();
            let exclusions = if ids.is_empty() {
                Vec::new()
            } else {
                pairs
                    .into_iter()
                    .map(|(a, b)| (ids[a % ids.len()], ids[b % ids.len()]))
                    .collect()
            };
            Instance {
                rules,
                today,
                open,
                waiting,
                exclusions,
            }
        })
}

fn run(i: &Instance) -> FormationPlan {
    plan(
        &i.rules,
        day(i.today),
        &i.open,
        &i.waiting,
        &Exclusions::new(i.exclusions.iter().copied()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn dp_matches_brute_force_oracle_without_exclusions(
        rules in small_rules(),
        today in 0i64..12,
        waiting in patients(9, 16, 2),
    ) {
        let out = plan_checked(&rules, day(today), &[], &waiting, &none());
        prop_assert_eq!(summary(&out), oracle(&rules, day(today), &waiting));
    }

    #[test]
    fn every_plan_is_valid_and_places_everyone_exactly_once(inst in instance()) {
        let out = run(&inst);
        let ex = Exclusions::new(inst.exclusions.iter().copied());
        let checked = check_plan(&inst.rules, day(inst.today), &inst.open, &inst.waiting, &ex, &out);
        prop_assert!(checked.is_ok(), "{:?}\n{:#?}", checked, out);
    }

    #[test]
    fn plan_does_not_depend_on_input_order(
        (inst, waiting, open, pairs, flip) in instance().prop_flat_map(|i| {
            let w = Just(i.waiting.clone()).prop_shuffle();
            let o = Just(i.open.clone()).prop_shuffle();
            let e = Just(i.exclusions.clone()).prop_shuffle();
            (Just(i), w, o, e, any::<bool>())
        })
    ) {
        let pairs: Vec<_> = pairs.into_iter().map(|(a, b)| if flip { (b, a) } else { (a, b) }).collect();
        let shuffled = Instance { waiting, open, exclusions: pairs, ..inst.clone() };
        prop_assert_eq!(run(&inst), run(&shuffled));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Larger instances: still valid, and without exclusions nobody left waiting could
    /// have joined a planned cohort with a free seat (that would contradict optimality).
    #[test]
    fn larger_plans_are_valid_and_leave_no_seat_a_waiting_patient_fits(
        rules in small_rules(),
        waiting in patients(300, 90, 3),
    ) {
        let out = plan_checked(&rules, day(0), &[], &waiting, &none());
        let by_id: HashMap<i64, WaitingPatient> = waiting.iter().map(|w| (w.id, *w)).collect();
        for w in out.waiting.iter().map(|w| by_id[&w.patient_id]) {
            for c in out.cohorts.iter().filter(|c| c.members.len() < rules.max_size) {
                let same = rules.mixed || by_id[&c.members[0]].modality == w.modality;
                let from = c.window_from.min(w.dosed_on);
                let to = c.window_to.max(w.dosed_on);
                let first = earliest_first_session_date(to, day(0), rules.weekday, rules.min_days_after_dosing, rules.notice_days);
                let fits = same
                    && (to - from).num_days() <= rules.dosing_window_days
                    && first <= from + chrono::TimeDelta::days(rules.max_wait_days);
                prop_assert!(!fits, "{} fits {:?}", w.id, c);
            }
        }
    }
}
