CREATE TABLE attendance (
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
CREATE INDEX attendance_patient ON attendance (patient_id);

-- Two absences in a row open an outreach task; four flag the member at risk. A streak
-- is identified by its first absent session, so one streak opens each kind once.
CREATE TABLE follow_ups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cohort_id BIGINT NOT NULL REFERENCES cohorts (id),
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    kind TEXT NOT NULL CHECK (kind IN ('outreach', 'at_risk')),
    status TEXT NOT NULL CHECK (status IN ('open', 'acknowledged')),
    streak_start_session_id BIGINT NOT NULL REFERENCES sessions (id),
    consecutive_absences INTEGER NOT NULL,
    opened_at TIMESTAMP NOT NULL,
    escalated_at TIMESTAMP,
    acknowledged_at TIMESTAMP,
    acknowledged_by BIGINT,
    note TEXT,
    UNIQUE (cohort_id, patient_id, kind, streak_start_session_id)
);
CREATE INDEX follow_ups_status ON follow_ups (status, opened_at);
CREATE INDEX follow_ups_cohort ON follow_ups (cohort_id);
