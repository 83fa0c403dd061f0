//! The one aggregate the pages need that the API has no query for: attendance rate by
//! session number across a program's cohorts (same counting as the API's tallies).

use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Timestamp};

#[derive(Debug, Clone, QueryableByName)]
pub struct SeqRate {
    #[diesel(sql_type = Integer)]
    pub seq: i32,
    #[diesel(sql_type = BigInt)]
    pub held: i64,
    #[diesel(sql_type = BigInt)]
    pub attended: i64,
}

const SEQ_SQL: &str = "
SELECT s.seq AS seq,
       SUM(CASE WHEN s.status = 'held' THEN 1 ELSE 0 END) AS held,
       SUM(CASE WHEN s.status = 'held' AND a.status IN ('present', 'late', 'left_early') THEN 1 ELSE 0 END) AS attended
FROM cohorts c
JOIN cohort_members m ON m.cohort_id = c.id
JOIN sessions s ON s.cohort_id = c.id
LEFT JOIN attendance a ON a.session_id = s.id AND a.patient_id = m.patient_id
WHERE c.program_id = $1 AND s.starts_at >= $2 AND s.starts_at < $3
GROUP BY s.seq
ORDER BY s.seq";

/// Per session number (1st, 2nd, … session of each cohort), sessions starting in `[from, to)`.
pub fn rates_by_session_number(
    conn: &mut DbConnection,
    program_id: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<SeqRate>> {
    match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(SEQ_SQL.replace('$', "?"))
            .bind::<BigInt, _>(program_id)
            .bind::<Timestamp, _>(from)
            .bind::<Timestamp, _>(to)
            .load(c),
        DbConnection::Postgres(c) => diesel::sql_query(SEQ_SQL)
            .bind::<BigInt, _>(program_id)
            .bind::<Timestamp, _>(from)
            .bind::<Timestamp, _>(to)
            .load(c),
    }
}
