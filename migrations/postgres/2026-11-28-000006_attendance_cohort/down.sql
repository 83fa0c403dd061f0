DROP INDEX attendance_cohort_member;
ALTER TABLE attendance DROP CONSTRAINT attendance_session_cohort;
ALTER TABLE attendance DROP COLUMN cohort_id;
ALTER TABLE sessions DROP CONSTRAINT sessions_id_cohort;
