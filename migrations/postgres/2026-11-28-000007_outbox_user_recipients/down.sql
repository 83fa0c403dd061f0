-- Mail to users goes, with the recipient type.
DELETE FROM outbox WHERE recipient_type = 'user';
ALTER TABLE outbox DROP CONSTRAINT outbox_recipient_type_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_recipient_type_check
    CHECK (recipient_type IN ('patient', 'facilitator'));
