-- Attendance carries its session's cohort, so a program report counts each cohort's
-- records from one index in (cohort, member) order instead of sorting every record
-- joined through sessions. The composite key keeps the copy true: it must be the
-- session's own cohort. SQLite cannot add a NOT NULL foreign key, so the table is rebuilt.
CREATE UNIQUE INDEX sessions_id_cohort ON sessions (id, cohort_id);

CREATE TABLE attendance_rebuilt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id BIGINT NOT NULL REFERENCES sessions (id),
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    status TEXT NOT NULL CHECK (status IN ('present', 'late', 'left_early', 'absent', 'excused')),
    note TEXT,
    recorded_by BIGINT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    cohort_id BIGINT NOT NULL REFERENCES cohorts (id),
    UNIQUE (session_id, patient_id),
    FOREIGN KEY (session_id, cohort_id) REFERENCES sessions (id, cohort_id)
);
INSERT INTO attendance_rebuilt
    (id, session_id, patient_id, status, note, recorded_by, recorded_at, updated_at, cohort_id)
SELECT a.id, a.session_id, a.patient_id, a.status, a.note, a.recorded_by, a.recorded_at,
       a.updated_at, s.cohort_id
FROM attendance a JOIN sessions s ON s.id = a.session_id;
DROP TABLE attendance;
ALTER TABLE attendance_rebuilt RENAME TO attendance;
CREATE INDEX attendance_patient ON attendance (patient_id);
-- Covers the report's count: status and session ride along in the index.
CREATE INDEX attendance_cohort_member ON attendance (cohort_id, patient_id, status, session_id);
