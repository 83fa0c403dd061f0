DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
DROP TABLE api_tokens;
DROP TABLE user_programs;
DROP TABLE users;
DROP TABLE programs;
