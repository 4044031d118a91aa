-- Registrations in the store (issue 13): a REGISTER's bindings survive a node restart and, on a
-- shared PostgreSQL, every node sees every phone. One row per (extension, contact) as RFC 3261
-- §10.3 keys bindings; `expires` is UTC wall time (a monotonic deadline means nothing to another
-- process); `source_*` is where the REGISTER came from (NAT: the phone is reachable there);
-- `path` is the RFC 3327 Path header's URIs, comma-separated in order ('' when none); `node` is
-- the [node] id that accepted the REGISTER.
CREATE TABLE registrations (
    extension TEXT NOT NULL,
    contact TEXT NOT NULL,
    source_transport TEXT NOT NULL,
    source_host TEXT NOT NULL,
    source_port INTEGER NOT NULL,
    expires {TS} NOT NULL,
    call_id TEXT NOT NULL,
    cseq INTEGER NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    node TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (extension, contact)
);
CREATE INDEX registrations_expires ON registrations (expires);
