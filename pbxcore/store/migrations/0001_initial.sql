-- Call records, their legs (filled later) and per-call traces.
-- Tokens in braces are replaced per dialect by pbxcore.store.base.migrations():
-- {TS} timestamp (timestamptz / ISO 8601 UTC text), {JSON} (jsonb / text),
-- {REAL} (double precision / real), {SERIAL_PK} (identity / autoincrement primary key).
-- Statements are split on ';' at the end of a line.

CREATE TABLE cdr (
    call_id       TEXT PRIMARY KEY,
    sip_call_id   TEXT NOT NULL,            -- not unique: peers reuse Call-IDs across runs
    start_time    {TS} NOT NULL,
    answer_time   {TS},
    end_time      {TS},
    caller        TEXT NOT NULL,
    caller_name   TEXT NOT NULL DEFAULT '',
    called        TEXT NOT NULL,
    route         TEXT,
    disposition   TEXT,
    duration      {REAL},
    billsec       {REAL},
    hangup_by     TEXT,
    hangup_cause  TEXT NOT NULL DEFAULT '',
    hangup_code   INTEGER,
    recordings    {JSON} NOT NULL,
    script_errors {JSON} NOT NULL,
    vars          {JSON} NOT NULL
);
CREATE INDEX cdr_start_time ON cdr (start_time);
CREATE INDEX cdr_sip_call_id ON cdr (sip_call_id);

CREATE TABLE cdr_legs (
    id        {SERIAL_PK},
    call_id   TEXT NOT NULL REFERENCES cdr (call_id) ON DELETE CASCADE,
    leg       INTEGER NOT NULL,
    data      {JSON} NOT NULL
);
CREATE INDEX cdr_legs_call ON cdr_legs (call_id, leg);

CREATE TABLE trace (
    id        {SERIAL_PK},
    call_id   TEXT NOT NULL,                -- no foreign key: a trace may start before its CDR
    seq       INTEGER NOT NULL,
    ts        {TS} NOT NULL,
    kind      TEXT NOT NULL,
    data      {JSON} NOT NULL
);
CREATE INDEX trace_call ON trace (call_id, seq, id);
