CREATE TABLE facilitators (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    timezone TEXT NOT NULL,
    credentials TEXT NOT NULL,
    modalities TEXT NOT NULL,
    licence_expires_on DATE,
    availability TEXT NOT NULL,
    max_active_cohorts INTEGER NOT NULL,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE patients (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    program_id BIGINT NOT NULL REFERENCES programs (id),
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    timezone TEXT,
    email_consent BOOLEAN NOT NULL,
    consent_changed_at TIMESTAMP,
    status TEXT NOT NULL CHECK (status IN ('awaiting_dosing', 'awaiting_cohort', 'in_cohort', 'completed', 'withdrawn', 'peer_support')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (program_id, email)
);
CREATE INDEX patients_program_status ON patients (program_id, status, id);

-- Consent is evidence: every grant and withdrawal is kept with its time.
CREATE TABLE consent_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    email_consent BOOLEAN NOT NULL,
    source TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX consent_events_patient ON consent_events (patient_id, id);

CREATE TABLE dosings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    dosed_at TIMESTAMP NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    modality TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX dosings_patient ON dosings (patient_id, dosed_at);

-- A patient pair is stored once, lower id first; a facilitator exclusion has no pair.
CREATE TABLE exclusions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    program_id BIGINT NOT NULL REFERENCES programs (id),
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    other_patient_id BIGINT REFERENCES patients (id),
    facilitator_id BIGINT REFERENCES facilitators (id),
    note TEXT,
    created_at TIMESTAMP NOT NULL,
    CHECK ((other_patient_id IS NULL) <> (facilitator_id IS NULL)),
    CHECK (other_patient_id IS NULL OR patient_id < other_patient_id)
);
CREATE UNIQUE INDEX exclusions_patient_pair ON exclusions (patient_id, other_patient_id) WHERE other_patient_id IS NOT NULL;
CREATE UNIQUE INDEX exclusions_patient_facilitator ON exclusions (patient_id, facilitator_id) WHERE facilitator_id IS NOT NULL;
CREATE INDEX exclusions_other ON exclusions (other_patient_id);
CREATE INDEX exclusions_program ON exclusions (program_id);

CREATE TABLE cohorts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    program_id BIGINT NOT NULL REFERENCES programs (id),
    kind TEXT NOT NULL CHECK (kind IN ('integration', 'peer_support')),
    modality TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('forming', 'active', 'completed', 'cancelled')),
    venue TEXT,
    join_url TEXT,
    staffing_gaps TEXT NOT NULL,
    override_reason TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX cohorts_program ON cohorts (program_id, status);

CREATE TABLE cohort_members (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cohort_id BIGINT NOT NULL REFERENCES cohorts (id),
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    status TEXT NOT NULL CHECK (status IN ('active', 'withdrawn', 'completed')),
    joined_at TIMESTAMP NOT NULL,
    left_at TIMESTAMP,
    leave_reason TEXT
);
-- The database itself guarantees nobody is placed in two cohorts at once, whatever races.
CREATE UNIQUE INDEX cohort_members_one_active ON cohort_members (patient_id) WHERE status = 'active';
CREATE INDEX cohort_members_cohort ON cohort_members (cohort_id);

CREATE TABLE cohort_facilitators (
    cohort_id BIGINT NOT NULL REFERENCES cohorts (id),
    facilitator_id BIGINT NOT NULL REFERENCES facilitators (id),
    role TEXT NOT NULL CHECK (role IN ('lead', 'co_facilitator')),
    assigned_at TIMESTAMP NOT NULL,
    PRIMARY KEY (cohort_id, facilitator_id)
);
CREATE INDEX cohort_facilitators_facilitator ON cohort_facilitators (facilitator_id);

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cohort_id BIGINT NOT NULL REFERENCES cohorts (id),
    seq INTEGER NOT NULL,
    starts_at TIMESTAMP NOT NULL,
    duration_minutes INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'held', 'cancelled', 'did_not_take_place')),
    ics_sequence INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (cohort_id, seq)
);
CREATE INDEX sessions_starts_at ON sessions (starts_at);
