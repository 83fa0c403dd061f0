DROP TABLE rsvps;
DROP TABLE outbox;
