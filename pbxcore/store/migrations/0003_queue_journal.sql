-- The ACD (issue 8): the queue journal, the CDR's queue segments and agent state changes.
-- queue_journal has Asterisk's queue_log columns (time, callid, queuename, agent, event,
-- data1..data5) so reports written for queue_log carry over; node says which switch wrote the
-- row (NULL until several nodes share one store) and extra holds what queue_log has no column for.
-- A fact about no call, queue or agent says 'NONE', as in queue_log.
CREATE TABLE queue_journal (
    id        {SERIAL_PK},
    time      {TS} NOT NULL,
    callid    TEXT NOT NULL DEFAULT 'NONE',
    queuename TEXT NOT NULL DEFAULT 'NONE',
    agent     TEXT NOT NULL DEFAULT 'NONE',
    event     TEXT NOT NULL,
    data1     TEXT NOT NULL DEFAULT '',
    data2     TEXT NOT NULL DEFAULT '',
    data3     TEXT NOT NULL DEFAULT '',
    data4     TEXT NOT NULL DEFAULT '',
    data5     TEXT NOT NULL DEFAULT '',
    node      TEXT,
    extra     {JSON} NOT NULL
);
CREATE INDEX queue_journal_time ON queue_journal (time, id);
CREATE INDEX queue_journal_queue ON queue_journal (queuename, time, id);
CREATE INDEX queue_journal_call ON queue_journal (callid);

-- One row per visit of a call to a queue (a call may queue more than once); the agents rung
-- for it are legs in cdr_legs.
CREATE TABLE cdr_queue (
    id        {SERIAL_PK},
    call_id   TEXT NOT NULL REFERENCES cdr (call_id) ON DELETE CASCADE,
    number    INTEGER NOT NULL,
    queue     TEXT NOT NULL,
    entered   {TS} NOT NULL,
    position  INTEGER NOT NULL,
    priority  INTEGER NOT NULL DEFAULT 0,
    wait      {REAL},
    agent     TEXT,
    outcome   TEXT
);
CREATE UNIQUE INDEX cdr_queue_call_number ON cdr_queue (call_id, number);

-- Agent state changes (logged_out, available, ringing, talking, wrapup, paused): agent
-- sessions for reports, and what a restarted node left open.
CREATE TABLE agent_events (
    id        {SERIAL_PK},
    time      {TS} NOT NULL,
    agent     TEXT NOT NULL,
    state     TEXT NOT NULL,
    reason    TEXT NOT NULL DEFAULT '',
    queue     TEXT,                         -- NULL: every queue the agent is a member of
    node      TEXT
);
CREATE INDEX agent_events_time ON agent_events (time, id);
CREATE INDEX agent_events_agent ON agent_events (agent, time, id);
