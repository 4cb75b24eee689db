"""The reference queue server's schema: migration scripts, applied in order."""

from __future__ import annotations

#: Migration scripts; index + 1 is the schema version they bring the DB to.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE records (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        record_id    TEXT NOT NULL UNIQUE,
        kind_rank    INTEGER NOT NULL,            -- 0 first, 1 reprint
        urgent       INTEGER NOT NULL,            -- 1 when the record jumps the queue
        enrolled_ts  REAL NOT NULL,               -- epoch seconds (UTC)
        signed_json  TEXT NOT NULL,               -- the SignedRecord as sent
        state        TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready','printed','failed')),
        lease_id     TEXT,                        -- current lease (active while not expired)
        lease_station TEXT,
        lease_expires REAL,
        added_ts     REAL NOT NULL
    );
    CREATE INDEX records_queue ON records (state, urgent DESC, kind_rank, enrolled_ts, seq);
    CREATE TABLE leases (
        lease_id     TEXT PRIMARY KEY,
        record_id    TEXT NOT NULL,
        station_id   TEXT NOT NULL,
        granted_ts   REAL NOT NULL,
        expires_ts   REAL NOT NULL,
        closed_ts    REAL,
        close_reason TEXT
    );
    CREATE INDEX leases_record ON leases (record_id);
    CREATE TABLE results (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        result_id    TEXT NOT NULL UNIQUE,
        station_id   TEXT NOT NULL,
        record_id    TEXT NOT NULL,
        lease_id     TEXT NOT NULL,
        outcome      TEXT NOT NULL,
        body_json    TEXT NOT NULL,               -- the CardResult as received
        received_ts  REAL NOT NULL
    );
    CREATE INDEX results_record ON results (record_id, outcome);
    CREATE TABLE heartbeats (
        station_id   TEXT PRIMARY KEY,
        body_json    TEXT NOT NULL,               -- the last Heartbeat
        received_ts  REAL NOT NULL,
        count        INTEGER NOT NULL
    );
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counters VALUES ('duplicate_results', 0);
    """,
    """
    -- Offline batches (central/batches.py): records leased for days to one station,
    -- carried on a signed file; results come back on a file signed by the station's key.
    CREATE TABLE batches (
        batch_id     TEXT PRIMARY KEY,
        station_id   TEXT NOT NULL,
        created_ts   REAL NOT NULL,
        expires_ts   REAL NOT NULL,
        records      INTEGER NOT NULL
    );
    ALTER TABLE leases ADD COLUMN batch_id TEXT;
    CREATE TABLE station_keys (
        station_id   TEXT PRIMARY KEY,
        public_key   TEXT NOT NULL,               -- base64 raw Ed25519 public key
        added_ts     REAL NOT NULL
    );
    CREATE TABLE ingests (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        station_id   TEXT NOT NULL,
        file_digest  TEXT NOT NULL,               -- sha256 of the signed body
        results      INTEGER NOT NULL,
        new_results  INTEGER NOT NULL,
        at           REAL NOT NULL
    );
    """,
    """
    -- Requests and results the centre refused (central/server.py, queue_db.py):
    -- who claimed to be whom, on which endpoint, and why; never personal data.
    CREATE TABLE audit (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        at           REAL NOT NULL,
        station_id   TEXT NOT NULL,               -- the station id the request claimed
        peer         TEXT,                        -- names in the client certificate, if any
        endpoint     TEXT NOT NULL,
        event        TEXT NOT NULL,               -- 'refused' for now
        reason       TEXT NOT NULL
    );
    CREATE INDEX audit_station ON audit (station_id, at);
    """,
    """
    -- The X25519 key each station's offline batches are sealed to (`station batch pubkey`).
    CREATE TABLE station_batch_keys (
        station_id   TEXT PRIMARY KEY,
        public_key   TEXT NOT NULL,               -- base64 raw X25519 public key
        added_ts     REAL NOT NULL
    );
    """,
    """
    -- Renewals and releases find the record by its lease: without this each of a renewal's
    -- updates scanned every record (10,000 leases renewed took minutes; bench/endurance.py).
    CREATE INDEX records_lease ON records (lease_id);
    """,
    """
    -- A heartbeat with an empty outbox frees the station's held records, found by station:
    -- without this every heartbeat read every record's row, signed record and photo
    -- included (26 ms at 12,000 records, under the one write lock; bench/centre.py).
    CREATE INDEX records_station ON records (lease_station);
    """,
    """
    -- The lease query walks the queue past every record leased (or held) to reach free
    -- ones; with the lease columns in the index it no longer reads each of those rows, and
    -- their signed records and photos (23 ms a lease at 3,000 leased, now 4 ms).
    CREATE INDEX records_queue_leases ON records
        (state, urgent DESC, kind_rank, enrolled_ts, seq, lease_id, lease_expires, lease_station);
    -- ... and the heartbeat's search by station stays on the station's index, whole.
    DROP INDEX records_station;
    CREATE INDEX records_station ON records (lease_station, state, lease_expires);
    """,
    """
    -- Each station's day from its heartbeats (central/fleet.py, the station page's chart):
    -- the last heartbeat of a day carries the day's cards and spoiled blanks by class.
    CREATE TABLE station_days (
        station_id   TEXT NOT NULL,
        day          TEXT NOT NULL,               -- YYYY-MM-DD (central/fleet_days.py)
        printed      INTEGER NOT NULL,
        spoiled_json TEXT NOT NULL,               -- {"class": count}
        PRIMARY KEY (station_id, day)
    );
    """,
    """
    -- /metrics and /fleet read every station's (arrival, count) at each look to find the
    -- heartbeats that came since (central/fleet_cache.py): from this index, not the rows
    -- and their bodies (bench/fleet.py).
    CREATE INDEX heartbeats_seen ON heartbeats (station_id, received_ts, count);
    """,
)
