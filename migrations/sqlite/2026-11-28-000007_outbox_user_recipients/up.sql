-- Mail to staff users (program leads hear of escalated follow-ups): the outbox accepts
-- recipient type 'user'. SQLite cannot change a CHECK constraint, so the table is
-- rebuilt with the same columns, keys and indexes.
CREATE TABLE outbox_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    recipient_type TEXT NOT NULL CHECK (recipient_type IN ('patient', 'facilitator', 'user')),
    recipient_id BIGINT NOT NULL,
    offset_hours INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    program_id BIGINT NOT NULL REFERENCES programs (id),
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
    due_at TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    message_id TEXT NOT NULL UNIQUE,
    claimed_by TEXT,
    claimed_at TIMESTAMP,
    sent_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (kind, entity_type, entity_id, recipient_type, recipient_id, offset_hours, revision)
);
INSERT INTO outbox_new SELECT * FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (recipient_type, recipient_id, status);
CREATE INDEX outbox_program ON outbox (program_id, status, id);
