-- Attendance carries its session's cohort, so a program report counts each cohort's
-- records by (cohort, member) without going through sessions first. The composite key
-- keeps the copy true: it must be the session's own cohort.
ALTER TABLE sessions ADD CONSTRAINT sessions_id_cohort UNIQUE (id, cohort_id);
ALTER TABLE attendance ADD COLUMN cohort_id BIGINT REFERENCES cohorts (id);
UPDATE attendance a SET cohort_id = s.cohort_id FROM sessions s WHERE s.id = a.session_id;
ALTER TABLE attendance ALTER COLUMN cohort_id SET NOT NULL;
ALTER TABLE attendance ADD CONSTRAINT attendance_session_cohort
    FOREIGN KEY (session_id, cohort_id) REFERENCES sessions (id, cohort_id);
CREATE INDEX attendance_cohort_member ON attendance (cohort_id, patient_id, status, session_id);
