-- One invitation per completer per completed cohort; the answer is fresh consent.
CREATE TABLE peer_invitations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    patient_id BIGINT NOT NULL REFERENCES patients (id),
    cohort_id BIGINT NOT NULL REFERENCES cohorts (id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'declined')),
    circle_id BIGINT REFERENCES cohorts (id),
    created_at TIMESTAMP NOT NULL,
    responded_at TIMESTAMP,
    UNIQUE (patient_id, cohort_id)
);
