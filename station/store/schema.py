"""The station database schema as an ordered list of migrations."""

from __future__ import annotations

V1 = [
    # The record buffer. payload: the SignedRecord JSON, AES-GCM encrypted.
    # status: queued | printing | inspection | done | failed | dropped | released
    """CREATE TABLE records (
        record_id      TEXT PRIMARY KEY,
        lease_id       TEXT NOT NULL,
        lease_deadline REAL NOT NULL,   -- wall clock (epoch s) the lease ends
        lease_mono     REAL NOT NULL,   -- the same deadline on the monotonic clock
        boot_id        TEXT NOT NULL,   -- boot on which lease_mono is valid
        kind           TEXT NOT NULL,
        urgent         INTEGER NOT NULL,
        enrolled_at    TEXT NOT NULL,
        status         TEXT NOT NULL DEFAULT 'queued',
        attempts       INTEGER NOT NULL DEFAULT 0,
        payload        BLOB,
        received_at    REAL NOT NULL,
        closed_at      REAL
    )""",
    "CREATE INDEX records_next ON records(status, urgent DESC, kind, enrolled_at)",
    # One physical try of one record with one blank.
    """CREATE TABLE attempts (
        attempt_id   INTEGER PRIMARY KEY AUTOINCREMENT,
        record_id    TEXT NOT NULL REFERENCES records(record_id),
        state        TEXT NOT NULL,
        blank_serial TEXT,
        reason       TEXT,
        started_at   REAL NOT NULL,
        updated_at   REAL NOT NULL
    )""",
    "CREATE INDEX attempts_state ON attempts(state)",
    # Blank ledger: kind received | used | spoiled | adjusted; count signed.
    """CREATE TABLE ledger (
        entry_id   INTEGER PRIMARY KEY AUTOINCREMENT,
        kind       TEXT NOT NULL,
        count      INTEGER NOT NULL,
        attempt_id INTEGER REFERENCES attempts(attempt_id),
        serial     TEXT,
        batch      TEXT,
        reason     TEXT,
        at         REAL NOT NULL
    )""",
    # Results waiting for the centre's acknowledgement.
    """CREATE TABLE outbox (
        result_id  TEXT PRIMARY KEY,
        body       TEXT NOT NULL,
        created_at REAL NOT NULL,
        acked_at   REAL
    )""",
    "CREATE INDEX outbox_pending ON outbox(acked_at, created_at)",
    """CREATE TABLE audit (
        audit_id   INTEGER PRIMARY KEY AUTOINCREMENT,
        at         REAL NOT NULL,
        event      TEXT NOT NULL,
        attempt_id INTEGER,
        record_id  TEXT,
        detail     TEXT
    )""",
    # The status snapshot the CLI reads: key → JSON value.
    """CREATE TABLE status (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        at    REAL NOT NULL
    )""",
]

V2 = [
    # Blank accounting as offices report it (the issue "Blanks").
    "ALTER TABLE attempts ADD COLUMN kind TEXT",
    "CREATE INDEX attempts_done ON attempts(state, updated_at)",
    "ALTER TABLE ledger ADD COLUMN class TEXT",  # spoilage class
    "ALTER TABLE ledger ADD COLUMN detail TEXT",  # jam, step, status word
    "ALTER TABLE ledger ADD COLUMN who TEXT",  # adjustments: who made them
    "ALTER TABLE ledger ADD COLUMN first_serial TEXT",  # received: serial range, if known
    "ALTER TABLE ledger ADD COLUMN last_serial TEXT",
    "ALTER TABLE ledger ADD COLUMN destruction_id INTEGER",
    "CREATE INDEX ledger_at ON ledger(at)",
    """CREATE TABLE destructions (
        destruction_id INTEGER PRIMARY KEY AUTOINCREMENT,
        at         REAL NOT NULL,
        place      TEXT NOT NULL,
        witnesses  TEXT NOT NULL,   -- JSON list of names
        document   TEXT NOT NULL    -- path of the berita acara written
    )""",
    """CREATE TABLE physical_counts (
        count_id INTEGER PRIMARY KEY AUTOINCREMENT,
        at       REAL NOT NULL,
        physical INTEGER NOT NULL,
        expected INTEGER NOT NULL,
        who      TEXT
    )""",
    # Leases handed back because the station cannot print them soon.
    """CREATE TABLE releases (
        release_id INTEGER PRIMARY KEY AUTOINCREMENT,
        lease_id   TEXT NOT NULL,
        record_id  TEXT NOT NULL,
        reason     TEXT NOT NULL,
        at         REAL NOT NULL,
        sent_at    REAL
    )""",
]

V3 = [
    # What accounting keeps of a person once the payload is purged: a keyed hash of the
    # NIK (HMAC under the station's data key), never the NIK itself.
    "ALTER TABLE records ADD COLUMN nik_hash TEXT",
]

V4 = [
    # Running totals of the ledger by kind, kept by trigger: the stock check at every card
    # boundary reads one row per kind instead of summing a ledger that only grows.
    "CREATE TABLE ledger_sums (kind TEXT PRIMARY KEY, total INTEGER NOT NULL)",
    "INSERT INTO ledger_sums(kind, total) SELECT kind, SUM(count) FROM ledger GROUP BY kind",
    """CREATE TRIGGER ledger_sums_add AFTER INSERT ON ledger BEGIN
        INSERT INTO ledger_sums(kind, total) VALUES (NEW.kind, NEW.count)
        ON CONFLICT(kind) DO UPDATE SET total = total + NEW.count;
    END""",
    # The ledger is append-only: corrections are new rows ('adjusted'), never edits.
    """CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN
        SELECT RAISE(ABORT, 'the blank ledger is append-only');
    END""",
    """CREATE TRIGGER ledger_no_edit BEFORE UPDATE OF kind, count ON ledger BEGIN
        SELECT RAISE(ABORT, 'the blank ledger is append-only');
    END""",
]

V5 = [
    # Facts about the station itself: key → value (e.g. the data key's fingerprint, taken
    # at first use, so a different key is refused instead of sealing records it alone opens).
    "CREATE TABLE station_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]

V6 = [
    # Poison records (a record in hand at consecutive crashes of the daemon is quarantined)
    # and the cause of each failure: the fault fingerprint of an attempt (the same on a
    # second blank: the record's fault) and the cause a spoiled blank is charged to.
    "ALTER TABLE records ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX records_crashed ON records(crashes) WHERE crashes > 0",
    "ALTER TABLE attempts ADD COLUMN fault TEXT",
    "ALTER TABLE ledger ADD COLUMN cause TEXT",  # record | blank | device (NULL: unknown)
]

V7 = [
    # "state#attempt_id" of the record's attempt when the daemon died with it in hand: crashes
    # count in a row only at the same step (a record that kills the daemon does so at
    # the same point each time; kills at random moments do not).
    "ALTER TABLE records ADD COLUMN crash_state TEXT",
]

V8 = [
    # Lease renewals and losses find their record by lease id: without this, each of a
    # renewal's updates scanned the whole records table (35 ms at a year of history, so a
    # renewal of 10,000 leases held the database for minutes). bench/endurance.py.
    "CREATE INDEX records_lease ON records(lease_id)",
    # The leases to renew are read from the index alone (status, then the lease id).
    "CREATE INDEX records_status_lease ON records(status, lease_id)",
]

V9 = [
    # Recovery (station/recovery.py): the state a card was sent to the reject tray from,
    # journaled durably before the move, so a power cut between the move and the reject's
    # commit cannot count that blank back into stock.
    "ALTER TABLE attempts ADD COLUMN reject_from TEXT",
    # Why the blank's serial is unknown (e.g. a feed jam before the chip was read), for
    # the spoiled row and the berita acara.
    "ALTER TABLE attempts ADD COLUMN serial_note TEXT",
    "ALTER TABLE ledger ADD COLUMN serial_note TEXT",
]

MIGRATIONS: list[list[str]] = [V1, V2, V3, V4, V5, V6, V7, V8, V9]
