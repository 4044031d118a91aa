-- Crash recovery (issue 9, item 4): every CDR names the node that opened it ([node] id), so at
-- start a node closes only the CDRs it left open itself, even when several nodes share one
-- PostgreSQL database. Rows written before this version get '' (closed by any node at start).
-- The partial index keeps that start-up query cheap however many closed CDRs there are.
-- Independent of any other table, so it applies before or after other migrations.
ALTER TABLE cdr ADD COLUMN node TEXT NOT NULL DEFAULT '';
CREATE INDEX cdr_open_by_node ON cdr (node) WHERE end_time IS NULL;
