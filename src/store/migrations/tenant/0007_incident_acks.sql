-- Incidents (declared in control.db) an owner or admin of this workspace
-- acknowledged: the banner is gone for it from then on. Ids and times only.
CREATE TABLE incident_acks (
    incident_id TEXT PRIMARY KEY,
    acknowledged_at INTEGER NOT NULL,
    acknowledged_by TEXT NOT NULL
) STRICT;
