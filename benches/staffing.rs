//! Automatic staffing at the scale of a busy multi-site year: 500 cohorts of 12
//! weekly sessions, 200 facilitators in three zones. Target: ≤ 200 ms per call.
//!
//! Data is pseudo-random from a fixed seed, so runs compare like with like.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use cohorts::domain::staffing::{
    staff, Availability, CohortNeed, Commitment, FacilitatorProfile, StaffingRules,
};
use cohorts::domain::{Credential, Modality};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const ZONES: [Tz; 3] = [
    chrono_tz::America::Vancouver,
    chrono_tz::America::Edmonton,
    chrono_tz::America::Toronto,
];
const SUBSTANCES: [Modality; 3] = [Modality::Psilocybin, Modality::Ketamine, Modality::Mdma];

/// splitmix64: tiny, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn time(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("valid time")
}

fn weekday(n: u64) -> Weekday {
    Weekday::try_from(u8::try_from(n % 7).expect("small")).expect("0..7")
}

fn facilitators(rng: &mut Rng, count: i64) -> Vec<FacilitatorProfile> {
    (1..=count)
        .map(|id| {
            let credentials = match rng.below(100) {
                0..=39 => vec![Credential::Therapist],
                40..=74 => vec![Credential::Nurse],
                75..=84 => vec![Credential::Therapist, Credential::Nurse],
                85..=92 => vec![Credential::Physician],
                _ => vec![Credential::Therapist, Credential::Peer],
            };
            let mut modalities: Vec<Modality> = SUBSTANCES
                .iter()
                .copied()
                .filter(|_| rng.chance(60))
                .collect();
            if modalities.is_empty() {
                modalities.push(rng.pick(&SUBSTANCES));
            }
            if rng.chance(20) {
                modalities.push(Modality::Mixed);
            }
            let availability = (0..2 + rng.below(3))
                .map(|_| {
                    let (start, end) = rng.pick(&[(9, 17), (12, 20), (16, 21), (17, 22), (8, 14)]);
                    Availability {
                        weekday: weekday(rng.below(7)),
                        start: time(start, 0),
                        end: time(end, 0),
                    }
                })
                .collect();
            let commitments = (0..rng.below(3))
                .map(|n| {
                    let first_on = date(2026, 10, 1) + Duration::days(rng.below(200) as i64);
                    Commitment {
                        cohort_id: 10_000 + id * 10 + n as i64,
                        first_on,
                        last_on: first_on + Duration::days(77),
                    }
                })
                .collect();
            FacilitatorProfile {
                id,
                timezone: rng.pick(&ZONES),
                credentials,
                modalities,
                licence_expires_on: (!rng.chance(3))
                    .then(|| date(2027, 6, 1) + Duration::days(rng.below(900) as i64)),
                availability,
                max_active_cohorts: 2 + rng.below(5) as usize,
                active: rng.chance(95),
                excluded_patients: (0..rng.below(3))
                    .map(|_| 1 + rng.below(5_000) as i64)
                    .collect(),
                commitments,
            }
        })
        .collect()
}

fn cohorts(rng: &mut Rng, count: i64, facilitators: i64) -> Vec<CohortNeed> {
    (1..=count)
        .map(|id| {
            let tz = rng.pick(&ZONES);
            // A Tuesday, Wednesday or Thursday somewhere in 2027.
            let first = date(2027, 1, 5)
                + Duration::weeks(rng.below(52) as i64)
                + Duration::days(rng.below(3) as i64);
            let (h, m) = rng.pick(&[(18, 0), (17, 30), (10, 0), (13, 0)]);
            let session_starts: Vec<DateTime<Utc>> = (0..12)
                .filter_map(|w| {
                    let day = first + Duration::weeks(w);
                    tz.from_local_datetime(&day.and_time(time(h, m)))
                        .earliest()
                        .map(|t| t.with_timezone(&Utc))
                })
                .collect();
            let previous_team = if rng.chance(30) {
                (0..2)
                    .map(|_| 1 + rng.below(facilitators as u64) as i64)
                    .collect()
            } else {
                Vec::new()
            };
            CohortNeed {
                id,
                modality: if rng.chance(10) {
                    Modality::Mixed
                } else {
                    rng.pick(&SUBSTANCES)
                },
                members: (0..4 + rng.below(9))
                    .map(|_| 1 + rng.below(5_000) as i64)
                    .collect(),
                session_starts,
                duration_minutes: 120,
                previous_team,
                timezone: tz,
            }
        })
        .collect()
}

fn bench_staffing(c: &mut Criterion) {
    let mut rng = Rng(0x5EED_C040_2025);
    let facs = facilitators(&mut rng, 200);
    let needs = cohorts(&mut rng, 500, 200);
    let rules = StaffingRules::default();

    let result = staff(&rules, &needs, &facs);
    let complete = result.iter().filter(|s| s.complete).count();
    eprintln!(
        "staffing: {complete} of {} cohorts fully staffed",
        result.len()
    );

    c.bench_function("staff 500 cohorts from 200 facilitators", |b| {
        b.iter(|| staff(black_box(&rules), black_box(&needs), black_box(&facs)))
    });
}

criterion_group!(benches, bench_staffing);
criterion_main!(benches);
