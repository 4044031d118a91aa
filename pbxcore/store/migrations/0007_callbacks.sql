-- Callbacks that keep the caller's place (issue 11): one row per callback a waiting caller
-- asked for.  state: pending (waiting for its place to come up, or being dialled), connected
-- (the customer answered), failed (retries spent, or the queue is gone).  A restarted switch
-- re-enters the pending ones into its queues in order of `requested`; `waited` is not stored:
-- it follows from `requested`.  Independent of any other table.
CREATE TABLE callbacks (
    id        TEXT PRIMARY KEY,
    queue     TEXT NOT NULL,
    number    TEXT NOT NULL,
    priority  INTEGER NOT NULL DEFAULT 0,
    requested {TS} NOT NULL,
    attempts  INTEGER NOT NULL DEFAULT 0,
    state     TEXT NOT NULL,
    call_id   TEXT NOT NULL DEFAULT '',
    position  INTEGER NOT NULL DEFAULT 0,
    updated   {TS} NOT NULL
);
CREATE INDEX callbacks_state ON callbacks (state, requested);
