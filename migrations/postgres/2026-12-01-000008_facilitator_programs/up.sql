-- The facilitator pool is per program: a facilitator serves the programs listed here, a
-- lead sees and staffs only facilitators of their own programs (issue 17, item 1).
CREATE TABLE facilitator_programs (
    facilitator_id BIGINT NOT NULL REFERENCES facilitators (id) ON DELETE CASCADE,
    program_id BIGINT NOT NULL REFERENCES programs (id),
    PRIMARY KEY (facilitator_id, program_id)
);
CREATE INDEX facilitator_programs_program ON facilitator_programs (program_id);

-- Backfill, so that no existing team or staffing breaks: a facilitator serves every
-- program of a cohort they are on, or were on (a team change mailed to them names the
-- cohort's program in the outbox).
INSERT INTO facilitator_programs (facilitator_id, program_id)
SELECT DISTINCT cf.facilitator_id, c.program_id
FROM cohort_facilitators cf
JOIN cohorts c ON c.id = cf.cohort_id
UNION
SELECT DISTINCT o.recipient_id, o.program_id
FROM outbox o
JOIN facilitators f ON f.id = o.recipient_id
WHERE o.recipient_type = 'facilitator';

-- A facilitator who was never on any cohort serves every program that exists now, as
-- they could be staffed anywhere before this migration; an admin narrows the list.
INSERT INTO facilitator_programs (facilitator_id, program_id)
SELECT f.id, p.id
FROM facilitators f
CROSS JOIN programs p
WHERE NOT EXISTS (SELECT 1 FROM facilitator_programs fp WHERE fp.facilitator_id = f.id);
