DROP TABLE facilitator_programs;
