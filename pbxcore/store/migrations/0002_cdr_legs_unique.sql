-- Legs of a call are written with cdr_leg(call_id, leg, data), "insert or replace leg N": the
-- upsert (INSERT ... ON CONFLICT (call_id, leg)) needs a unique index on exactly those columns.
-- cdr_legs was unused before this version, so no existing database holds duplicates.
-- The unique index serves every query the old one did, so the old one goes.
CREATE UNIQUE INDEX cdr_legs_call_leg ON cdr_legs (call_id, leg);
DROP INDEX cdr_legs_call;
