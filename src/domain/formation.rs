//! Cohort formation: who from the waitlist meets with whom, starting when.
//!
//! [`plan`] is a pure function of the rules, today's date, the cohorts still forming, the
//! waitlist and the exclusions. It first offers open seats in forming cohorts (rolling
//! admission), then forms new cohorts from everyone else, lexicographically optimal
//! (DESIGN.md, "Cohort formation"):
//!
//! 1. place as many waitlisted patients as possible;
//! 2. then use as few cohorts as possible;
//! 3. then minimise the summed dosing-date spread;
//! 4. then prefer placing earlier-dosed, lower-id patients (smallest summed rank in
//!    `(dosed_on, id)` order), remaining ties going to a fixed order of choices.
//!
//! # Why a dynamic programme over sorted runs is exact
//!
//! Within one modality key (all patients, when the program is mixed) sort patients by
//! `(dosed_on, id)`; call the index in that order a patient's *rank*. Whether a group is
//! valid depends on its size and on its earliest date `e` and latest date `l` only:
//! `l − e ≤ window` and `first(l) ≤ e + max_wait`, where `first` (the earliest first
//! session date) never decreases as `l` grows. Hence a sub-range `[e', l'] ⊆ [e, l]` of a
//! valid range is valid too: its spread is smaller and `first(l') ≤ first(l) ≤ e + max_wait
//! ≤ e' + max_wait`.
//!
//! Take any optimal solution.
//! * *Uncrossing.* Let A be the group holding the lowest placed rank and B any other
//!   group. Hand the |A| lowest ranks of A ∪ B to A and the rest to B: sizes and the placed
//!   set are unchanged. A's new range lies inside its old one. B's new range starts no
//!   earlier than B's old start (the |B| highest of A ∪ B are at least B's own) and ends at
//!   max(end A, end B), so it lies inside B's old range or, if B was nested in A, inside
//!   A's. Both stay valid and the summed spread does not grow. After doing this with every
//!   other group in turn, A holds exactly the |A| lowest placed ranks (a lower-ranked x
//!   left in some B would have been taken when B was processed, as A only ever gains lower
//!   ranks). Set A aside and repeat with the remaining groups.
//! * *No holes.* If an unplaced patient u lies inside a group's rank range, swap u with that
//!   group's highest-ranked member: the range shrinks (still valid, spread no larger), the
//!   counts stay, and the summed rank of placed patients drops, so the tie rule (4) prefers
//!   the result.
//!
//! So some optimal solution consists of disjoint runs of consecutive ranks, with unplaced
//! patients only between runs. A DP over ranks — at rank i either leave i unplaced or close
//! a run of size k ∈ [min, max] ending at i — therefore finds the optimum. The objective is
//! a sum over runs of (placed, cohorts, spread, rank sum), compared lexicographically, and
//! lexicographic order is compatible with addition, so keeping only the best score per
//! prefix is exact. Because the valid run starts for a given end form a suffix (the
//! threshold `max(d[i] − window, first(d[i]) − max_wait)` never decreases with i), the
//! earliest valid start is found with one forward pointer, and each transition is O(1).
//!
//! Closing a run `s..i` scores `best[s]` plus (i − s placed, 1 cohort, d[i−1] − d[s]
//! spread, R(i) − R(s) ranks) with R(x) = x(x−1)/2, so comparing two starts for the same
//! end only needs `(unplaced[s], cohorts[s], spread[s] − d[s], ranks[s] − R(s))`, a key of
//! s alone. The allowed starts form a window whose both ends only move right as i grows,
//! so a monotone deque yields the best start in amortised O(1): the DP is O(n) after
//! sorting (within the O(n · (max − min + 1)) budget), with no allocation in the loop.
//!
//! Keys (modalities) are independent: total placed is maximal only if each key's is, and
//! so on down the objective, so each key is optimised on its own.
//!
//! # Exclusions
//!
//! With exclusions the result is always valid but not necessarily optimal: a run is only
//! allowed if it holds no excluded pair (a per-end lower bound on the start, like the
//! window bound), the DP is repeated on the leftovers until it forms nothing more (the
//! leftovers are no longer consecutive in the original order, so new runs can appear), and
//! finally each leftover is offered to a planned cohort with a free seat where it fits
//! every rule.

use super::schedule::{date_from_days, days, earliest_first_session_days};
use super::Modality;
use chrono::{NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;

/// The program rules formation needs, flattened from the program's `cohort` and
/// `schedule` groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormationRules {
    pub min_size: usize,
    pub max_size: usize,
    /// Latest minus earliest dosing date within one cohort, in program-local days.
    pub dosing_window_days: i64,
    /// A member's first session is at most this many days after their dosing date.
    pub max_wait_days: i64,
    /// The first session is at least this many days after the latest member's dosing.
    pub min_days_after_dosing: i64,
    /// The first session is at least this many days after today (welcome email first).
    pub notice_days: i64,
    /// The program's weekly session day.
    pub weekday: Weekday,
    /// A mixed program lets any modalities share a cohort.
    pub mixed: bool,
}

impl Default for FormationRules {
    /// The defaults of DESIGN.md.
    fn default() -> Self {
        FormationRules {
            min_size: 4,
            max_size: 12,
            dosing_window_days: 14,
            max_wait_days: 21,
            min_days_after_dosing: 1,
            notice_days: 2,
            weekday: Weekday::Tue,
            mixed: false,
        }
    }
}

/// A patient on the waitlist, as of their most recent dosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingPatient {
    pub id: i64,
    /// Program-local date of the most recent dosing.
    pub dosed_on: NaiveDate,
    pub modality: Modality,
}

/// A cohort still `forming` (first session not yet held) that may take more members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCohort {
    pub id: i64,
    pub modality: Modality,
    pub first_session_on: NaiveDate,
    /// Dosing dates of the current members (for the window check).
    pub member_dosed_on: Vec<NaiveDate>,
    /// Current members (for the seat count and exclusions).
    pub member_ids: Vec<i64>,
    pub max_size: usize,
}

/// Pairs of patients who must not share a cohort. Symmetric: `(a, b)` also excludes
/// `(b, a)`. A pair of a patient with themselves means nothing and is dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclusions {
    pairs: HashSet<(i64, i64)>,
}

impl Exclusions {
    pub fn new(pairs: impl IntoIterator<Item = (i64, i64)>) -> Self {
        pairs.into_iter().collect()
    }

    pub fn excluded(&self, a: i64, b: i64) -> bool {
        self.pairs.contains(&(a.min(b), a.max(b)))
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Pairs as `(smaller, larger)`, in no particular order: callers must only fold them
    /// with order-independent operations (max, set membership) to stay deterministic.
    fn pairs(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.pairs.iter().copied()
    }
}

impl FromIterator<(i64, i64)> for Exclusions {
    fn from_iter<I: IntoIterator<Item = (i64, i64)>>(iter: I) -> Self {
        Exclusions {
            pairs: iter
                .into_iter()
                .filter(|(a, b)| a != b)
                .map(|(a, b)| (a.min(b), a.max(b)))
                .collect(),
        }
    }
}

/// The outcome of formation; a dry run shows it, a commit creates it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FormationPlan {
    /// New cohorts, ordered by (first_session_on, window_from, modality, first member).
    pub cohorts: Vec<PlannedCohort>,
    /// Waitlisted patients admitted to open seats, in the order they were admitted.
    pub joined: Vec<Joined>,
    /// Everyone else, ordered by (dosed_on, id), each with why.
    pub waiting: Vec<Waiting>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedCohort {
    /// Sorted by (dosed_on, id).
    pub members: Vec<i64>,
    /// The members' common modality; `Mixed` when a mixed program combines several.
    pub modality: Modality,
    /// Earliest member dosing date.
    pub window_from: NaiveDate,
    /// Latest member dosing date.
    pub window_to: NaiveDate,
    pub first_session_on: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub cohort_id: i64,
    pub patient_id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub patient_id: i64,
    pub reason: WaitReason,
}

/// Why a patient is still waiting; machine-readable, stable in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// Not enough compatible patients dosed close enough (yet); may change as more dose.
    TooFewInWindow,
    /// Even a cohort formed right now could not start within max_wait_days of their
    /// dosing; only a lead can place them (by hand, or by changing the rules).
    MaxWaitExceeded,
    /// They would have been placed but for an exclusion, or they are excluded from
    /// someone dosed within the window of their own key.
    ExcludedPairs,
    /// Bad data: they are already a member of one of the open cohorts passed in, so
    /// formation leaves them alone.
    AlreadyInCohort,
}

impl WaitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::TooFewInWindow => "too_few_in_window",
            WaitReason::MaxWaitExceeded => "max_wait_exceeded",
            WaitReason::ExcludedPairs => "excluded_pairs",
            WaitReason::AlreadyInCohort => "already_in_cohort",
        }
    }
}

/// Forms cohorts from the waitlist; see the module documentation for the objective and
/// why it is exact.
///
/// The result depends only on the *sets* passed in, never on their order, and is the
/// same on every run. A patient id listed more than once keeps its most recent dosing
/// (the one that put them on the waitlist). Each distinct waiting patient ends up exactly
/// once: in a new cohort, in `joined`, or in `waiting`.
pub fn plan(
    rules: &FormationRules,
    today: NaiveDate,
    open: &[OpenCohort],
    waiting: &[WaitingPatient],
    exclusions: &Exclusions,
) -> FormationPlan {
    let ctx = Ctx::new(rules, today);
    let entry = |p: &WaitingPatient| Entry {
        key: ctx.key(p.modality),
        day: days(p.dosed_on),
        id: p.id,
        modality: p.modality,
    };
    let in_open: HashSet<i64> = open
        .iter()
        .flat_map(|c| c.member_ids.iter().copied())
        .collect();

    // (day, id, reason) so the waiting list can be ordered at the end.
    let mut left: Vec<(i64, i64, WaitReason)> = Vec::new();
    // Entries go straight into their packed sort form: at 100,000 patients every extra
    // pass and buffer shows in the benchmark.
    let mut packed: Vec<u128> = Vec::with_capacity(waiting.len());
    let mut admit = |e: Entry| {
        if !in_open.is_empty() && in_open.contains(&e.id) {
            left.push((e.day, e.id, WaitReason::AlreadyInCohort));
        } else {
            packed.push(pack(&e));
        }
    };
    if has_duplicate_ids(waiting.iter().map(|p| p.id)) {
        latest_dosing_per_id(waiting.iter().map(entry))
            .into_iter()
            .for_each(&mut admit);
    } else {
        waiting.iter().map(entry).for_each(&mut admit);
    }
    packed.sort_unstable();
    let entries: Vec<Entry> = packed.into_iter().map(unpack).collect();

    let (joined, rest) = admit_to_open_cohorts(&ctx, open, entries, exclusions);

    let mut placed = vec![false; rest.len()];
    let mut cohorts: Vec<PlannedCohort> = Vec::new();
    // With exclusions, cohorts stay drafts (entries) until leftovers have tried their seats.
    let mut drafts: Vec<Vec<Entry>> = Vec::new();
    let mut dp = Dp::default();
    let mut runs = Vec::new();
    for seg in segments(&rest) {
        if exclusions.is_empty() {
            best_runs(&ctx, &rest[seg.clone()], None, &mut dp, &mut runs);
            for r in &runs {
                let at = seg.start + r.start..seg.start + r.end;
                placed[at.clone()].fill(true);
                cohorts.push(ctx.planned(&rest[at]));
            }
        } else {
            // Those who can never start in time are in no valid run; leaving them out
            // keeps the repeated passes proportional to who is still placeable.
            let mut idx: Vec<usize> = seg.filter(|&i| ctx.can_ever_start(rest[i].day)).collect();
            let mut sub: Vec<Entry> = Vec::with_capacity(idx.len());
            // Each pass places at least `min` more; a few passes recover nearly everyone
            // an exclusion split off, and the cap bounds the worst case at O(passes · n).
            for _pass in 0..MAX_EXCLUSION_PASSES {
                sub.clear();
                sub.extend(idx.iter().map(|&i| rest[i]));
                best_runs(&ctx, &sub, Some(exclusions), &mut dp, &mut runs);
                if runs.is_empty() {
                    break;
                }
                for r in &runs {
                    for &i in &idx[r.clone()] {
                        placed[i] = true;
                    }
                    drafts.push(sub[r.clone()].to_vec());
                }
                idx.retain(|&i| !placed[i]);
            }
        }
    }
    if !exclusions.is_empty() {
        fill_free_seats(&ctx, &rest, &mut placed, &mut drafts, exclusions);
    }

    let blocked = if exclusions.is_empty() || placed.iter().all(|&p| p) {
        HashSet::new()
    } else {
        blocked_by_exclusions(&ctx, &rest, &placed, exclusions, &mut dp)
    };
    for (e, _) in rest.iter().zip(&placed).filter(|(_, &p)| !p) {
        let reason = if !ctx.can_ever_start(e.day) {
            WaitReason::MaxWaitExceeded
        } else if blocked.contains(&e.id) {
            WaitReason::ExcludedPairs
        } else {
            WaitReason::TooFewInWindow
        };
        left.push((e.day, e.id, reason));
    }
    left.sort_unstable_by_key(|&(day, id, _)| (day, id));

    cohorts.extend(drafts.iter().map(|m| ctx.planned(m)));
    cohorts.sort_by(|a, b| {
        (
            a.first_session_on,
            a.window_from,
            a.modality,
            a.members.first(),
        )
            .cmp(&(
                b.first_session_on,
                b.window_from,
                b.modality,
                b.members.first(),
            ))
    });

    FormationPlan {
        cohorts,
        joined,
        waiting: left
            .into_iter()
            .map(|(_, patient_id, reason)| Waiting { patient_id, reason })
            .collect(),
    }
}

/// How many times the DP is rerun on the leftovers when exclusions split runs.
const MAX_EXCLUSION_PASSES: usize = 16;

/// One waitlisted patient in day numbers; `key` is what must match within a cohort
/// (0 for everyone in a mixed program, else one per modality).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: u8,
    day: i64,
    id: i64,
    modality: Modality,
}

/// Rules resolved once, in day numbers, with saturating arithmetic so that absurd rule
/// values from data cannot overflow.
struct Ctx {
    min: usize,
    max: usize,
    window: i64,
    max_wait: i64,
    min_after: i64,
    notice: i64,
    today: i64,
    weekday: Weekday,
    mixed: bool,
}

impl Ctx {
    fn new(rules: &FormationRules, today: NaiveDate) -> Self {
        Ctx {
            // A cohort of nobody is not a cohort.
            min: rules.min_size.max(1),
            max: rules.max_size,
            window: rules.dosing_window_days,
            max_wait: rules.max_wait_days,
            min_after: rules.min_days_after_dosing,
            notice: rules.notice_days,
            today: days(today),
            weekday: rules.weekday,
            mixed: rules.mixed,
        }
    }

    fn key(&self, modality: Modality) -> u8 {
        if self.mixed {
            0
        } else {
            modality as u8 + 1
        }
    }

    /// First session of a new cohort whose latest member was dosed on `latest`.
    fn first_session(&self, latest: i64) -> i64 {
        earliest_first_session_days(
            latest,
            self.today,
            self.weekday,
            self.min_after,
            self.notice,
        )
    }

    /// Whether members dosed from `earliest` to `latest` may form a new cohort (size aside).
    fn range_ok(&self, earliest: i64, latest: i64) -> bool {
        latest.saturating_sub(earliest) <= self.window
            && self.first_session(latest) <= earliest.saturating_add(self.max_wait)
    }

    /// False when even a cohort of people dosed that same day, formed now, would start too
    /// late for them; such a patient can join no new cohort.
    fn can_ever_start(&self, day: i64) -> bool {
        self.first_session(day) <= day.saturating_add(self.max_wait)
    }

    /// A draft (members sorted by (day, id)) as the public type.
    fn planned(&self, members: &[Entry]) -> PlannedCohort {
        let first = members
            .first()
            .expect("a planned cohort has at least one member");
        let last = members
            .last()
            .expect("a planned cohort has at least one member");
        let modality = if members.iter().all(|e| e.modality == first.modality) {
            first.modality
        } else {
            Modality::Mixed
        };
        PlannedCohort {
            members: members.iter().map(|e| e.id).collect(),
            modality,
            window_from: date_from_days(first.day),
            window_to: date_from_days(last.day),
            first_session_on: date_from_days(self.first_session(last.day)),
        }
    }
}

/// One entry per id: the most recent dosing (ties: the greater modality, for
/// determinism), in no particular order (the caller sorts).
fn latest_dosing_per_id(entries: impl Iterator<Item = Entry>) -> Vec<Entry> {
    let mut latest: HashMap<i64, Entry> = HashMap::new();
    for e in entries {
        latest
            .entry(e.id)
            .and_modify(|kept| {
                if (e.day, e.modality) > (kept.day, kept.modality) {
                    *kept = e;
                }
            })
            .or_insert(e);
    }
    latest.into_values().collect()
}

/// Database ids are dense, so a bitmap over their span answers in one pass without
/// hashing; sparse ids fall back to sorting them.
fn has_duplicate_ids(ids: impl Iterator<Item = i64> + Clone) -> bool {
    let (Some(lo), Some(hi)) = (ids.clone().min(), ids.clone().max()) else {
        return false;
    };
    let span = hi.abs_diff(lo);
    let count = ids.clone().count() as u64;
    if span / 64 <= count {
        let mut seen = vec![0u64; (span / 64) as usize + 1];
        for id in ids {
            let offset = id.abs_diff(lo);
            let (word, bit) = ((offset / 64) as usize, 1u64 << (offset % 64));
            if seen[word] & bit != 0 {
                return true;
            }
            seen[word] |= bit;
        }
        false
    } else {
        let mut sorted: Vec<i64> = ids.collect();
        sorted.sort_unstable();
        sorted.windows(2).any(|w| w[0] == w[1])
    }
}

/// Entries are sorted by (key, day, id) as one `u128` each, whose integer order is exactly
/// that order: the sort then moves 16-byte integers with single comparisons — about the
/// cost of sorting bare (date, id) pairs, which is the budget formation is held to.
///
/// Layout, high to low: key (8 bits), day (32, sign-flipped so unsigned order is signed
/// order), id (64, sign-flipped), modality (8). Ids are unique after deduplication, so the
/// modality bits never decide the order.
fn pack(e: &Entry) -> u128 {
    let day = i32::try_from(e.day).expect("day numbers come from a NaiveDate") as u32 ^ (1 << 31);
    let id = e.id as u64 ^ (1 << 63);
    (u128::from(e.key) << 120)
        | (u128::from(day) << 72)
        | (u128::from(id) << 8)
        | u128::from(e.modality as u8)
}

fn unpack(p: u128) -> Entry {
    Entry {
        key: (p >> 120) as u8,
        day: i64::from(((p >> 72) as u32 ^ (1 << 31)) as i32),
        id: ((p >> 8) as u64 ^ (1 << 63)) as i64,
        modality: Modality::ALL
            .get(usize::from(p as u8))
            .copied()
            .expect("packed from a Modality, whose discriminants index Modality::ALL"),
    }
}

/// Maximal ranges of equal key in entries sorted by key.
fn segments(entries: &[Entry]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < entries.len() {
        let key = entries[start].key;
        let len = entries[start..].partition_point(|e| e.key == key);
        out.push(start..start + len);
        start += len;
    }
    out
}

/// Rolling admission: open seats in forming cohorts go first, to waitlisted patients who
/// fit that cohort, earliest dosing first. Returns who joined and everyone else (still
/// sorted by (key, day, id)).
fn admit_to_open_cohorts(
    ctx: &Ctx,
    open: &[OpenCohort],
    entries: Vec<Entry>,
    exclusions: &Exclusions,
) -> (Vec<Joined>, Vec<Entry>) {
    let mut joined = Vec::new();
    if open.is_empty() || entries.is_empty() {
        return (joined, entries);
    }
    let mut order: Vec<&OpenCohort> = open.iter().collect();
    order.sort_by_key(|c| (c.first_session_on, c.id));
    let mut taken = vec![false; entries.len()];
    for cohort in order {
        let first = days(cohort.first_session_on);
        // The welcome must land before the first session.
        if first < ctx.today.saturating_add(ctx.notice) {
            continue;
        }
        let mut free = cohort.max_size.saturating_sub(cohort.member_ids.len());
        if free == 0 {
            continue;
        }
        let mut earliest = cohort.member_dosed_on.iter().map(|&d| days(d)).min();
        let mut latest = cohort.member_dosed_on.iter().map(|&d| days(d)).max();
        let mut members = cohort.member_ids.clone();
        // first ≤ day + max_wait and first ≥ day + min_after bound the dosing day.
        let from = first.saturating_sub(ctx.max_wait);
        let to = first.saturating_sub(ctx.min_after);
        let key = ctx.key(cohort.modality);
        let seg_start = entries.partition_point(|e| e.key < key);
        let seg_end = entries.partition_point(|e| e.key <= key);
        let start = seg_start + entries[seg_start..seg_end].partition_point(|e| e.day < from);
        for i in start..seg_end {
            let e = entries[i];
            if e.day > to {
                break;
            }
            if taken[i] {
                continue;
            }
            let lo = earliest.map_or(e.day, |d| d.min(e.day));
            let hi = latest.map_or(e.day, |d| d.max(e.day));
            if hi.saturating_sub(lo) > ctx.window {
                continue;
            }
            if !exclusions.is_empty() && members.iter().any(|&m| exclusions.excluded(m, e.id)) {
                continue;
            }
            taken[i] = true;
            joined.push(Joined {
                cohort_id: cohort.id,
                patient_id: e.id,
            });
            earliest = Some(lo);
            latest = Some(hi);
            members.push(e.id);
            free -= 1;
            if free == 0 {
                break;
            }
        }
    }
    let rest = entries
        .into_iter()
        .zip(taken)
        .filter(|&(_, t)| !t)
        .map(|(e, _)| e)
        .collect();
    (joined, rest)
}

/// A DP score: what has been achieved for a prefix of ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Score {
    placed: u64,
    cohorts: u64,
    spread: i64,
    rank_sum: u64,
}

impl Score {
    const ZERO: Score = Score {
        placed: 0,
        cohorts: 0,
        spread: 0,
        rank_sum: 0,
    };

    /// More placed, then fewer cohorts, then less spread, then earlier ranks. Written out
    /// rather than as a tuple comparison: this is the DP's inner loop, and the early
    /// exits measured about a quarter faster.
    #[inline]
    fn better_than(&self, other: &Score) -> bool {
        if self.placed != other.placed {
            return self.placed > other.placed;
        }
        if self.cohorts != other.cohorts {
            return self.cohorts < other.cohorts;
        }
        if self.spread != other.spread {
            return self.spread < other.spread;
        }
        self.rank_sum < other.rank_sum
    }
}

/// Buffers reused across DP calls so a plan allocates them once per key, not per step.
#[derive(Default)]
struct Dp {
    /// With exclusions, floor[i]: smallest start of a run ending at rank i that holds no
    /// excluded pair (empty without exclusions).
    floor: Vec<usize>,
    best: Vec<Score>,
    /// choice[i]: 0 = rank i−1 unplaced, k = a run of k ending at rank i−1.
    choice: Vec<usize>,
    /// Candidate starts with their [`start_key`], keys strictly increasing front to back.
    starts: VecDeque<(StartKey, usize)>,
}

/// How good it is to start a run at rank s, whatever rank it ends at (smaller is better).
type StartKey = (u64, u64, i64, i64);

fn start_key(best: &Score, s: usize, day: i64) -> StartKey {
    let s64 = s as u64;
    (
        s64 - best.placed,
        best.cohorts,
        best.spread.saturating_sub(day),
        best.rank_sum as i64 - (s64 * s64.saturating_sub(1) / 2) as i64,
    )
}

/// The best set of runs (ranges of `run`, ascending) for one key, `run` sorted by
/// (day, id). With `exclusions`, runs never contain an excluded pair.
fn best_runs(
    ctx: &Ctx,
    run: &[Entry],
    exclusions: Option<&Exclusions>,
    dp: &mut Dp,
    out: &mut Vec<Range<usize>>,
) {
    out.clear();
    let n = run.len();
    if n == 0 || ctx.max < ctx.min || n < ctx.min {
        return;
    }

    // With exclusions, floor[i]: no run ending at rank i may start before it.
    dp.floor.clear();
    if let Some(ex) = exclusions.filter(|ex| !ex.is_empty()) {
        starts_past_excluded_pairs(run, ex, &mut dp.floor);
    }

    dp.best.clear();
    dp.best.push(Score::ZERO);
    dp.choice.clear();
    dp.choice.push(0);
    dp.starts.clear();
    // Earliest start the dates allow for a run ending at `end`: the threshold never
    // decreases with `end`, so one forward pointer finds it.
    let mut earliest = 0;
    for i in 1..=n {
        let end = i - 1;
        let day = run[end].day;
        let threshold = day
            .saturating_sub(ctx.window)
            .max(ctx.first_session(day).saturating_sub(ctx.max_wait));
        while earliest <= end && run[earliest].day < threshold {
            earliest += 1;
        }
        let valid_from = dp.floor.get(end).map_or(earliest, |&f| f.max(earliest));

        // Start i − min just became far enough back to close a run of `min` at `end`.
        // Equal keys: the later start (shorter run) wins, as a fixed rule.
        if let Some(s) = i.checked_sub(ctx.min) {
            let key = start_key(&dp.best[s], s, run[s].day);
            while dp.starts.back().is_some_and(|(k, _)| *k >= key) {
                dp.starts.pop_back();
            }
            dp.starts.push_back((key, s));
        }
        // Drop starts that make the run too long or invalid; `lowest` never decreases.
        let lowest = i.saturating_sub(ctx.max).max(valid_from);
        while dp.starts.front().is_some_and(|&(_, s)| s < lowest) {
            dp.starts.pop_front();
        }

        // Leaving `end` unplaced wins ties: nothing is formed without a strict gain.
        let mut best = dp.best[end];
        let mut choice = 0;
        if let Some(&(_, s)) = dp.starts.front() {
            let before = dp.best[s];
            let (k, from, to) = ((i - s) as u64, s as u64, i as u64);
            let candidate = Score {
                placed: before.placed + k,
                cohorts: before.cohorts + 1,
                spread: before.spread.saturating_add(run[end].day - run[s].day),
                // Sum of ranks s..=end = R(i) − R(s).
                rank_sum: before.rank_sum + (to * (to - 1) - from * from.saturating_sub(1)) / 2,
            };
            if candidate.better_than(&best) {
                best = candidate;
                choice = i - s;
            }
        }
        dp.best.push(best);
        dp.choice.push(choice);
    }

    let mut i = n;
    while i > 0 {
        match dp.choice[i] {
            0 => i -= 1,
            k => {
                out.push(i - k..i);
                i -= k;
            }
        }
    }
    out.reverse();
}

/// Fills `floor` (one per rank of `run`) so that no run ending at q and starting at or
/// after `floor[q]` contains an excluded pair (p, q′) with p < q′ ≤ q: it must start past p.
fn starts_past_excluded_pairs(run: &[Entry], exclusions: &Exclusions, floor: &mut Vec<usize>) {
    let mut rank: HashMap<i64, usize> = HashMap::with_capacity(exclusions.len() * 2);
    for (a, b) in exclusions.pairs() {
        rank.insert(a, usize::MAX);
        rank.insert(b, usize::MAX);
    }
    for (i, e) in run.iter().enumerate() {
        if let Some(r) = rank.get_mut(&e.id) {
            *r = i;
        }
    }
    floor.clear();
    floor.resize(run.len(), 0);
    for (a, b) in exclusions.pairs() {
        let (ra, rb) = (rank[&a], rank[&b]);
        if ra == usize::MAX || rb == usize::MAX {
            continue;
        }
        let (p, q) = (ra.min(rb), ra.max(rb));
        floor[q] = floor[q].max(p + 1);
    }
    let mut running = 0;
    for f in floor.iter_mut() {
        running = running.max(*f);
        *f = running;
    }
}

/// With exclusions, leftovers may still fit a planned cohort that has a free seat.
/// Leftovers go earliest first; each takes the first fitting cohort in (key, original
/// window start, first member) order.
fn fill_free_seats(
    ctx: &Ctx,
    rest: &[Entry],
    placed: &mut [bool],
    drafts: &mut [Vec<Entry>],
    exclusions: &Exclusions,
) {
    // A cohort's window start only moves earlier as members join, by at most `window`,
    // so indexing by the original start still finds every candidate (see below).
    let mut index: Vec<(u8, i64, i64, usize)> = drafts
        .iter()
        .enumerate()
        .map(|(n, m)| (m[0].key, m[0].day, m[0].id, n))
        .collect();
    index.sort_unstable();
    for (e, p) in rest.iter().zip(placed.iter_mut()) {
        if *p || !ctx.can_ever_start(e.day) {
            continue;
        }
        // Fitting needs the current start within [day − window, day + window], and the
        // current start lies within [original − window, original].
        let lo = (e.key, e.day.saturating_sub(ctx.window));
        let hi = (
            e.key,
            e.day.saturating_add(ctx.window).saturating_add(ctx.window),
        );
        let start = index.partition_point(|&(k, d, _, _)| (k, d) < lo);
        for &(_, _, _, n) in index[start..]
            .iter()
            .take_while(|&&(k, d, _, _)| (k, d) <= hi)
        {
            let members = &mut drafts[n];
            if members.len() >= ctx.max {
                continue;
            }
            let earliest = members[0].day.min(e.day);
            let latest = members[members.len() - 1].day.max(e.day);
            if !ctx.range_ok(earliest, latest)
                || members.iter().any(|m| exclusions.excluded(m.id, e.id))
            {
                continue;
            }
            let at = members.partition_point(|m| (m.day, m.id) < (e.day, e.id));
            members.insert(at, *e);
            *p = true;
            break;
        }
    }
}

/// Ids of unplaced patients whose waiting is down to exclusions: those the DP would have
/// placed had there been none, and those excluded from a compatible patient (same key,
/// dosed within the window, both able to start in time).
fn blocked_by_exclusions(
    ctx: &Ctx,
    rest: &[Entry],
    placed: &[bool],
    exclusions: &Exclusions,
    dp: &mut Dp,
) -> HashSet<i64> {
    let mut blocked = HashSet::new();
    let mut runs = Vec::new();
    for seg in segments(rest) {
        best_runs(ctx, &rest[seg.clone()], None, dp, &mut runs);
        for r in &runs {
            for i in seg.start + r.start..seg.start + r.end {
                if !placed[i] {
                    blocked.insert(rest[i].id);
                }
            }
        }
    }
    let waiting: HashMap<i64, &Entry> = rest
        .iter()
        .zip(placed)
        .filter(|&(e, &p)| !p && ctx.can_ever_start(e.day))
        .map(|(e, _)| (e.id, e))
        .collect();
    let all: HashMap<i64, &Entry> = rest.iter().map(|e| (e.id, e)).collect();
    for (a, b) in exclusions.pairs() {
        let (Some(ea), Some(eb)) = (all.get(&a), all.get(&b)) else {
            continue;
        };
        let compatible = ea.key == eb.key
            && ea.day.abs_diff(eb.day) <= u64::try_from(ctx.window).unwrap_or(0)
            && ctx.can_ever_start(ea.day)
            && ctx.can_ever_start(eb.day);
        if compatible {
            for id in [a, b] {
                if waiting.contains_key(&id) {
                    blocked.insert(id);
                }
            }
        }
    }
    blocked
}

#[cfg(test)]
mod tests;
