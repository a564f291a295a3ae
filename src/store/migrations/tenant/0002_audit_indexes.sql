-- Filters of the audit search that do not need the full-text index.
CREATE INDEX audit_log_by_action ON audit_log(action);
CREATE INDEX audit_log_by_actor ON audit_log(actor_id);
CREATE INDEX audit_log_by_target ON audit_log(target_id);
CREATE INDEX audit_log_by_time ON audit_log(time);
CREATE INDEX audit_log_by_ip ON audit_log(ip);
