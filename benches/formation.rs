//! Cohort formation at waitlist sizes of 1,000, 10,000 and 100,000, beside the cost of
//! merely sorting the same (date, id) pairs: formation must stay within a small factor of
//! that sort (the DP after sorting is linear), which this comparison makes visible.
//!
//! Run with `cargo bench --bench formation`.

use chrono::{NaiveDate, TimeDelta};
use cohorts::domain::formation::{plan, Exclusions, FormationRules, WaitingPatient};
use cohorts::domain::Modality;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid start date")
}

/// Deterministic pseudo-random waitlist: dosing dates spread over two years, ids
/// shuffled relative to dates, one modality.
fn waitlist(n: usize) -> Vec<WaitingPatient> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*: cheap, stable across platforms and runs.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    (0..n)
        .map(|i| WaitingPatient {
            id: i as i64 + 1,
            dosed_on: start() + TimeDelta::days((next() % 730) as i64),
            modality: Modality::Ketamine,
        })
        .collect()
}

fn bench_formation(c: &mut Criterion) {
    // DESIGN.md defaults: min 4, max 12, window 14, max wait 21, 1 day after dosing,
    // 2 days notice, Tuesdays. Today is the first dosing day, so every patient can still
    // be placed and the DP does its full work.
    let rules = FormationRules::default();
    let today = start();
    let none = Exclusions::default();

    let mut group = c.benchmark_group("plan");
    for n in SIZES {
        let waiting = waitlist(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &waiting, |b, w| {
            b.iter(|| plan(&rules, today, &[], black_box(w), &none))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("sort_dates");
    for n in SIZES {
        let pairs: Vec<(NaiveDate, i64)> = waitlist(n).iter().map(|w| (w.dosed_on, w.id)).collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &pairs, |b, p| {
            b.iter(|| {
                let mut v = black_box(p).clone();
                v.sort_unstable();
                v
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_formation);
criterion_main!(benches);
