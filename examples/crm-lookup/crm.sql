-- The example customer database. Plain SQL that SQLite and PostgreSQL both accept:
--   sqlite3 crm.db < crm.sql          (lookup.py does this itself when crm.db is missing)
--   psql postgresql://user@host/db -f crm.sql
-- Phone numbers are stored as the switch reports the caller: digits, with a leading + if any.
CREATE TABLE customers (
    phone   VARCHAR(32)  PRIMARY KEY,
    name    VARCHAR(100) NOT NULL,
    tier    VARCHAR(16)  NOT NULL DEFAULT 'regular',  -- 'vip' or 'regular'
    manager VARCHAR(16)                               -- a VIP's personal manager (extension)
);

CREATE TABLE orders (
    number  VARCHAR(16)  PRIMARY KEY,                 -- digits: the IVR reads it out
    phone   VARCHAR(32)  NOT NULL REFERENCES customers (phone),
    placed  DATE         NOT NULL,
    summary VARCHAR(200) NOT NULL
);

INSERT INTO customers (phone, name, tier, manager) VALUES
    ('1001', 'Alice Archer', 'vip', '1003'),
    ('1002', 'Bob O''Brien', 'regular', NULL),
    ('+4930555010', 'Dora Dietrich', 'regular', NULL),
    ('+4930555020', 'Emil Engel', 'vip', '1002');

INSERT INTO orders (number, phone, placed, summary) VALUES
    ('4711', '1001', '2026-10-02', '12 red roses'),
    ('4790', '1001', '2026-11-12', 'orchid, large'),
    ('4802', '1002', '2026-11-18', 'garden tools set'),
    ('4650', '1002', '2026-09-30', 'seeds'),
    ('4811', '+4930555020', '2026-11-20', 'tulip bulbs');
