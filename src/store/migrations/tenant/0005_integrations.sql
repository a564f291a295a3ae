-- Integrations: stored secrets, outbound webhook endpoints with their
-- deliveries, inbound integrations with the events they received. Names,
-- values, URLs, payloads and bodies are sealed under the workspace key; what
-- stays in the clear is ids, times, counters, event types (a fixed
-- vocabulary), status codes and error categories Aura itself words.

CREATE TABLE integration_secrets (
    id TEXT PRIMARY KEY,
    name_ct BLOB NOT NULL,
    value_ct BLOB NOT NULL,
    last4_ct BLOB NOT NULL,
    -- the value before the last rotation, accepted until previous_until
    previous_ct BLOB,
    previous_until INTEGER,
    created_at INTEGER NOT NULL,
    rotated_at INTEGER,
    last_used_at INTEGER
) STRICT;

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url_ct BLOB NOT NULL,
    -- comma-separated event types
    events TEXT NOT NULL,
    secret_ct BLOB NOT NULL,
    previous_ct BLOB,
    previous_until INTEGER,
    created_at INTEGER NOT NULL
) STRICT;

-- One message to one endpoint. A manual redeliver is a new row with the same
-- msg_id (receivers deduplicate on it).
CREATE TABLE webhook_deliveries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    msg_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload_ct BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER,
    last_status INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    redelivery_of TEXT
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_ms);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries(endpoint_id, seq);

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    time INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
) STRICT;

CREATE TABLE inbound_integrations (
    id TEXT PRIMARY KEY,
    name_ct BLOB NOT NULL,
    secret_id TEXT NOT NULL REFERENCES integration_secrets(id),
    mode TEXT NOT NULL CHECK (mode IN ('signature', 'token')),
    collection_id TEXT,
    created_at INTEGER NOT NULL
) STRICT;

-- Verified events. msg_digest is a keyed digest of the sender's message id:
-- the unique index refuses a replay without storing the id in the clear.
CREATE TABLE inbound_events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    integration_id TEXT NOT NULL REFERENCES inbound_integrations(id) ON DELETE CASCADE,
    msg_digest BLOB NOT NULL,
    msg_id_ct BLOB NOT NULL,
    sent_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body_ct BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('received', 'processed', 'failed')),
    record_id TEXT,
    error_ct BLOB,
    processed_at INTEGER
) STRICT;
CREATE UNIQUE INDEX inbound_events_dedup ON inbound_events(integration_id, msg_digest);
CREATE INDEX inbound_events_by_status ON inbound_events(status);
