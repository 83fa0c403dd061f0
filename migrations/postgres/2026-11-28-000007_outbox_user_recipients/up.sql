-- Mail to staff users (program leads hear of escalated follow-ups): the outbox accepts
-- recipient type 'user'.
ALTER TABLE outbox DROP CONSTRAINT outbox_recipient_type_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_recipient_type_check
    CHECK (recipient_type IN ('patient', 'facilitator', 'user'));
