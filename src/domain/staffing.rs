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

/// A facilitator's part in a cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Lead,
    CoFacilitator,
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
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::America::Vancouver;
    use chrono_tz::Europe::London;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn time(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid time")
    }

    /// `count` weekly sessions at `h:m` local wall time in `tz`, from `first`.
    fn weekly(tz: Tz, first: NaiveDate, h: u32, m: u32, count: u32) -> Vec<DateTime<Utc>> {
        (0..count)
            .map(|w| {
                let day = first + Duration::weeks(i64::from(w));
                tz.from_local_datetime(&day.and_time(time(h, m)))
                    .single()
                    .expect("unambiguous local time")
                    .with_timezone(&Utc)
            })
            .collect()
    }

    fn window(weekday: Weekday, start: (u32, u32), end: (u32, u32)) -> Availability {
        Availability {
            weekday,
            start: time(start.0, start.1),
            end: time(end.0, end.1),
        }
    }

    /// An eligible therapist for [`cohort`], unless changed.
    fn fac(id: i64) -> FacilitatorProfile {
        FacilitatorProfile {
            id,
            timezone: Vancouver,
            credentials: vec![Credential::Therapist],
            modalities: vec![Modality::Psilocybin, Modality::Ketamine, Modality::Mdma],
            licence_expires_on: Some(date(2030, 1, 1)),
            availability: vec![window(Weekday::Tue, (17, 0), (21, 0))],
            max_active_cohorts: 3,
            active: true,
            excluded_patients: Vec::new(),
            commitments: Vec::new(),
        }
    }

    fn nurse(id: i64) -> FacilitatorProfile {
        FacilitatorProfile {
            credentials: vec![Credential::Nurse],
            ..fac(id)
        }
    }

    /// Ketamine, 8 members, 12 Tuesdays at 18:00–20:00 Vancouver from 2027-01-05
    /// (the last on 2027-03-23, after the DST change of 2027-03-14).
    fn cohort(id: i64) -> CohortNeed {
        CohortNeed {
            id,
            modality: Modality::Ketamine,
            members: (1..=8).collect(),
            session_starts: weekly(Vancouver, date(2027, 1, 5), 18, 0, 12),
            duration_minutes: 120,
            previous_team: Vec::new(),
            timezone: Vancouver,
        }
    }

    fn ids(s: &Staffing) -> Vec<i64> {
        let mut ids: Vec<i64> = s.team.iter().map(|a| a.facilitator_id).collect();
        ids.sort_unstable();
        ids
    }

    fn lead_of(s: &Staffing) -> Option<i64> {
        s.team
            .iter()
            .find(|a| a.role == Role::Lead)
            .map(|a| a.facilitator_id)
    }

    fn violations(f: &FacilitatorProfile, c: &CohortNeed) -> Vec<String> {
        match eligible(f, c) {
            Ok(()) => Vec::new(),
            Err(v) => v.iter().map(ToString::to_string).collect(),
        }
    }

    fn commitment(cohort_id: i64, first_on: NaiveDate, last_on: NaiveDate) -> Commitment {
        Commitment {
            cohort_id,
            first_on,
            last_on,
        }
    }

    // --- team size ---

    #[test]
    fn team_size_follows_members_per_facilitator() {
        let rules = StaffingRules::default();
        assert_eq!(team_size(&rules, 4), 2, "never fewer than min_team");
        assert_eq!(team_size(&rules, 8), 2);
        assert_eq!(team_size(&rules, 9), 3);
        assert_eq!(team_size(&rules, 12), 3);
        assert_eq!(team_size(&rules, 13), 4);
        let peer = StaffingRules {
            min_team: 1,
            required_credentials: vec![Credential::Peer],
            members_per_facilitator: 12,
        };
        assert_eq!(team_size(&peer, 12), 1);
        assert_eq!(team_size(&peer, 13), 2);
        let odd = StaffingRules {
            members_per_facilitator: 0,
            min_team: 0,
            required_credentials: Vec::new(),
        };
        assert_eq!(team_size(&odd, 30), 1, "someone has to lead");
    }

    #[test]
    fn staff_assigns_as_many_facilitators_as_the_members_need() {
        let rules = StaffingRules::default();
        let mut c = cohort(1);
        c.members = (1..=9).collect();
        let facs = vec![fac(1), nurse(2), fac(3), nurse(4)];
        let s = &staff(&rules, &[c], &facs)[0];
        assert!(s.complete, "{s:?}");
        assert_eq!(s.team.len(), 3);
    }

    // --- credentials ---

    #[test]
    fn staff_covers_every_required_credential() {
        let facs = vec![fac(1), fac(2), nurse(3)];
        let s = &staff(&StaffingRules::default(), &[cohort(1)], &facs)[0];
        assert!(s.complete);
        assert_eq!(ids(s), vec![1, 3], "the only nurse must be on the team");
    }

    #[test]
    fn one_facilitator_can_cover_several_credentials() {
        let rules = StaffingRules {
            required_credentials: vec![
                Credential::Therapist,
                Credential::Nurse,
                Credential::Physician,
            ],
            ..StaffingRules::default()
        };
        let mut both = fac(5);
        both.credentials = vec![Credential::Therapist, Credential::Nurse];
        let mut physician = fac(9);
        physician.credentials = vec![Credential::Physician];
        let facs = vec![fac(1), nurse(2), both, physician];
        let s = &staff(&rules, &[cohort(1)], &facs)[0];
        assert!(s.complete, "{s:?}");
        assert_eq!(ids(s), vec![5, 9]);
    }

    #[test]
    fn missing_credential_is_a_gap_with_a_partial_team() {
        let facs = vec![fac(1), fac(2), fac(3)];
        let s = &staff(&StaffingRules::default(), &[cohort(1)], &facs)[0];
        assert!(!s.complete);
        assert_eq!(s.gaps, vec![Gap::MissingCredential(Credential::Nurse)]);
        assert_eq!(s.gaps[0].to_string(), "missing credential nurse");
        assert_eq!(ids(s), vec![1, 2], "best partial team still proposed");
    }

    #[test]
    fn credentials_spread_too_thin_for_the_team_size_are_a_gap() {
        let rules = StaffingRules {
            required_credentials: vec![
                Credential::Therapist,
                Credential::Nurse,
                Credential::Physician,
            ],
            ..StaffingRules::default()
        };
        let mut physician = fac(3);
        physician.credentials = vec![Credential::Physician];
        let s = &staff(&rules, &[cohort(1)], &[fac(1), nurse(2), physician])[0];
        assert!(!s.complete);
        assert!(matches!(
            s.gaps.as_slice(),
            [Gap::CredentialsNeedLargerTeam { team_size: 2, .. }]
        ));
        assert_eq!(s.team.len(), 2);
    }

    #[test]
    fn check_team_flags_an_uncovered_credential() {
        let facs = vec![fac(1), fac(2)];
        let team = [
            Assignment {
                facilitator_id: 1,
                role: Role::Lead,
            },
            Assignment {
                facilitator_id: 2,
                role: Role::CoFacilitator,
            },
        ];
        let v = check_team(&StaffingRules::default(), &cohort(1), &team, &facs);
        assert_eq!(v, vec![Violation::MissingCredential(Credential::Nurse)]);
        assert_eq!(
            v[0].to_string(),
            "no one on the team holds credential nurse"
        );
    }

    // --- modality ---

    #[test]
    fn facilitator_must_be_trained_for_the_modality() {
        let mut f = fac(7);
        f.modalities = vec![Modality::Psilocybin, Modality::Mixed];
        assert_eq!(
            violations(&f, &cohort(1)),
            vec!["facilitator 7: not trained for ketamine"]
        );
    }

    #[test]
    fn mixed_cohort_needs_mixed_training_or_all_three_substances() {
        let mut c = cohort(1);
        c.modality = Modality::Mixed;
        let mut f = fac(7);
        assert!(eligible(&f, &c).is_ok(), "all three substances");
        f.modalities = vec![Modality::Mixed];
        assert!(eligible(&f, &c).is_ok(), "mixed itself");
        f.modalities = vec![Modality::Psilocybin, Modality::Ketamine];
        assert!(eligible(&f, &c).is_err(), "two of three is not enough");
    }

    // --- licence ---

    #[test]
    fn licence_expiring_the_day_before_the_last_session_is_ineligible() {
        let mut f = fac(7);
        f.licence_expires_on = Some(date(2027, 3, 22));
        assert_eq!(
            violations(&f, &cohort(1)),
            vec!["facilitator 7: licence expires 2027-03-22, before the last session 2027-03-23"]
        );
    }

    #[test]
    fn licence_expiring_on_the_last_session_day_is_eligible() {
        let mut f = fac(7);
        f.licence_expires_on = Some(date(2027, 3, 23));
        assert_eq!(eligible(&f, &cohort(1)), Ok(()));
    }

    #[test]
    fn licence_is_judged_on_the_program_local_date_of_the_last_session() {
        // 18:00 in Vancouver on 2027-03-23 is 01:00 UTC on 2027-03-24.
        let c = cohort(1);
        let last = *c.session_starts.iter().max().expect("sessions");
        assert_eq!(last.date_naive(), date(2027, 3, 24));
        let mut f = fac(7);
        f.licence_expires_on = Some(date(2027, 3, 23));
        assert!(eligible(&f, &c).is_ok());
    }

    #[test]
    fn no_licence_on_file_is_eligible_only_for_peers() {
        let mut f = fac(7);
        f.licence_expires_on = None;
        assert_eq!(
            violations(&f, &cohort(1)),
            vec!["facilitator 7: no licence on file"]
        );
        f.credentials = vec![Credential::Peer];
        assert!(eligible(&f, &cohort(1)).is_ok());
        f.credentials = vec![Credential::Peer, Credential::Nurse];
        assert!(eligible(&f, &cohort(1)).is_err());
    }

    // --- availability ---

    #[test]
    fn window_ending_a_minute_early_does_not_cover_the_slot() {
        let mut f = fac(7);
        f.availability = vec![window(Weekday::Tue, (18, 0), (19, 59))];
        assert_eq!(
            violations(&f, &cohort(1)),
            vec!["facilitator 7: not available for 12 of 12 sessions, first Tue 2027-01-05 18:00–20:00 America/Vancouver"]
        );
    }

    #[test]
    fn window_exactly_the_slot_covers_it() {
        let mut f = fac(7);
        f.availability = vec![window(Weekday::Tue, (18, 0), (20, 0))];
        assert!(eligible(&f, &cohort(1)).is_ok());
    }

    #[test]
    fn window_on_another_weekday_or_split_in_two_does_not_cover_the_slot() {
        let mut f = fac(7);
        f.availability = vec![window(Weekday::Wed, (17, 0), (21, 0))];
        assert!(eligible(&f, &cohort(1)).is_err());
        f.availability = vec![
            window(Weekday::Tue, (17, 0), (19, 0)),
            window(Weekday::Tue, (19, 0), (21, 0)),
        ];
        assert!(eligible(&f, &cohort(1)).is_err(), "one window must hold it");
    }

    #[test]
    fn window_ending_at_midnight_covers_a_session_ending_at_midnight() {
        let mut c = cohort(1);
        c.session_starts = weekly(Vancouver, date(2027, 1, 5), 22, 0, 4);
        let mut f = fac(7);
        f.availability = vec![window(Weekday::Tue, (20, 0), (0, 0))];
        assert!(eligible(&f, &c).is_ok());
        f.availability = vec![window(Weekday::Tue, (20, 0), (23, 59))];
        assert!(eligible(&f, &c).is_err());
    }

    #[test]
    fn slot_is_converted_to_the_facilitators_zone() {
        // Tue 18:00 Vancouver (PST) is Wed 02:00 London.
        let mut f = fac(7);
        f.timezone = London;
        f.availability = vec![window(Weekday::Wed, (2, 0), (4, 0))];
        let mut c = cohort(1);
        c.session_starts = weekly(Vancouver, date(2027, 1, 5), 18, 0, 4);
        assert!(eligible(&f, &c).is_ok());
    }

    #[test]
    fn dst_gap_between_zones_moves_sessions_out_of_a_window() {
        // A London facilitator free Tue 18:00–20:00 for a Vancouver group at Tue 10:00–12:00.
        // Usually that is 18:00–20:00 in London, but between North America's change
        // (2027-03-14) and Europe's (2027-03-28) it is 17:00–19:00.
        let mut f = fac(7);
        f.timezone = London;
        f.availability = vec![window(Weekday::Tue, (18, 0), (20, 0))];
        let mut c = cohort(1);
        c.session_starts = weekly(Vancouver, date(2027, 2, 2), 10, 0, 4);
        assert!(eligible(&f, &c).is_ok(), "all of February lines up");

        c.session_starts = weekly(Vancouver, date(2027, 3, 2), 10, 0, 5);
        assert_eq!(
            violations(&f, &c),
            vec!["facilitator 7: not available for 2 of 5 sessions, first Tue 2027-03-16 17:00–19:00 Europe/London"]
        );
    }

    // --- cap ---

    #[test]
    fn cap_counts_cohorts_active_at_the_same_time() {
        let mut f = fac(7);
        f.max_active_cohorts = 2;
        f.commitments = vec![
            commitment(10, date(2026, 12, 1), date(2027, 2, 1)),
            commitment(11, date(2027, 1, 1), date(2027, 4, 1)),
        ];
        assert_eq!(
            violations(&f, &cohort(1)),
            vec!["facilitator 7: already has 2 cohorts active at once during this one (max 2)"]
        );
    }

    #[test]
    fn cap_ignores_commitments_outside_the_cohorts_dates() {
        let mut f = fac(7);
        f.max_active_cohorts = 1;
        f.commitments = vec![
            commitment(10, date(2026, 9, 1), date(2027, 1, 4)),
            commitment(11, date(2027, 3, 24), date(2027, 6, 1)),
        ];
        assert!(eligible(&f, &cohort(1)).is_ok());
        f.commitments
            .push(commitment(12, date(2027, 3, 23), date(2027, 6, 1)));
        assert!(
            eligible(&f, &cohort(1)).is_err(),
            "touching the last day overlaps"
        );
    }

    #[test]
    fn cap_counts_sequential_commitments_once() {
        // Two commitments inside the cohort's dates but one after the other: at no
        // time are both active, so a cap of 2 still leaves room.
        let mut f = fac(7);
        f.max_active_cohorts = 2;
        f.commitments = vec![
            commitment(10, date(2026, 12, 1), date(2027, 1, 31)),
            commitment(11, date(2027, 2, 1), date(2027, 5, 1)),
        ];
        assert!(eligible(&f, &cohort(1)).is_ok());
    }

    #[test]
    fn cap_ignores_a_commitment_to_the_same_cohort() {
        let mut f = fac(7);
        f.max_active_cohorts = 1;
        f.commitments = vec![commitment(1, date(2027, 1, 5), date(2027, 3, 23))];
        assert!(eligible(&f, &cohort(1)).is_ok());
    }

    #[test]
    fn staff_counts_its_own_assignments_towards_the_cap() {
        let mut facs = vec![fac(1), nurse(2)];
        for f in &mut facs {
            f.max_active_cohorts = 1;
        }
        let out = staff(&StaffingRules::default(), &[cohort(1), cohort(2)], &facs);
        assert!(out[0].complete);
        assert!(!out[1].complete);
        assert_eq!(
            out[1].gaps,
            vec![
                Gap::MissingCredential(Credential::Therapist),
                Gap::MissingCredential(Credential::Nurse),
                Gap::TooFewFacilitators {
                    needed: 2,
                    found: 0
                },
            ],
            "no slot gap: they are available, only at their cap"
        );
    }

    // --- exclusion ---

    #[test]
    fn facilitator_excluded_from_a_member_is_ineligible() {
        let mut f = fac(7);
        f.excluded_patients = vec![3, 99];
        assert_eq!(
            violations(&f, &cohort(1)),
            vec!["facilitator 7: excluded from member 3"]
        );
        let s = &staff(
            &StaffingRules::default(),
            &[cohort(1)],
            &[f, fac(1), nurse(2)],
        )[0];
        assert_eq!(ids(s), vec![1, 2]);
    }

    #[test]
    fn eligible_lists_every_broken_rule() {
        let mut f = fac(7);
        f.active = false;
        f.modalities = Vec::new();
        f.licence_expires_on = Some(date(2027, 1, 1));
        f.excluded_patients = vec![1];
        f.availability = Vec::new();
        f.max_active_cohorts = 0;
        let v = eligible(&f, &cohort(1)).expect_err("ineligible");
        assert_eq!(v.len(), 6, "{v:?}");
    }

    // --- lead and team shape ---

    #[test]
    fn staff_names_exactly_one_lead_preferring_a_therapist() {
        let facs = vec![nurse(1), fac(2)];
        let s = &staff(&StaffingRules::default(), &[cohort(1)], &facs)[0];
        assert_eq!(s.team.iter().filter(|a| a.role == Role::Lead).count(), 1);
        assert_eq!(lead_of(s), Some(2));
        assert_eq!(s.team[0].role, Role::Lead, "lead listed first");
    }

    #[test]
    fn without_a_therapist_the_first_preferred_member_leads() {
        let rules = StaffingRules {
            required_credentials: vec![Credential::Peer],
            min_team: 1,
            members_per_facilitator: 12,
        };
        let mut p = fac(4);
        p.credentials = vec![Credential::Peer];
        let mut q = fac(3);
        q.credentials = vec![Credential::Peer];
        let mut c = cohort(1);
        c.members = (1..=20).collect();
        let s = &staff(&rules, &[c], &[p, q])[0];
        assert!(s.complete);
        assert_eq!(lead_of(s), Some(3));
    }

    #[test]
    fn check_team_requires_exactly_one_lead() {
        let facs = vec![fac(1), nurse(2)];
        let rules = StaffingRules::default();
        let as_role = |r1, r2| {
            [
                Assignment {
                    facilitator_id: 1,
                    role: r1,
                },
                Assignment {
                    facilitator_id: 2,
                    role: r2,
                },
            ]
        };
        let none = as_role(Role::CoFacilitator, Role::CoFacilitator);
        assert_eq!(
            check_team(&rules, &cohort(1), &none, &facs),
            vec![Violation::LeadCount { found: 0 }]
        );
        let two = as_role(Role::Lead, Role::Lead);
        assert_eq!(
            check_team(&rules, &cohort(1), &two, &facs),
            vec![Violation::LeadCount { found: 2 }]
        );
        let one = as_role(Role::CoFacilitator, Role::Lead);
        assert!(check_team(&rules, &cohort(1), &one, &facs).is_empty());
    }

    #[test]
    fn check_team_flags_size_duplicates_unknowns_and_ineligibility() {
        let mut late = nurse(2);
        late.licence_expires_on = Some(date(2026, 12, 1));
        let facs = vec![fac(1), late];
        let team = [
            Assignment {
                facilitator_id: 1,
                role: Role::Lead,
            },
            Assignment {
                facilitator_id: 1,
                role: Role::CoFacilitator,
            },
            Assignment {
                facilitator_id: 2,
                role: Role::CoFacilitator,
            },
            Assignment {
                facilitator_id: 8,
                role: Role::CoFacilitator,
            },
        ];
        let v: Vec<String> = check_team(&StaffingRules::default(), &cohort(1), &team, &facs)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            v,
            vec![
                "team has 4 facilitators, needs 2",
                "facilitator 1: listed more than once",
                "facilitator 8: not found",
                "facilitator 2: licence expires 2026-12-01, before the last session 2027-03-23",
            ]
        );
    }

    // --- optimisation ---

    #[test]
    fn staff_spreads_overlapping_cohorts_over_the_least_loaded() {
        let facs = vec![fac(1), nurse(2), fac(3), nurse(4)];
        let out = staff(&StaffingRules::default(), &[cohort(1), cohort(2)], &facs);
        assert_eq!(ids(&out[0]), vec![1, 2]);
        assert_eq!(ids(&out[1]), vec![3, 4], "1 and 2 already carry one cohort");
    }

    #[test]
    fn staff_prefers_the_previous_team_when_it_costs_no_load() {
        let facs = vec![fac(1), nurse(2), fac(3), nurse(4)];
        let mut c = cohort(1);
        c.previous_team = vec![3, 4];
        let s = &staff(&StaffingRules::default(), &[c.clone()], &facs)[0];
        assert_eq!(ids(s), vec![3, 4]);

        // ... but not at the price of a higher largest load.
        let mut busy = facs.clone();
        busy[2]
            .commitments
            .push(commitment(50, date(2027, 1, 1), date(2027, 2, 1)));
        let s = &staff(&StaffingRules::default(), &[c], &busy)[0];
        assert_eq!(ids(s), vec![1, 4]);
    }

    #[test]
    fn staff_keeps_more_of_the_previous_team_even_when_credentials_interlock() {
        // Teams of two must hold therapist, nurse and physician. {1, 4} has the
        // lowest ids but only one returning member; {2, 3} brings back two.
        let rules = StaffingRules {
            required_credentials: vec![
                Credential::Therapist,
                Credential::Nurse,
                Credential::Physician,
            ],
            ..StaffingRules::default()
        };
        let mut one = fac(1);
        one.credentials = vec![Credential::Therapist];
        let mut two = fac(2);
        two.credentials = vec![Credential::Nurse];
        let mut three = fac(3);
        three.credentials = vec![Credential::Therapist, Credential::Physician];
        let mut four = fac(4);
        four.credentials = vec![Credential::Nurse, Credential::Physician];
        let mut c = cohort(1);
        c.previous_team = vec![1, 2, 3];
        let s = &staff(&rules, &[c], &[one, two, three, four])[0];
        assert!(s.complete);
        assert_eq!(ids(s), vec![2, 3]);
        assert_eq!(lead_of(s), Some(3), "the therapist leads");
    }

    #[test]
    fn staff_processes_cohorts_by_first_session_and_returns_them_in_input_order() {
        let mut facs = vec![fac(1), nurse(2)];
        for f in &mut facs {
            f.max_active_cohorts = 1;
        }
        let late = cohort(1);
        let mut early = cohort(2);
        early.session_starts = weekly(Vancouver, date(2026, 12, 29), 18, 0, 12);
        let out = staff(&StaffingRules::default(), &[late, early], &facs);
        assert_eq!(out[0].cohort_id, 1);
        assert!(!out[0].complete);
        assert!(out[1].complete, "the earlier cohort is staffed first");
    }

    // --- gaps ---

    #[test]
    fn nobody_free_in_the_slot_is_a_gap_naming_the_slot() {
        let mut f = fac(1);
        f.availability = vec![window(Weekday::Mon, (9, 0), (17, 0))];
        let s = &staff(&StaffingRules::default(), &[cohort(1)], &[f])[0];
        assert!(!s.complete);
        assert!(s.team.is_empty());
        assert_eq!(
            s.gaps[0].to_string(),
            "no one available Tue 18:00–20:00 America/Vancouver"
        );
        assert!(s.gaps.contains(&Gap::TooFewFacilitators {
            needed: 2,
            found: 0
        }));
        assert_eq!(
            Gap::TooFewFacilitators {
                needed: 3,
                found: 2
            }
            .to_string(),
            "needs 3 facilitators, found 2 eligible"
        );
    }

    #[test]
    fn cohort_without_sessions_is_not_staffed() {
        let mut c = cohort(1);
        c.session_starts.clear();
        let s = &staff(&StaffingRules::default(), &[c], &[fac(1), nurse(2)])[0];
        assert_eq!(s.gaps, vec![Gap::NoSessions]);
        assert!(!s.complete);
    }

    #[test]
    fn staffing_serialises_roles_and_gaps_as_text() {
        let s = Staffing {
            cohort_id: 4,
            team: vec![
                Assignment {
                    facilitator_id: 1,
                    role: Role::Lead,
                },
                Assignment {
                    facilitator_id: 2,
                    role: Role::CoFacilitator,
                },
            ],
            complete: false,
            gaps: vec![Gap::MissingCredential(Credential::Nurse)],
        };
        let json = serde_json::to_value(&s).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({
                "cohort_id": 4,
                "team": [
                    {"facilitator_id": 1, "role": "lead"},
                    {"facilitator_id": 2, "role": "co_facilitator"}
                ],
                "complete": false,
                "gaps": ["missing credential nurse"]
            })
        );
    }

    #[test]
    fn irredundant_covers_are_complete_for_two_credentials() {
        let mut covers = irredundant_covers(2);
        covers.sort();
        assert_eq!(covers, vec![vec![], vec![1], vec![1, 2], vec![2], vec![3]]);
    }

    // --- properties, against brute force ---

    mod props {
        use super::*;
        use proptest::prelude::*;
        use std::cmp::Reverse;

        const ZONES: [Tz; 3] = [Vancouver, London, chrono_tz::UTC];

        fn subset<T: Copy>(all: &[T], bits: u32) -> Vec<T> {
            all.iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, &x)| x)
                .collect()
        }

        fn weekday(n: u32) -> Weekday {
            Weekday::try_from(u8::try_from(n % 7).expect("small")).expect("0..7")
        }

        fn windows() -> impl Strategy<Value = Vec<Availability>> {
            let one = (0u32..7, 0usize..6, 0usize..6).prop_map(|(d, s, e)| {
                let starts = [0, 0, 9, 17, 18, 2];
                let ends = [0, 0, 12, 20, 21, 4];
                Availability {
                    weekday: weekday(d),
                    start: time(starts[s], 0),
                    end: time(ends[e], 0),
                }
            });
            // Often free every day, so that a fair share of instances is staffable.
            let every_day: Vec<Availability> = (0..7)
                .map(|d| Availability {
                    weekday: weekday(d),
                    start: NaiveTime::MIN,
                    end: NaiveTime::MIN,
                })
                .collect();
            prop_oneof![Just(every_day), prop::collection::vec(one, 0..4),]
        }

        fn commitments(cohort_ids: i64) -> impl Strategy<Value = Vec<Commitment>> {
            let one =
                (100..100 + cohort_ids + 3, 0i64..150, 0i64..100).prop_map(|(id, from, len)| {
                    let first_on = date(2026, 12, 1) + Duration::days(from);
                    // Low ids are the cohorts being staffed: a commitment to one of them is ignored.
                    let cohort_id = if id >= 100 + 3 { id - 102 } else { id };
                    commitment(cohort_id, first_on, first_on + Duration::days(len))
                });
            prop::collection::vec(one, 0..4)
        }

        /// Each modality with probability 3/4.
        fn modalities() -> impl Strategy<Value = Vec<Modality>> {
            prop::collection::vec(prop::bool::weighted(0.75), 4).prop_map(|on| {
                Modality::ALL
                    .into_iter()
                    .zip(on)
                    .filter(|(_, on)| *on)
                    .map(|(m, _)| m)
                    .collect()
            })
        }

        fn facilitator(id: i64) -> impl Strategy<Value = FacilitatorProfile> {
            (
                (
                    0usize..3,
                    0u32..16,
                    modalities(),
                    prop::option::weighted(0.9, 40i64..120),
                ),
                (windows(), 0usize..4, prop::bool::weighted(0.9)),
                (prop::collection::vec(1i64..=40, 0..2), commitments(3)),
            )
                .prop_map(
                    move |(
                        (zone, creds, mods, licence),
                        (availability, max, active),
                        (excl, commitments),
                    )| {
                        FacilitatorProfile {
                            id,
                            timezone: ZONES[zone],
                            credentials: subset(&Credential::ALL, creds),
                            modalities: mods,
                            licence_expires_on: licence
                                .map(|d| date(2027, 1, 1) + Duration::days(d)),
                            availability,
                            max_active_cohorts: max,
                            active,
                            excluded_patients: excl,
                            commitments,
                        }
                    },
                )
        }

        fn facilitators() -> impl Strategy<Value = Vec<FacilitatorProfile>> {
            (0usize..=7).prop_flat_map(|n| (1..=n as i64).map(facilitator).collect::<Vec<_>>())
        }

        fn cohort_need(id: i64) -> impl Strategy<Value = CohortNeed> {
            (
                (
                    0usize..3,
                    0usize..4,
                    prop::collection::vec(1i64..=12, 1..10),
                ),
                (0i64..40, 0usize..4, 1u32..=4, prop::bool::ANY),
                prop::collection::vec(1i64..=7, 0..3),
            )
                .prop_map(
                    move |(
                        (zone, modality, members),
                        (offset, hour, count, long),
                        previous_team,
                    )| {
                        let tz = ZONES[zone];
                        CohortNeed {
                            id,
                            modality: Modality::ALL[modality],
                            members,
                            session_starts: weekly(
                                tz,
                                date(2027, 1, 4) + Duration::days(offset),
                                [9, 10, 18, 19][hour],
                                0,
                                count,
                            ),
                            duration_minutes: if long { 120 } else { 60 },
                            previous_team,
                            timezone: tz,
                        }
                    },
                )
        }

        fn rules() -> impl Strategy<Value = StaffingRules> {
            use Credential::*;
            let required = prop::sample::select(vec![
                vec![],
                vec![Therapist],
                vec![Therapist, Nurse],
                vec![Therapist, Nurse],
                vec![Therapist, Nurse, Physician],
                vec![Peer],
                vec![Therapist, Nurse, Physician, Peer],
            ]);
            (2usize..=6, required, 1usize..=3).prop_map(|(per, required_credentials, min_team)| {
                StaffingRules {
                    members_per_facilitator: per,
                    required_credentials,
                    min_team,
                }
            })
        }

        /// First and last session dates in the cohort's zone.
        fn local_range(c: &CohortNeed) -> (NaiveDate, NaiveDate) {
            let dates: Vec<NaiveDate> = c
                .session_starts
                .iter()
                .map(|s| s.with_timezone(&c.timezone).date_naive())
                .collect();
            (
                *dates.iter().min().expect("sessions"),
                *dates.iter().max().expect("sessions"),
            )
        }

        /// Load, the obvious way: most other cohorts active on any one day of the cohort.
        fn brute_load(f: &FacilitatorProfile, c: &CohortNeed) -> usize {
            let (first, last) = local_range(c);
            first
                .iter_days()
                .take_while(|d| *d <= last)
                .map(|d| {
                    f.commitments
                        .iter()
                        .filter(|k| k.cohort_id != c.id)
                        .filter(|k| {
                            k.first_on.min(k.last_on) <= d && d <= k.first_on.max(k.last_on)
                        })
                        .count()
                })
                .max()
                .unwrap_or(0)
        }

        type Key = (usize, Reverse<usize>, Vec<(bool, usize, i64)>);

        /// The objective of the module docs for one team.
        fn key(team: &[&FacilitatorProfile], c: &CohortNeed) -> Key {
            let mut members: Vec<(bool, usize, i64)> = team
                .iter()
                .map(|f| (!c.previous_team.contains(&f.id), brute_load(f, c), f.id))
                .collect();
            members.sort();
            let largest = members.iter().map(|m| m.1).max().unwrap_or(0);
            let previous = members.iter().filter(|m| !m.0).count();
            (largest, Reverse(previous), members)
        }

        /// The best key over every valid team, by trying every subset.
        fn brute_best(
            rules: &StaffingRules,
            c: &CohortNeed,
            facs: &[FacilitatorProfile],
        ) -> Option<Key> {
            let size = team_size(rules, c.members.len());
            (0u32..1 << facs.len())
                .filter(|bits| bits.count_ones() as usize == size)
                .filter_map(|bits| {
                    let team: Vec<&FacilitatorProfile> = (0..facs.len())
                        .filter(|i| bits & (1 << i) != 0)
                        .map(|i| &facs[i])
                        .collect();
                    let assignments: Vec<Assignment> = team
                        .iter()
                        .enumerate()
                        .map(|(n, f)| Assignment {
                            facilitator_id: f.id,
                            role: if n == 0 {
                                Role::Lead
                            } else {
                                Role::CoFacilitator
                            },
                        })
                        .collect();
                    check_team(rules, c, &assignments, facs)
                        .is_empty()
                        .then(|| key(&team, c))
                })
                .min()
        }

        fn cohorts() -> impl Strategy<Value = Vec<CohortNeed>> {
            (1i64..=3).prop_flat_map(|n| (1..=n).map(cohort_need).collect::<Vec<_>>())
        }

        proptest! {
            // Only about one instance in nine is staffable at all; enough cases that
            // the brute-force comparison sees several hundred complete teams per run.
            #![proptest_config(ProptestConfig::with_cases(4000))]

            #[test]
            fn single_cohort_matches_brute_force(
                rules in rules(),
                c in cohort_need(1),
                facs in facilitators(),
            ) {
                let s = &staff(&rules, std::slice::from_ref(&c), &facs)[0];
                let best = brute_best(&rules, &c, &facs);
                prop_assert_eq!(s.complete, best.is_some(), "{:?}", s);
                if let Some(best) = best {
                    let team: Vec<&FacilitatorProfile> = s
                        .team
                        .iter()
                        .filter_map(|a| facs.iter().find(|f| f.id == a.facilitator_id))
                        .collect();
                    let got = key(&team, &c);
                    prop_assert_eq!(got.0, best.0, "largest load is minimal");
                    prop_assert_eq!(got, best, "and the tie-breaks are optimal too");
                }
            }

            #[test]
            fn complete_teams_are_valid_and_gaps_explain_the_rest(
                rules in rules(),
                cs in cohorts(),
                facs in facilitators(),
            ) {
                let out = staff(&rules, &cs, &facs);
                prop_assert_eq!(out.len(), cs.len());
                for (s, c) in out.iter().zip(&cs) {
                    prop_assert_eq!(s.cohort_id, c.id);
                    prop_assert_eq!(s.gaps.is_empty(), s.complete);
                    prop_assert!(s.team.len() <= team_size(&rules, c.members.len()));
                    let mut ids: Vec<i64> = s.team.iter().map(|a| a.facilitator_id).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    prop_assert_eq!(ids.len(), s.team.len(), "no one twice");
                    let leads = s.team.iter().filter(|a| a.role == Role::Lead).count();
                    prop_assert_eq!(leads, usize::from(!s.team.is_empty()));
                    if !s.complete {
                        continue;
                    }
                    // Valid once everything else this call assigned is on the record too.
                    let mut world = facs.clone();
                    for (other, oc) in out.iter().zip(&cs) {
                        if other.cohort_id == c.id {
                            continue;
                        }
                        let (first_on, last_on) = local_range(oc);
                        for a in &other.team {
                            if let Some(f) = world.iter_mut().find(|f| f.id == a.facilitator_id) {
                                // Re-staffing a cohort replaces the record of staffing it.
                                f.commitments.retain(|k| k.cohort_id != oc.id);
                                f.commitments.push(commitment(oc.id, first_on, last_on));
                            }
                        }
                    }
                    let v = check_team(&rules, c, &s.team, &world);
                    prop_assert!(v.is_empty(), "{:?}", v);
                }
            }
        }
    }
}
