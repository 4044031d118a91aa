-- Voicemail (issue 11): one row per message left in a box. The WAV itself is a file under the
-- recordings directory (recording: its path relative to it, as PBX_RECORDING says); the row is
-- the index the phone menu, the CLI and the message-waiting lamps read. status: new, heard or
-- deleted (a deleted message keeps its row, so the history of a box stays auditable; its WAV is
-- removed).
CREATE TABLE voicemail (
    id          {SERIAL_PK},
    box         TEXT NOT NULL,
    time        {TS} NOT NULL,
    caller      TEXT NOT NULL DEFAULT '',
    caller_name TEXT NOT NULL DEFAULT '',
    seconds     {REAL} NOT NULL,
    recording   TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'new',
    call_id     TEXT NOT NULL DEFAULT '',
    node        TEXT
);
CREATE INDEX voicemail_box ON voicemail (box, status, time, id);
