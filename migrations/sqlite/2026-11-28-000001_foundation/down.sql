DROP TABLE audit_log;
DROP TABLE api_tokens;
DROP TABLE user_programs;
DROP TABLE users;
DROP TABLE programs;
