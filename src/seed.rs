//! `cohorts seed-demo`: a realistic program for a first look, and (`--large`) a
//! benchmark-sized one for the attendance report.

use crate::db::models::attendance as records;
use crate::db::models::cohort::{self as cohorts, NewCohort, NewMember, NewSession};
use crate::db::models::facilitator::{self as facilitators, FacilitatorFields};
use crate::db::models::patient::{self as patients, NewDosing, NewPatient};
use crate::db::models::program::{self, ProgramFields};
use crate::db::models::user::{self as users, Role};
use crate::db::schema;
use crate::db::{write_transaction, DbConnection};
use crate::domain::attendance::AttendanceStatus;
use crate::domain::program::ProgramRules;
use crate::domain::status::{CohortKind, CohortStatus, MemberStatus, SessionStatus};
use crate::domain::Modality;
use crate::error::{AppError, AppResult};
use crate::service::attendance as consequences;
use crate::service::formation::create_cohort;
use crate::service::staffing as staffing_io;
use crate::service::ProgramContext;
use crate::types::EmailAddress;
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

/// Sign-in details printed once, for the people trying the demo.
pub struct DemoAccount {
    pub role: &'static str,
    pub email: String,
    pub password: String,
}

pub struct SeedReport {
    pub program_id: i64,
    pub accounts: Vec<DemoAccount>,
    pub large_program_id: Option<i64>,
    pub attendance_records: usize,
}

const FIRST: [&str; 24] = [
    "Ana", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Isla", "Jonah", "Kiri",
    "Liam", "Maya", "Noor", "Owen", "Priya", "Quinn", "Rosa", "Sami", "Tessa", "Uma", "Victor",
    "Wren", "Yusuf",
];
const LAST: [&str; 12] = [
    "Alvarez",
    "Brooks",
    "Chen",
    "Dubois",
    "Eriksen",
    "Fontaine",
    "Gill",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lindqvist",
];

fn person(n: usize) -> String {
    format!(
        "{} {}",
        FIRST[n % FIRST.len()],
        LAST[(n / FIRST.len() + n) % LAST.len()]
    )
}

fn password() -> String {
    crate::service::auth::new_token()
        .trim_start_matches("coh_")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect()
}

/// Fills an empty database. Refuses when any program exists.
pub fn seed(conn: &mut DbConnection, large: bool) -> AppResult<SeedReport> {
    if !program::list(conn, None)?.is_empty() {
        return Err(AppError::conflict(
            "the database already has programs; seed-demo only fills an empty database",
        ));
    }
    let mut report = write_transaction(conn, demo)?;
    if large {
        let (id, count) = write_transaction(conn, large_program)?;
        report.large_program_id = Some(id);
        report.attendance_records += count;
        // A bulk load leaves the planners blind until statistics exist. On PostgreSQL
        // autovacuum would get there eventually, after the first reports planned badly
        // and while the next ones run; VACUUM also marks the new pages all-visible.
        let after_bulk_load = match conn {
            DbConnection::Postgres(_) => "VACUUM ANALYZE",
            DbConnection::Sqlite(_) => "ANALYZE",
        };
        diesel::sql_query(after_bulk_load).execute(conn)?;
    }
    Ok(report)
}

fn facilitator_fields(name: &str, n: usize, credential: &str) -> FacilitatorFields {
    FacilitatorFields {
        name: name.into(),
        email: format!("facilitator{n}@demo.example"),
        timezone: "America/Vancouver".into(),
        credentials: format!("[\"{credential}\"]"),
        modalities: "[\"ketamine\",\"psilocybin\"]".into(),
        licence_expires_on: NaiveDate::from_ymd_opt(2031, 6, 30),
        availability: "[{\"weekday\":\"tue\",\"start\":\"16:00\",\"end\":\"22:00\"}]".into(),
        max_active_cohorts: 3,
        active: true,
    }
}

fn new_patient(program_id: i64, n: usize, status: &str, now: NaiveDateTime) -> NewPatient {
    NewPatient {
        program_id,
        name: person(n),
        email: format!("patient{n}@demo.example"),
        timezone: None,
        email_consent: true,
        consent_changed_at: Some(now),
        status: status.into(),
        created_at: now,
        updated_at: now,
    }
}

/// Patients with a dosing `days_ago` each; returns their ids.
fn patients_dosed(
    conn: &mut DbConnection,
    program: &ProgramContext,
    first_n: usize,
    days_ago: &[i64],
    now: NaiveDateTime,
) -> AppResult<Vec<i64>> {
    let mut ids = Vec::new();
    for (offset, days) in days_ago.iter().enumerate() {
        let id = patients::insert(
            conn,
            &new_patient(program.id, first_n + offset, "awaiting_cohort", now),
        )?;
        patients::insert_dosing(
            conn,
            &NewDosing {
                patient_id: id,
                dosed_at: now - Duration::days(*days) - Duration::hours(offset as i64 % 5),
                utc_offset_minutes: -480,
                modality: Modality::Ketamine.as_str().into(),
                created_at: now,
            },
        )?;
        ids.push(id);
    }
    Ok(ids)
}

/// The program's weekday on or before `date`.
fn slot_on_or_before(program: &ProgramContext, date: NaiveDate) -> NaiveDate {
    let target = program.rules.schedule.weekday.0.num_days_from_monday() as i64;
    let today = date.weekday().num_days_from_monday() as i64;
    date - Duration::days((today - target).rem_euclid(7))
}

fn set_cohort_status(conn: &mut DbConnection, id: i64, status: CohortStatus) -> AppResult<()> {
    use schema::cohorts::dsl;
    diesel::update(dsl::cohorts.find(id))
        .set(dsl::status.eq(status))
        .execute(conn)?;
    Ok(())
}

fn auto_staff(
    conn: &mut DbConnection,
    program: &ProgramContext,
    id: i64,
    now: NaiveDateTime,
) -> AppResult<()> {
    let cohort = cohorts::find(conn, id)?;
    staffing_io::auto_staff(conn, program, &cohort, None, now)?;
    Ok(())
}

/// Marks every started session of a cohort; `pattern(member index, session seq)` gives
/// the status (None: leave unrecorded).
fn take_attendance(
    conn: &mut DbConnection,
    program: &ProgramContext,
    cohort_id: i64,
    recorder: i64,
    now: NaiveDateTime,
    pattern: impl Fn(usize, i32) -> Option<AttendanceStatus>,
) -> AppResult<usize> {
    let members = cohorts::active_member_ids(conn, cohort_id)?;
    let mut written = 0;
    for session in cohorts::sessions_of(conn, &[cohort_id])? {
        if session.starts_at > now {
            continue;
        }
        let at = session.starts_at + Duration::minutes(150);
        let marks: Vec<records::NewRecord> = members
            .iter()
            .enumerate()
            .filter_map(|(index, patient)| {
                Some(records::NewRecord {
                    cohort_id,
                    session_id: session.id,
                    patient_id: *patient,
                    status: pattern(index, session.seq)?,
                    note: None,
                    recorded_by: recorder,
                    recorded_at: at,
                    updated_at: at,
                })
            })
            .collect();
        if !marks.is_empty() {
            written += records::insert(conn, &marks)?;
            cohorts::set_session_status(conn, session.id, SessionStatus::Held, now)?;
        }
    }
    let cohort = cohorts::find(conn, cohort_id)?;
    consequences::open_follow_ups(conn, program, &cohort, &members, now)?;
    Ok(written)
}

fn demo(conn: &mut DbConnection) -> AppResult<SeedReport> {
    let now = crate::db::now();
    let rules = serde_json::to_string(&ProgramRules::default())
        .map_err(|e| anyhow::anyhow!("default rules: {e}"))?;
    let program_id = program::insert(
        conn,
        &ProgramFields {
            name: "Evening Integration Circle".into(),
            site: "Nanaimo".into(),
            timezone: "America/Vancouver".into(),
            modality: "ketamine".into(),
            venue: None,
            join_url: Some("https://meet.example.org/evening-circle".into()),
            rules,
        },
        now,
    )?;
    let program =
        crate::service::cohorts::program_context(conn, crate::domain::ids::ProgramId(program_id))?;
    let team = [
        ("Robin Okafor", "therapist"),
        ("Sam Whitfield", "nurse"),
        ("Alex Moreau", "therapist"),
        ("Jordan Pike", "nurse"),
        ("Casey Tran", "therapist"),
        ("Morgan Reyes", "peer"),
    ];
    let mut staff_ids = Vec::new();
    for (n, (name, credential)) in team.iter().enumerate() {
        let id = facilitators::insert(conn, &facilitator_fields(name, n + 1, credential), now)?;
        facilitators::set_programs(conn, id, &[program_id])?;
        staff_ids.push(id);
    }

    let accounts = vec![
        DemoAccount {
            role: "program lead",
            email: "lead@demo.example".into(),
            password: password(),
        },
        DemoAccount {
            role: "facilitator",
            email: "facilitator@demo.example".into(),
            password: password(),
        },
    ];
    let mut user_ids = Vec::new();
    for (account, (role, facilitator)) in accounts.iter().zip([
        (Role::ProgramLead, None),
        (Role::Facilitator, staff_ids.first().copied()),
    ]) {
        // Inside this transaction, so written directly (create_user opens its own).
        let email = EmailAddress::parse(&account.email).map_err(|e| anyhow::anyhow!(e))?;
        if users::find_by_email(conn, email.as_str())?.is_some() {
            return Err(AppError::conflict(format!("{email} already exists")));
        }
        let hash = crate::service::auth::hash_password(&account.password)?;
        let id = users::insert(
            conn,
            &users::NewUser {
                email: email.as_str(),
                name: if role == Role::ProgramLead {
                    "Dana Lead"
                } else {
                    team[0].0
                },
                role: role.as_str(),
                password_hash: &hash,
                facilitator_id: facilitator,
                failed_logins: 0,
                created_at: now,
            },
        )?;
        users::add_programs(conn, id, &[program_id])?;
        user_ids.push(id);
    }
    let recorder = user_ids.last().copied().unwrap_or_default();

    let today = program.today(Utc::now());
    let last_slot = slot_on_or_before(&program, today - Duration::days(1));
    let mut n = 0;
    let mut group = |conn: &mut DbConnection,
                     size: usize,
                     dosed_days_ago: i64,
                     first: NaiveDate|
     -> AppResult<i64> {
        let days: Vec<i64> = (0..size as i64).map(|k| dosed_days_ago + k % 6).collect();
        let members = patients_dosed(conn, &program, n, &days, now)?;
        n += size;
        let starts = program.integration_sessions(first);
        let id = create_cohort(
            conn,
            &program,
            Modality::Ketamine,
            &members,
            &starts,
            None,
            now,
        )?;
        auto_staff(conn, &program, id, now)?;
        Ok(id)
    };

    // Completed: all twelve sessions behind us.
    let completed_first = last_slot - Duration::weeks(15);
    let completed = group(conn, 7, 15 * 7 + 10, completed_first)?;
    // Active, six sessions in, with an absence streak (outreach) and an at-risk member.
    let active = group(conn, 8, 6 * 7 + 8, last_slot - Duration::weeks(5))?;
    // Active, three sessions in; the latest still waits for its attendance.
    let recent = group(conn, 6, 3 * 7 + 6, last_slot - Duration::weeks(2))?;
    // Forming and full: first session next week.
    group(
        conn,
        12,
        5,
        slot_on_or_before(&program, today + Duration::days(13)),
    )?;
    // Cancelled before it began.
    let cancelled = group(
        conn,
        4,
        30,
        slot_on_or_before(&program, today + Duration::days(20)),
    )?;
    crate::db::models::cohort::activate_started(conn, now)?;

    let mut written = take_attendance(conn, &program, completed, recorder, now, |m, seq| {
        Some(match (m, seq) {
            (2, 5 | 6) => AttendanceStatus::Absent,
            (4, 9) => AttendanceStatus::Excused,
            (_, s) if s % 5 == 0 && m % 3 == 1 => AttendanceStatus::Late,
            _ => AttendanceStatus::Present,
        })
    })?;
    written += take_attendance(conn, &program, active, recorder, now, |m, seq| {
        Some(match (m, seq) {
            (1, 5 | 6) => AttendanceStatus::Absent,
            (3, 3..=6) => AttendanceStatus::Absent,
            (5, 2) => AttendanceStatus::LeftEarly,
            (6, 4) => AttendanceStatus::Excused,
            (_, 1) if m == 7 => AttendanceStatus::Late,
            _ => AttendanceStatus::Present,
        })
    })?;
    written += take_attendance(conn, &program, recent, recorder, now, |m, seq| {
        // The newest session stays unrecorded: it shows up as "still to take".
        match (m, seq) {
            (_, 3) => None,
            (2, 2) => Some(AttendanceStatus::Absent),
            _ => Some(AttendanceStatus::Present),
        }
    })?;
    set_cohort_status(conn, completed, CohortStatus::Completed)?;
    {
        use schema::cohort_members::dsl as m;
        diesel::update(m::cohort_members.filter(m::cohort_id.eq(completed)))
            .set(m::status.eq(MemberStatus::Completed))
            .execute(conn)?;
    }
    let done: Vec<i64> = cohorts::members(conn, completed)?
        .iter()
        .map(|m| m.patient_id)
        .collect();
    patients::set_status(conn, &done, "completed", now)?;
    for member in cohorts::active_member_ids(conn, cancelled)? {
        cohorts::withdraw_member(conn, cancelled, member, "cohort cancelled", now)?;
        patients::set_status(conn, &[member], "withdrawn", now)?;
    }
    for session in cohorts::sessions_of(conn, &[cancelled])? {
        cohorts::set_session_status(conn, session.id, SessionStatus::Cancelled, now)?;
    }
    set_cohort_status(conn, cancelled, CohortStatus::Cancelled)?;

    // The waitlist: six who can form a cohort now, two near or past the maximum wait.
    patients_dosed(conn, &program, 200, &[3, 4, 5, 6, 8, 9], now)?;
    patients_dosed(conn, &program, 210, &[16, 23], now)?;

    Ok(SeedReport {
        program_id,
        accounts,
        large_program_id: None,
        attendance_records: written,
    })
}

pub const LARGE_COHORTS: usize = 1_000;
pub const LARGE_SESSIONS: usize = 12;
pub const LARGE_MEMBERS: usize = 10;

/// 1,000 completed cohorts × 12 held sessions × 10 members, with attendance for every
/// member at every session, in batched inserts. Returns (program id, records written).
fn large_program(conn: &mut DbConnection) -> AppResult<(i64, usize)> {
    let now = crate::db::now();
    let rules = serde_json::to_string(&ProgramRules::default())
        .map_err(|e| anyhow::anyhow!("default rules: {e}"))?;
    let program_id = program::insert(
        conn,
        &ProgramFields {
            name: "Benchmark program".into(),
            site: "Load test".into(),
            timezone: "America/Vancouver".into(),
            modality: "ketamine".into(),
            venue: Some("Room 1".into()),
            join_url: None,
            rules,
        },
        now,
    )?;
    let program =
        crate::service::cohorts::program_context(conn, crate::domain::ids::ProgramId(program_id))?;
    let recorder = crate::db::models::user::list(conn)?
        .first()
        .map(|u| u.id)
        .ok_or_else(|| anyhow::anyhow!("no user to attribute the records to"))?;
    let people = LARGE_COHORTS * LARGE_MEMBERS;
    let rows: Vec<NewPatient> = (0..people)
        .map(|n| {
            let mut p = new_patient(program_id, n, "completed", now);
            p.email = format!("bench{n}@load.example");
            p
        })
        .collect();
    patients::insert_many(conn, &rows)?;
    let patient_ids: Vec<i64> = patients::page(conn, program_id, None, None, people as i64)?
        .iter()
        .map(|p| p.id)
        .collect();
    let today = program.today(Utc::now());
    let mut cohort_ids = Vec::with_capacity(LARGE_COHORTS);
    let mut sessions = Vec::with_capacity(LARGE_COHORTS * LARGE_SESSIONS);
    let mut members = Vec::with_capacity(people);
    for c in 0..LARGE_COHORTS {
        let id = cohorts::insert(
            conn,
            &NewCohort {
                program_id,
                kind: CohortKind::Integration,
                modality: "ketamine".into(),
                status: CohortStatus::Completed,
                venue: None,
                join_url: None,
                staffing_gaps: "[]".into(),
                override_reason: None,
                created_at: now,
                updated_at: now,
            },
        )?;
        cohort_ids.push(id);
        let first = slot_on_or_before(&program, today - Duration::weeks(14 + (c % 200) as i64));
        for (seq, starts) in program
            .integration_sessions(first)
            .iter()
            .take(LARGE_SESSIONS)
            .enumerate()
        {
            sessions.push(NewSession {
                cohort_id: id,
                seq: seq as i32 + 1,
                starts_at: starts.naive_utc(),
                duration_minutes: 120,
                status: SessionStatus::Held,
                ics_sequence: 0,
                created_at: now,
                updated_at: now,
            });
        }
        for m in 0..LARGE_MEMBERS {
            if let Some(patient_id) = patient_ids.get(c * LARGE_MEMBERS + m) {
                members.push(NewMember {
                    cohort_id: id,
                    patient_id: *patient_id,
                    status: MemberStatus::Completed,
                    joined_at: now,
                });
            }
        }
    }
    cohorts::insert_sessions(conn, &sessions)?;
    cohorts::insert_members(conn, &members)?;
    let stored = cohorts::sessions_of(conn, &cohort_ids)?;
    let mut by_cohort: std::collections::HashMap<i64, Vec<i64>> = Default::default();
    for member in &members {
        by_cohort
            .entry(member.cohort_id)
            .or_default()
            .push(member.patient_id);
    }
    // A small deterministic generator: most attend, some are late, absent or excused.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut marks = Vec::new();
    for session in &stored {
        for patient_id in by_cohort
            .get(&session.cohort_id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let status = match state % 100 {
                0..=79 => AttendanceStatus::Present,
                80..=85 => AttendanceStatus::Late,
                86..=88 => AttendanceStatus::LeftEarly,
                89..=95 => AttendanceStatus::Absent,
                _ => AttendanceStatus::Excused,
            };
            marks.push(records::NewRecord {
                cohort_id: session.cohort_id,
                session_id: session.id,
                patient_id: *patient_id,
                status,
                note: None,
                recorded_by: recorder,
                recorded_at: session.starts_at + Duration::hours(3),
                updated_at: session.starts_at + Duration::hours(3),
            });
        }
    }
    // `insert` writes in batches of 1,000.
    let written = records::insert(conn, &marks)?;
    Ok((program_id, written))
}
