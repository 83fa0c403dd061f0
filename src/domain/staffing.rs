//! Staffing: which facilitators hold which cohort.
//!
//! A cohort needs [`team_size`] facilitators, exactly one of them the lead, who
//! together hold every required credential, and each of whom is *eligible*
//! (see [`eligible`]): active, trained for the cohort's modality, licensed
//! through the last session, available for every session, under their cap of
//! concurrently active cohorts, and excluded from no member.
//!
//! [`staff`] chooses teams automatically; [`check_team`] validates a team a lead
//! set by hand and lists every broken rule, so the API can show all of them at
//! once instead of one per round trip.
//!
//! Choices made here, and why:
//!
//! - **Modality.** A single-modality cohort needs that modality in the
//!   facilitator's list; `mixed` in the list does not stand in for it, because
//!   training is recorded per substance and we do not infer one from another.
//!   A `mixed` cohort needs `mixed` in the list, or all three of psilocybin,
//!   ketamine and MDMA (someone trained for every substance present can hold a
//!   mixed group).
//! - **Licence.** Valid through the last session means `licence_expires_on >=`
//!   the last session's date. `None` means no licence on file: that is fine only
//!   for someone whose credentials are all `peer` (lay facilitators of peer
//!   circles hold no licence); anyone else without a recorded expiry is not
//!   eligible, since we cannot show their licence covers the cohort.
//! - **Dates.** "The date" of a session is its date in the cohort's (program's)
//!   time zone, [`CohortNeed::timezone`] — the date the program shows and the
//!   one [`Commitment`]s are recorded in.
//! - **Availability.** Each session's start and end instants are converted to
//!   the facilitator's zone separately (so a DST change in either zone is
//!   honoured) and must fall inside *one* window on the local weekday of the
//!   start. A window whose `end` is 00:00 runs to midnight (so `20:00–00:00`
//!   covers a session ending at midnight, and `00:00–00:00` is the whole day).
//!   A window with `end <= start` otherwise covers nothing.
//! - **Cap and load.** A facilitator's *load* for a cohort is the largest number
//!   of their other cohorts active on any one date of this cohort's date range
//!   (commitments are inclusive date ranges; a commitment for this same cohort
//!   id is ignored, so re-staffing a cohort does not count it twice). They are
//!   under their cap when `load < max_active_cohorts`. Counting the *peak
//!   concurrency* rather than every commitment that overlaps the range matches
//!   the rule's wording ("maximum concurrently active cohorts") and keeps checks
//!   consistent after the fact: assigning a later cohort can never make an
//!   earlier, already valid staffing invalid. Commitments that do not overlap
//!   the range never count.
//! - **Team size.** Exactly [`team_size`] facilitators; never fewer than one,
//!   since someone has to lead. A larger team set by hand (say, with a trainee)
//!   is an override the lead records with a reason, not a valid staffing.
//! - **Lead.** The first therapist in the team's preference order, else the
//!   first member.
//!
//! Optimisation ([`staff`]): cohorts are taken in order of first session, then
//! id. For each, among all valid teams it picks, lexicographically,
//! 1. the smallest largest load in the team;
//! 2. the most members of `previous_team` (continuity);
//! 3. the team whose members, each keyed by (not in previous team, load, id) and
//!    sorted, form the smallest list — lighter loads, then lower ids.
//!
//! This is exact for each cohort (the tests check it against brute force).
//! Across cohorts it is greedy: earlier cohorts choose first and their
//! assignments count towards later cohorts' loads and caps. A global optimum
//! over hundreds of cohorts is a much harder problem, and staffing the earliest
//! cohorts best is what a lead would do by hand.

use super::{Credential, Modality};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// The staffing rule group of a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffingRules {
    /// Members one facilitator can hold; 0 means no per-member requirement.
    pub members_per_facilitator: usize,
    /// Each must be held by at least one member of the team.
    pub required_credentials: Vec<Credential>,
    /// 2 for integration cohorts; peer circles pass 1.
    pub min_team: usize,
}

impl Default for StaffingRules {
    /// The program defaults of DESIGN.md: 4 members each, a therapist and a nurse, two people.
    fn default() -> Self {
        StaffingRules {
            members_per_facilitator: 4,
            required_credentials: vec![Credential::Therapist, Credential::Nurse],
            min_team: 2,
        }
    }
}

/// Facilitators a cohort of `members` needs: `max(min_team, ceil(members / members_per_facilitator))`,
/// and at least one, because a team without anyone has no lead.
pub fn team_size(rules: &StaffingRules, members: usize) -> usize {
    let by_members = match rules.members_per_facilitator {
        0 => 0,
        per => members.div_ceil(per),
    };
    rules.min_team.max(by_members).max(1)
}

/// A weekly window a facilitator can work, in their own time zone.
///
/// `end` of 00:00 means midnight at the end of the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Availability {
    pub weekday: Weekday,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

/// A cohort a facilitator already staffs, as an inclusive range of program-local dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    pub cohort_id: i64,
    pub first_on: NaiveDate,
    pub last_on: NaiveDate,
}

/// What staffing needs to know about a facilitator.
///
/// Not `Serialize`: `chrono_tz::Tz` carries no serde support in this build, and
/// this is input assembled from the database, not something we send.
#[derive(Debug, Clone, PartialEq)]
pub struct FacilitatorProfile {
    pub id: i64,
    pub timezone: Tz,
    pub credentials: Vec<Credential>,
    pub modalities: Vec<Modality>,
    /// `None`: no licence on file (acceptable only for peer-only facilitators).
    pub licence_expires_on: Option<NaiveDate>,
    pub availability: Vec<Availability>,
    pub max_active_cohorts: usize,
    pub active: bool,
    /// Patients this facilitator must not facilitate (a relative, their own therapist's client…).
    pub excluded_patients: Vec<i64>,
    /// Cohorts they already staff.
    pub commitments: Vec<Commitment>,
}

/// A cohort to staff.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortNeed {
    pub id: i64,
    pub modality: Modality,
    /// Patient ids, each once (their count sets the team size).
    pub members: Vec<i64>,
    /// Every session of the cohort, in any order.
    pub session_starts: Vec<DateTime<Utc>>,
    pub duration_minutes: u32,
    /// Facilitators who held this group before; preferred for continuity.
    pub previous_team: Vec<i64>,
    /// The program's zone: session dates (licence, cap) are dates here, and the
    /// slot in gap messages is shown here.
    pub timezone: Tz,
}

text_enum! {
    /// A facilitator's part in a cohort.
    Role {
        Lead = "lead",
        CoFacilitator = "co_facilitator",
    }
}

/// One facilitator on a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub facilitator_id: i64,
    pub role: Role,
}

/// The outcome of staffing one cohort. When `complete` is false, `team` is the
/// best partial team (possibly empty) and `gaps` says what is missing; `gaps` is
/// empty exactly when `complete` is true.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Staffing {
    pub cohort_id: i64,
    /// Lead first, then the others in order of preference.
    pub team: Vec<Assignment>,
    pub complete: bool,
    pub gaps: Vec<Gap>,
}

/// Why a cohort could not be fully staffed. Serialised as its human-readable text,
/// since its reader is the program lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gap {
    /// The cohort has no sessions, so nobody's availability can be checked.
    NoSessions,
    /// No active facilitator trained for the modality is available for every
    /// session of this slot (cohort-local, e.g. "Tue 18:00–20:00 America/Vancouver").
    NoOneAvailable { slot: String },
    /// No eligible facilitator holds this required credential.
    MissingCredential(Credential),
    /// Fewer eligible facilitators than the team needs.
    TooFewFacilitators { needed: usize, found: usize },
    /// Every required credential is held by someone eligible, but no team of
    /// `team_size` people holds them all.
    CredentialsNeedLargerTeam {
        team_size: usize,
        credentials: Vec<Credential>,
    },
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gap::NoSessions => f.write_str("cohort has no sessions"),
            Gap::NoOneAvailable { slot } => write!(f, "no one available {slot}"),
            Gap::MissingCredential(c) => write!(f, "missing credential {c}"),
            Gap::TooFewFacilitators { needed, found } => {
                write!(f, "needs {needed} facilitators, found {found} eligible")
            }
            Gap::CredentialsNeedLargerTeam {
                team_size,
                credentials,
            } => write!(
                f,
                "no team of {team_size} eligible facilitators holds all of {}",
                join(credentials)
            ),
        }
    }
}

impl Serialize for Gap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A broken staffing rule, for a facilitator or for a team as a whole.
/// Serialised as its human-readable text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Inactive {
        facilitator: i64,
    },
    NotTrained {
        facilitator: i64,
        modality: Modality,
    },
    LicenceExpires {
        facilitator: i64,
        expires_on: NaiveDate,
        last_session_on: NaiveDate,
    },
    NoLicenceOnFile {
        facilitator: i64,
    },
    /// Not available for `uncovered` of `total` sessions; the first such session
    /// is given in the facilitator's local time.
    Unavailable {
        facilitator: i64,
        uncovered: usize,
        total: usize,
        first_start: NaiveDateTime,
        first_end: NaiveDateTime,
        timezone: Tz,
    },
    AtCapacity {
        facilitator: i64,
        active: usize,
        max: usize,
    },
    Excluded {
        facilitator: i64,
        members: Vec<i64>,
    },
    UnknownFacilitator(i64),
    Duplicate(i64),
    LeadCount {
        found: usize,
    },
    TeamSize {
        found: usize,
        needed: usize,
    },
    MissingCredential(Credential),
    NoSessions,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Inactive { facilitator } => {
                write!(f, "facilitator {facilitator}: not active")
            }
            Violation::NotTrained {
                facilitator,
                modality,
            } => write!(f, "facilitator {facilitator}: not trained for {modality}"),
            Violation::LicenceExpires {
                facilitator,
                expires_on,
                last_session_on,
            } => write!(
                f,
                "facilitator {facilitator}: licence expires {expires_on}, before the last session {last_session_on}"
            ),
            Violation::NoLicenceOnFile { facilitator } => {
                write!(f, "facilitator {facilitator}: no licence on file")
            }
            Violation::Unavailable {
                facilitator,
                uncovered,
                total,
                first_start,
                first_end,
                timezone,
            } => write!(
                f,
                "facilitator {facilitator}: not available for {uncovered} of {total} sessions, first {} {}–{} {timezone}",
                first_start.format("%a %Y-%m-%d"),
                first_start.format("%H:%M"),
                first_end.format("%H:%M"),
            ),
            Violation::AtCapacity {
                facilitator,
                active,
                max,
            } => write!(
                f,
                "facilitator {facilitator}: already has {active} cohorts active at once during this one (max {max})"
            ),
            Violation::Excluded {
                facilitator,
                members,
            } => {
                let ids: Vec<String> = members.iter().map(i64::to_string).collect();
                write!(
                    f,
                    "facilitator {facilitator}: excluded from member {}",
                    ids.join(", ")
                )
            }
            Violation::UnknownFacilitator(id) => write!(f, "facilitator {id}: not found"),
            Violation::Duplicate(id) => write!(f, "facilitator {id}: listed more than once"),
            Violation::LeadCount { found } => {
                write!(f, "team needs exactly one lead, has {found}")
            }
            Violation::TeamSize { found, needed } => {
                write!(f, "team has {found} facilitators, needs {needed}")
            }
            Violation::MissingCredential(c) => write!(f, "no one on the team holds credential {c}"),
            Violation::NoSessions => f.write_str("cohort has no sessions"),
        }
    }
}

impl Serialize for Violation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn join(credentials: &[Credential]) -> String {
    let names: Vec<&str> = credentials.iter().map(|c| c.as_str()).collect();
    names.join(", ")
}

/// Whether `f` may facilitate `cohort`, judged on `f.commitments` alone; on
/// failure, every rule they break.
pub fn eligible(f: &FacilitatorProfile, cohort: &CohortNeed) -> Result<(), Vec<Violation>> {
    let facts = Facts::of(cohort);
    let mut out = Vec::new();
    assess(f, cohort, &facts, &[], None, Some(&mut out));
    if out.is_empty() {
        Ok(())
    } else {
        Err(out)
    }
}

/// Every rule a hand-set `team` breaks for `cohort`; empty means valid.
///
/// Team rules (size, exactly one lead, no duplicates, known facilitators,
/// credentials covered) come first, then each facilitator's eligibility.
pub fn check_team(
    rules: &StaffingRules,
    cohort: &CohortNeed,
    team: &[Assignment],
    facilitators: &[FacilitatorProfile],
) -> Vec<Violation> {
    let facts = Facts::of(cohort);
    let mut out = Vec::new();
    if facts.sessions.is_empty() {
        out.push(Violation::NoSessions);
    }
    let needed = team_size(rules, cohort.members.len());
    if team.len() != needed {
        out.push(Violation::TeamSize {
            found: team.len(),
            needed,
        });
    }
    let leads = team.iter().filter(|a| a.role == Role::Lead).count();
    if leads != 1 {
        out.push(Violation::LeadCount { found: leads });
    }
    let mut seen: Vec<i64> = Vec::with_capacity(team.len());
    let mut members: Vec<&FacilitatorProfile> = Vec::with_capacity(team.len());
    for a in team {
        if seen.contains(&a.facilitator_id) {
            let already = out.contains(&Violation::Duplicate(a.facilitator_id));
            if !already {
                out.push(Violation::Duplicate(a.facilitator_id));
            }
            continue;
        }
        seen.push(a.facilitator_id);
        match facilitators.iter().find(|f| f.id == a.facilitator_id) {
            Some(f) => members.push(f),
            None => out.push(Violation::UnknownFacilitator(a.facilitator_id)),
        }
    }
    for c in dedup_credentials(&rules.required_credentials) {
        if !members.iter().any(|f| f.credentials.contains(&c)) {
            out.push(Violation::MissingCredential(c));
        }
    }
    for f in members {
        assess(f, cohort, &facts, &[], None, Some(&mut out));
    }
    out
}

/// Staffs every cohort, greedily in order of first session then id (see the
/// module docs for the objective), counting each assignment made here towards
/// later cohorts' loads and caps — partial teams included, since a cohort that
/// cannot be fully staffed is still formed with them. Results are in the order
/// of `cohorts`.
///
/// Facilitator ids are assumed unique; if one repeats, its first profile is used.
/// A facilitator's existing commitment to a cohort being staffed here is ignored
/// for that cohort but still counts (conservatively) for the others, so a caller
/// re-staffing cohorts should drop those commitments first.
pub fn staff(
    rules: &StaffingRules,
    cohorts: &[CohortNeed],
    facilitators: &[FacilitatorProfile],
) -> Vec<Staffing> {
    let required = dedup_credentials(&rules.required_credentials);
    let full_mask: u16 = (1u16 << required.len()) - 1;
    let covers = irredundant_covers(required.len());

    // One profile per id, first occurrence wins.
    let mut by_id: Vec<(i64, usize)> = facilitators
        .iter()
        .enumerate()
        .map(|(i, f)| (f.id, i))
        .collect();
    by_id.sort_unstable();
    by_id.dedup_by_key(|(id, _)| *id);
    let unique: Vec<usize> = by_id.iter().map(|&(_, i)| i).collect();
    let masks: Vec<u16> = facilitators
        .iter()
        .map(|f| credential_mask(&required, &f.credentials))
        .collect();

    // Facilitators share a handful of zones: convert each cohort's sessions once per zone.
    let mut zones: Vec<Tz> = Vec::new();
    let zone_of: Vec<usize> = facilitators
        .iter()
        .map(|f| match zones.iter().position(|&z| z == f.timezone) {
            Some(i) => i,
            None => {
                zones.push(f.timezone);
                zones.len() - 1
            }
        })
        .collect();
    let mut slots_by_zone: Vec<Vec<LocalSlot>> = vec![Vec::new(); zones.len()];

    let facts: Vec<Facts> = cohorts.iter().map(Facts::of).collect();
    let mut order: Vec<usize> = (0..cohorts.len()).collect();
    // Cohorts without sessions go last; they cannot be staffed anyway.
    order.sort_by_key(|&i| {
        (
            facts[i].sessions.first().map(|s| s.0).is_none(),
            facts[i].sessions.first().map(|s| s.0),
            cohorts[i].id,
        )
    });

    let mut made_here: Vec<Vec<Commitment>> = vec![Vec::new(); facilitators.len()];
    let mut results: Vec<Option<Staffing>> = vec![None; cohorts.len()];
    let mut candidates: Vec<Candidate> = Vec::with_capacity(unique.len());
    for ci in order {
        let cohort = &cohorts[ci];
        let fact = &facts[ci];
        let Some((first_on, last_on)) = fact.dates else {
            results[ci] = Some(Staffing {
                cohort_id: cohort.id,
                team: Vec::new(),
                complete: false,
                gaps: vec![Gap::NoSessions],
            });
            continue;
        };
        let needed = team_size(rules, cohort.members.len());
        for (zone, slots) in zones.iter().zip(&mut slots_by_zone) {
            slots.clear();
            for &(start, end) in &fact.sessions {
                let slot = LocalSlot::of(*zone, start, end);
                if !slots.contains(&slot) {
                    slots.push(slot);
                }
            }
        }

        candidates.clear();
        for &fi in &unique {
            let f = &facilitators[fi];
            let slots = &slots_by_zone[zone_of[fi]];
            if let Some(load) = assess(f, cohort, fact, &made_here[fi], Some(slots), None) {
                candidates.push(Candidate {
                    index: fi,
                    id: f.id,
                    load,
                    mask: masks[fi],
                    previous: cohort.previous_team.contains(&f.id),
                });
            }
        }
        candidates.sort_unstable_by_key(|c| (!c.previous, c.load, c.id));

        let (chosen, covered) = choose(&candidates, needed, &covers);
        let complete = chosen.len() == needed && covered == full_mask;

        let mut gaps = Vec::new();
        if !complete {
            // The slot itself is the problem when nobody who could hold the group is free then.
            let anyone_free = || {
                unique.iter().any(|&fi| {
                    let f = &facilitators[fi];
                    f.active
                        && trained_for(&f.modalities, cohort.modality)
                        && slots_by_zone[zone_of[fi]]
                            .iter()
                            .all(|slot| slot.fits(&f.availability))
                })
            };
            if candidates.is_empty() && !anyone_free() {
                gaps.push(Gap::NoOneAvailable {
                    slot: fact.slot_label(cohort),
                });
            }
            let held = candidates.iter().fold(0u16, |m, c| m | c.mask);
            for (bit, &c) in required.iter().enumerate() {
                if held & (1 << bit) == 0 {
                    gaps.push(Gap::MissingCredential(c));
                }
            }
            if candidates.len() < needed {
                gaps.push(Gap::TooFewFacilitators {
                    needed,
                    found: candidates.len(),
                });
            }
            if gaps.is_empty() {
                gaps.push(Gap::CredentialsNeedLargerTeam {
                    team_size: needed,
                    credentials: required.clone(),
                });
            }
        }

        // `chosen` holds positions in preference order; the lead is the first therapist.
        let lead = chosen
            .iter()
            .position(|&p| {
                facilitators[candidates[p].index]
                    .credentials
                    .contains(&Credential::Therapist)
            })
            .unwrap_or(0);
        let mut team = Vec::with_capacity(chosen.len());
        for (n, &p) in chosen.iter().enumerate() {
            let assignment = Assignment {
                facilitator_id: candidates[p].id,
                role: if n == lead {
                    Role::Lead
                } else {
                    Role::CoFacilitator
                },
            };
            if n == lead {
                team.insert(0, assignment);
            } else {
                team.push(assignment);
            }
            made_here[candidates[p].index].push(Commitment {
                cohort_id: cohort.id,
                first_on,
                last_on,
            });
        }
        results[ci] = Some(Staffing {
            cohort_id: cohort.id,
            team,
            complete,
            gaps,
        });
    }
    results.into_iter().flatten().collect()
}

/// An eligible facilitator for the cohort being staffed.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    index: usize,
    id: i64,
    load: usize,
    /// Required credentials held, one bit per required credential.
    mask: u16,
    previous: bool,
}

/// Picks the best team from `candidates` (sorted by preference: previous team
/// first, then load, then id). Returns positions into `candidates` in
/// preference order, and the required-credential bits the team covers.
///
/// The team has `min(needed, candidates)` members. It covers as many required
/// credentials as any team of that size can; among those, its largest load is
/// the smallest possible; among those, it has the most previous-team members,
/// then the smallest sorted list of positions.
///
/// Why this is exact: every team contains an *irredundant cover* of what it
/// covers — at most one member per distinct credential mask, each adding a
/// credential no other adds. Replacing each such member by the most preferred
/// person with the same mask keeps the coverage and never worsens the team, and
/// so does replacing the rest by the most preferred people left. So trying each
/// irredundant cover with the most preferred person per mask, filled greedily,
/// meets the optimum. The smallest feasible load cap is found by trying caps in
/// increasing order, since feasibility only grows with the cap.
fn choose(candidates: &[Candidate], needed: usize, covers: &[Vec<u16>]) -> (Vec<usize>, u16) {
    let size = needed.min(candidates.len());
    if size == 0 {
        return (Vec::new(), 0);
    }
    let best_coverage = |pool: &[usize]| -> u32 {
        let mut present = [false; 1 << MAX_REQUIRED];
        for &p in pool {
            present[usize::from(candidates[p].mask)] = true;
        }
        covers
            .iter()
            .filter(|cover| cover.len() <= size && cover.iter().all(|&m| present[usize::from(m)]))
            .map(|cover| cover.iter().fold(0u16, |a, &m| a | m).count_ones())
            .max()
            .unwrap_or(0)
    };
    let everyone: Vec<usize> = (0..candidates.len()).collect();
    let target = best_coverage(&everyone);

    let mut caps: Vec<usize> = candidates.iter().map(|c| c.load).collect();
    caps.sort_unstable();
    caps.dedup();
    let mut pool: Vec<usize> = Vec::with_capacity(candidates.len());
    for cap in caps {
        pool.clear();
        pool.extend((0..candidates.len()).filter(|&p| candidates[p].load <= cap));
        if pool.len() < size {
            continue;
        }
        let mut best_of_mask = [usize::MAX; 1 << MAX_REQUIRED];
        for &p in &pool {
            let m = usize::from(candidates[p].mask);
            if best_of_mask[m] == usize::MAX {
                best_of_mask[m] = p;
            }
        }
        let mut best: Option<(usize, Vec<usize>, u16)> = None;
        for cover in covers {
            if cover.len() > size {
                continue;
            }
            let union = cover.iter().fold(0u16, |a, &m| a | m);
            if union.count_ones() != target
                || cover
                    .iter()
                    .any(|&m| best_of_mask[usize::from(m)] == usize::MAX)
            {
                continue;
            }
            let mut team: Vec<usize> = cover
                .iter()
                .map(|&m| best_of_mask[usize::from(m)])
                .collect();
            for &p in &pool {
                if team.len() == size {
                    break;
                }
                if !team.contains(&p) {
                    team.push(p);
                }
            }
            team.sort_unstable();
            let previous = team.iter().filter(|&&p| candidates[p].previous).count();
            let better = match &best {
                None => true,
                Some((bp, bt, _)) => previous > *bp || (previous == *bp && team < *bt),
            };
            if better {
                let covered = team.iter().fold(0u16, |a, &p| a | candidates[p].mask);
                best = Some((previous, team, covered));
            }
        }
        if let Some((_, team, covered)) = best {
            return (team, covered);
        }
    }
    // Unreachable in practice: at the largest cap the pool is everyone, where
    // `target` was reached. Fall back to the most preferred people.
    let team: Vec<usize> = (0..size).collect();
    let covered = team.iter().fold(0u16, |a, &p| a | candidates[p].mask);
    (team, covered)
}

/// Credential masks are `u16` indexes into small tables; more than four
/// distinct required credentials cannot exist (there are four credentials).
const MAX_REQUIRED: usize = 4;

/// All sets of distinct non-empty masks over `bits` bits in which every mask
/// adds a bit the others lack (including the empty set). Small: 1,940 sets at
/// most are examined for four bits.
fn irredundant_covers(bits: usize) -> Vec<Vec<u16>> {
    fn extend(next: u16, last: u16, current: &mut Vec<u16>, bits: usize, out: &mut Vec<Vec<u16>>) {
        for m in next..=last {
            if current.len() == bits {
                return;
            }
            current.push(m);
            let redundant = (0..current.len()).any(|i| {
                let others = current
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .fold(0u16, |a, (_, &x)| a | x);
                current[i] & !others == 0
            });
            if !redundant {
                out.push(current.clone());
                extend(m + 1, last, current, bits, out);
            }
            current.pop();
        }
    }
    let mut out = vec![Vec::new()];
    if bits > 0 {
        extend(1, (1u16 << bits) - 1, &mut Vec::new(), bits, &mut out);
    }
    out
}

fn dedup_credentials(credentials: &[Credential]) -> Vec<Credential> {
    let mut out: Vec<Credential> = Vec::with_capacity(credentials.len());
    for &c in credentials {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn credential_mask(required: &[Credential], held: &[Credential]) -> u16 {
    required
        .iter()
        .enumerate()
        .filter(|(_, c)| held.contains(c))
        .fold(0, |m, (bit, _)| m | (1 << bit))
}

/// What every eligibility check of one cohort shares, computed once.
struct Facts {
    /// (start, end) of each session, sorted by start.
    sessions: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// First and last session dates, cohort-local; `None` without sessions.
    dates: Option<(NaiveDate, NaiveDate)>,
}

impl Facts {
    fn of(cohort: &CohortNeed) -> Facts {
        let length = Duration::minutes(i64::from(cohort.duration_minutes));
        let mut sessions: Vec<(DateTime<Utc>, DateTime<Utc>)> = cohort
            .session_starts
            .iter()
            .map(|&s| (s, s + length))
            .collect();
        sessions.sort_unstable();
        let local_date = |t: DateTime<Utc>| t.with_timezone(&cohort.timezone).date_naive();
        let dates = match (sessions.first(), sessions.last()) {
            (Some(first), Some(last)) => Some((local_date(first.0), local_date(last.0))),
            _ => None,
        };
        Facts { sessions, dates }
    }

    /// The first session's slot in the cohort's zone, e.g. "Tue 18:00–20:00 America/Vancouver".
    fn slot_label(&self, cohort: &CohortNeed) -> String {
        match self.sessions.first() {
            Some(&(start, end)) => {
                let tz = cohort.timezone;
                let (s, e) = (start.with_timezone(&tz), end.with_timezone(&tz));
                format!("{}–{} {tz}", s.format("%a %H:%M"), e.format("%H:%M"))
            }
            None => String::from("(no sessions)"),
        }
    }
}

/// Checks `f` against `cohort`, counting `extra` commitments (made earlier in
/// the same `staff` call) towards the cap.
///
/// With `out`, every broken rule is pushed there and the load is returned
/// whatever happened. Without it (the hot path of [`staff`]), checking stops at
/// the first broken rule: `None` means ineligible, `Some(load)` eligible.
/// Cheap rules go first, availability last. `slots`, when given, are the
/// cohort's distinct sessions already in the facilitator's zone; they spare the
/// hot path the time-zone conversions, which otherwise dominate its cost.
fn assess(
    f: &FacilitatorProfile,
    cohort: &CohortNeed,
    facts: &Facts,
    extra: &[Commitment],
    slots: Option<&[LocalSlot]>,
    mut out: Option<&mut Vec<Violation>>,
) -> Option<usize> {
    macro_rules! broken {
        ($v:expr) => {{
            match out.as_deref_mut() {
                Some(out) => out.push($v),
                None => return None,
            }
        }};
    }
    if !f.active {
        broken!(Violation::Inactive { facilitator: f.id });
    }
    if !trained_for(&f.modalities, cohort.modality) {
        broken!(Violation::NotTrained {
            facilitator: f.id,
            modality: cohort.modality,
        });
    }
    if f.excluded_patients
        .iter()
        .any(|p| cohort.members.contains(p))
    {
        let mut members: Vec<i64> = cohort
            .members
            .iter()
            .copied()
            .filter(|m| f.excluded_patients.contains(m))
            .collect();
        members.sort_unstable();
        members.dedup();
        broken!(Violation::Excluded {
            facilitator: f.id,
            members,
        });
    }
    match (f.licence_expires_on, facts.dates) {
        (Some(expires_on), Some((_, last_session_on))) if expires_on < last_session_on => {
            broken!(Violation::LicenceExpires {
                facilitator: f.id,
                expires_on,
                last_session_on,
            })
        }
        (None, _) if !peer_only(&f.credentials) => {
            broken!(Violation::NoLicenceOnFile { facilitator: f.id })
        }
        _ => {}
    }
    let load = match facts.dates {
        Some((first, last)) => peak_load(&f.commitments, extra, cohort.id, first, last),
        None => 0,
    };
    if load >= f.max_active_cohorts {
        broken!(Violation::AtCapacity {
            facilitator: f.id,
            active: load,
            max: f.max_active_cohorts,
        });
    }
    if let (Some(slots), None) = (slots, &out) {
        // Hot path: each distinct local slot once, no time-zone arithmetic.
        return slots
            .iter()
            .all(|slot| slot.fits(&f.availability))
            .then_some(load);
    }
    let mut uncovered = facts
        .sessions
        .iter()
        .filter(|&&(start, end)| !within_availability(&f.availability, f.timezone, start, end));
    if let Some(&(start, end)) = uncovered.next() {
        let rest = uncovered.count();
        broken!(Violation::Unavailable {
            facilitator: f.id,
            uncovered: rest + 1,
            total: facts.sessions.len(),
            first_start: start.with_timezone(&f.timezone).naive_local(),
            first_end: end.with_timezone(&f.timezone).naive_local(),
            timezone: f.timezone,
        });
    }
    Some(load)
}

fn trained_for(modalities: &[Modality], cohort: Modality) -> bool {
    match cohort {
        Modality::Mixed => {
            modalities.contains(&Modality::Mixed)
                || [Modality::Psilocybin, Modality::Ketamine, Modality::Mdma]
                    .iter()
                    .all(|m| modalities.contains(m))
        }
        single => modalities.contains(&single),
    }
}

fn peer_only(credentials: &[Credential]) -> bool {
    !credentials.is_empty() && credentials.iter().all(|&c| c == Credential::Peer)
}

/// Whether the session `[start, end]` lies inside one window of `windows`, in `tz`.
fn within_availability(
    windows: &[Availability],
    tz: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> bool {
    LocalSlot::of(tz, start, end).fits(windows)
}

/// A session as seen in one time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LocalSlot {
    weekday: Weekday,
    start: NaiveTime,
    end: NaiveTime,
    /// Ends exactly at the next local midnight (`end` is then 00:00).
    ends_at_midnight: bool,
    /// Runs past local midnight, so no single window can hold it.
    spans_days: bool,
}

impl LocalSlot {
    /// Start and end are converted separately, so a DST change between them is honoured.
    fn of(tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> LocalSlot {
        let local_start = start.with_timezone(&tz).naive_local();
        let local_end = end.with_timezone(&tz).naive_local();
        let day = local_start.date();
        let ends_at_midnight =
            local_end.time() == NaiveTime::MIN && day.succ_opt() == Some(local_end.date());
        LocalSlot {
            weekday: day.weekday(),
            start: local_start.time(),
            end: local_end.time(),
            ends_at_midnight,
            spans_days: local_end.date() != day && !ends_at_midnight,
        }
    }

    fn fits(&self, windows: &[Availability]) -> bool {
        !self.spans_days
            && windows.iter().any(|w| {
                if w.weekday != self.weekday || self.start < w.start {
                    false
                } else if w.end == NaiveTime::MIN {
                    true // the window runs to midnight
                } else {
                    !self.ends_at_midnight && w.start < w.end && self.end <= w.end
                }
            })
    }
}

/// The largest number of cohorts (from `commitments` and `extra`, other than
/// `cohort_id`) active on any one date in `[first, last]`.
fn peak_load(
    commitments: &[Commitment],
    extra: &[Commitment],
    cohort_id: i64,
    first: NaiveDate,
    last: NaiveDate,
) -> usize {
    // (date, +1 on its first day / -1 the day after its last), clipped to the cohort's range.
    let mut events: Vec<(NaiveDate, i32)> = Vec::new();
    let mut overlapping = 0usize;
    for c in commitments.iter().chain(extra) {
        if c.cohort_id == cohort_id {
            continue;
        }
        // A reversed range is taken as the same range written backwards.
        let (from, to) = if c.first_on <= c.last_on {
            (c.first_on, c.last_on)
        } else {
            (c.last_on, c.first_on)
        };
        if to < first || from > last {
            continue;
        }
        overlapping += 1;
        events.push((from.max(first), 1));
        if let Some(after) = to.min(last).succ_opt() {
            events.push((after, -1));
        }
    }
    if overlapping <= 1 {
        return overlapping;
    }
    // Ends sort before starts on the same date: a cohort ending the day before another starts
    // does not overlap it.
    events.sort_unstable();
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, delta) in events {
        now += delta;
        peak = peak.max(now);
    }
    usize::try_from(peak).unwrap_or(0)
}

#[cfg(test)]
mod tests;
