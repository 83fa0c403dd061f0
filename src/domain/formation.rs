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
mod tests {
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
    fn oracle(
        rules: &FormationRules,
        today: NaiveDate,
        ps: &[WaitingPatient],
    ) -> (usize, usize, i64) {
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
                |(min, extra, window, max_wait, min_after, notice, weekday, mixed)| {
                    FormationRules {
                        min_size: min,
                        max_size: min + extra,
                        dosing_window_days: window,
                        max_wait_days: max_wait,
                        min_days_after_dosing: min_after,
                        notice_days: notice,
                        weekday,
                        mixed,
                    }
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
}
