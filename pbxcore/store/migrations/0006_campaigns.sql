-- Outbound notification campaigns (issue 11, `pbx campaign run`): one row per campaign (named
-- by its list file's absolute path) and one per line of the list, with how far it got, so a
-- restarted `pbx campaign run` resumes where the last one stopped.  Independent of every other
-- table, so it applies before or after other migrations.
CREATE TABLE campaign (
    name    TEXT PRIMARY KEY,
    script  TEXT NOT NULL,
    created {TS} NOT NULL
);

-- status: pending, calling (a call is out: call_id), answered, busy, noanswer, failed.
-- result: the script's `result` variable of the answered call.
CREATE TABLE campaign_rows (
    campaign TEXT NOT NULL REFERENCES campaign (name) ON DELETE CASCADE,
    row_no   INTEGER NOT NULL,
    number   TEXT NOT NULL,
    vars     {JSON} NOT NULL,
    status   TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    result   TEXT NOT NULL DEFAULT '',
    call_id  TEXT NOT NULL DEFAULT '',
    updated  {TS},
    PRIMARY KEY (campaign, row_no)
);
