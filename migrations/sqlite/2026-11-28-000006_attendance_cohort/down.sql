CREATE TABLE attendance_rebuilt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id BIGINT NOT NULL REFERENCES sessions (id),
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    status TEXT NOT NULL CHECK (status IN ('present', 'late', 'left_early', 'absent', 'excused')),
    note TEXT,
    recorded_by BIGINT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (session_id, patient_id)
);
INSERT INTO attendance_rebuilt
    (id, session_id, patient_id, status, note, recorded_by, recorded_at, updated_at)
SELECT id, session_id, patient_id, status, note, recorded_by, recorded_at, updated_at
FROM attendance;
DROP TABLE attendance;
ALTER TABLE attendance_rebuilt RENAME TO attendance;
CREATE INDEX attendance_patient ON attendance (patient_id);
DROP INDEX sessions_id_cohort;
