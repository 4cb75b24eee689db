"""The reference queue server's state: SQLite (WAL) with versioned migrations."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central import fleet_days, trust
from central.queue_schema import MIGRATIONS
from central.results import chunks, close_lease, marks, record_results
from station.grants import sign_grant
from station.link import protocol as p
from station.records import SignedRecord
from station.store import migrations
from station.store.migrations import SchemaError as SchemaError  # the server's name for it

log = structlog.get_logger(__name__)

#: How long an expired lease stays held for a station that is never heard from again.
DEFAULT_LEASE_HOLD_S = 7 * 86400.0
#: Not leasable by just anyone (params: hold, now): an active lease, or one held.
_TAKEN = "lease_id IS NOT NULL AND lease_expires + ? > ?"


#: A station's latest heartbeat, and how many came (params: station, body, now).
UPSERT_HEARTBEAT = (
    "INSERT INTO heartbeats (station_id, body_json, received_ts, count)"
    " VALUES (?, ?, ?, 1) ON CONFLICT (station_id) DO UPDATE SET"
    " body_json = excluded.body_json, received_ts = excluded.received_ts,"
    " count = heartbeats.count + 1"
)


class _Versioned:
    """The queue database for the migration runner (:mod:`station.store.migrations`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def apply(self, number: int, step: str) -> None:
        # executescript commits first; the version bump belongs to the same script.
        self.conn.executescript(
            f"BEGIN IMMEDIATE;\n{step}\nPRAGMA user_version = {number};\nCOMMIT;"
        )


def _ts(value: Any, fallback: float) -> float:
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return fallback
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.timestamp()
    return fallback


class QueueDB:
    """The server's SQLite state: records, leases, results, heartbeats (thread-safe)."""

    #: Dialect: how the lease query locks the rows it takes (PostgreSQL: SKIP LOCKED), and
    #: the two-argument maximum.
    _LOCK_ROWS = ""
    _GREATEST = "MAX"

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        lease_hold_s: float = DEFAULT_LEASE_HOLD_S,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.lease_hold_s = lease_hold_s
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            migrations.run(MIGRATIONS, _Versioned(self._conn), what="queue DB", reader="server")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT) under the DB lock."""
        with self._tx() as c:
            yield c

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads outside a write transaction."""
        with self._lock:
            yield self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    # -- records -------------------------------------------------------------------------

    def add_records(self, records: Iterable[SignedRecord]) -> list[str]:
        """Insert signed records (content is not validated: tests may queue bad ones)."""
        now = self.clock()
        rows = []
        for signed in records:
            rec = signed.record
            rows.append(
                (
                    signed.record_id(),
                    1 if rec.get("kind") == "reprint" else 0,
                    1 if rec.get("urgent") else 0,
                    _ts(rec.get("enrolled_at"), now),
                    signed.model_dump_json(),
                    now,
                )
            )
        with self._tx() as c:
            c.executemany(
                "INSERT INTO records (record_id, kind_rank, urgent, enrolled_ts, signed_json,"
                " added_ts) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return [r[0] for r in rows]

    def next_index(self) -> int:
        """The next free PRR-NNNNNN number (after every record ever added)."""
        with self._read() as c:
            row = c.execute(
                "SELECT MAX(COALESCE(MAX(seq), 0), COALESCE(MAX(CAST(SUBSTR(record_id, 5)"
                " AS INTEGER)), 0)) FROM records WHERE record_id GLOB 'PRR-[0-9]*'"
                " OR record_id NOT GLOB 'PRR-*'"
            ).fetchone()
        return int(row[0]) + 1

    def record_state(self, record_id: str) -> str | None:
        """'ready' | 'leased' (or held) | 'printed' | 'failed', or None when unknown."""
        with self._read() as c:
            row = c.execute(
                f"SELECT state, {_TAKEN} FROM records WHERE record_id = ?",
                (self.lease_hold_s, self.clock(), record_id),
            ).fetchone()
        if row is None:
            return None
        return "leased" if row[0] == "ready" and row[1] else str(row[0])

    # -- protocol operations -------------------------------------------------------------

    def lease(
        self, req: p.LeaseRequest, ttl_s: float, grant_key: tuple[str, Ed25519PrivateKey]
    ) -> p.LeaseResponse:
        """Lease up to ``req.max`` records, each with its grant signed by ``grant_key``."""
        expires = self.clock() + ttl_s
        with self._tx() as c:
            granted = self.grant_leases(c, req.station_id, req.max, ttl_s)
        key_id, key = grant_key
        out = [
            p.LeasedRecord(
                lease_id=lease_id,
                ttl_s=ttl_s,
                signed=SignedRecord.model_validate_json(signed_json),
                grant=sign_grant(
                    key,
                    key_id,
                    record_id=record_id,
                    station_id=req.station_id,
                    lease_id=lease_id,
                    expires_at=expires,
                ),
            )
            for lease_id, record_id, signed_json in granted
        ]
        log.debug("central.leased", station=req.station_id, asked=req.max, granted=len(out))
        return p.LeaseResponse(records=out)

    def grant_leases(
        self,
        c: sqlite3.Connection,
        station_id: str,
        n: int,
        ttl_s: float,
        batch_id: str | None = None,
    ) -> list[tuple[str, str, str]]:
        """Lease up to ``n`` ready records in queue order inside the caller's transaction
        (free ones, and those held for this station); (lease_id, record_id, signed_json)."""
        now = self.clock()
        rows = c.execute(
            "SELECT record_id, signed_json FROM records WHERE state = 'ready'"
            " AND (NOT (" + _TAKEN + ") OR (lease_station = ? AND lease_expires <= ?))"
            " ORDER BY urgent DESC, kind_rank, enrolled_ts, seq LIMIT ?" + self._LOCK_ROWS,
            (self.lease_hold_s, now, station_id, now, n),
        ).fetchall()
        granted = [
            (uuid4().hex, str(record_id), str(signed_json)) for record_id, signed_json in rows
        ]
        if not granted:
            return granted
        # executemany: on PostgreSQL one round trip (a pipeline) instead of one a record.
        c.executemany(
            "UPDATE records SET lease_id = ?, lease_station = ?, lease_expires = ?"
            " WHERE record_id = ?",
            [(lease_id, station_id, now + ttl_s, record_id) for lease_id, record_id, _ in granted],
        )
        c.executemany(
            "INSERT INTO leases (lease_id, record_id, station_id, granted_ts, expires_ts,"
            " batch_id) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (lease_id, record_id, station_id, now, now + ttl_s, batch_id)
                for lease_id, record_id, _ in granted
            ],
        )
        return granted

    def renew(self, req: p.RenewRequest, ttl_s: float) -> p.RenewResponse:
        """Renew the station's leases: one update for all of them (on PostgreSQL a round
        trip a statement, not a lease), one for their lease rows."""
        now = self.clock()
        renewed: dict[str, float] = {}
        with self._tx() as c:
            for part in chunks(req.lease_ids):
                # Revives an expired lease nobody else took; never shortens one (an offline
                # batch's leases last days).
                rows = c.execute(
                    f"UPDATE records SET lease_expires = {self._GREATEST}(lease_expires, ?)"
                    f" WHERE lease_id IN ({marks(len(part))})"
                    " AND lease_station = ? AND state = 'ready' RETURNING lease_id, lease_expires",
                    (now + ttl_s, *part, req.station_id),
                ).fetchall()
                renewed.update({str(lease_id): float(expires) for lease_id, expires in rows})
            if renewed:
                c.executemany(
                    "UPDATE leases SET expires_ts = ? WHERE lease_id = ?",
                    [(expires, lease_id) for lease_id, expires in renewed.items()],
                )
            lost = [lease_id for lease_id in req.lease_ids if lease_id not in renewed]
            for lease_id in lost:
                trust.refuse_foreign_lease(c, now, req.station_id, lease_id, "/v1/leases/renew")
        return p.RenewResponse(
            renewed={
                lease_id: renewed[lease_id] - now
                for lease_id in req.lease_ids
                if lease_id in renewed
            },
            lost=lost,
        )

    def release(self, req: p.ReleaseRequest) -> p.ReleaseResponse:
        now = self.clock()
        released: list[str] = []
        with self._tx() as c:
            for lease_id in req.lease_ids:
                cur = c.execute(
                    "UPDATE records SET lease_id = NULL, lease_station = NULL,"
                    " lease_expires = NULL WHERE lease_id = ? AND lease_station = ?",
                    (lease_id, req.station_id),
                )
                if cur.rowcount:
                    close_lease(c, lease_id, now, f"released:{req.reason}")
                    released.append(lease_id)
                else:
                    trust.refuse_foreign_lease(
                        c, now, req.station_id, lease_id, "/v1/leases/release"
                    )
        return p.ReleaseResponse(released=released)

    def results(self, req: p.ResultsRequest) -> p.ResultsResponse:
        with self._tx() as c:
            dups, refused = self.record_results(c, req.station_id, req.results)
        log.debug(
            "central.results",
            station=req.station_id,
            n=len(req.results),
            duplicates=dups,
            refused=len(refused),
        )
        return p.ResultsResponse(
            acked=[r.result_id for r in req.results if r.result_id not in refused], refused=refused
        )

    def record_results(
        self,
        c: sqlite3.Connection,
        station_id: str,
        results: Iterable[p.CardResult],
        endpoint: str = "/v1/results",
    ) -> tuple[int, dict[str, str]]:
        """Apply results not known yet inside the caller's transaction (see
        :func:`results.record_results`): (duplicates, refused result_id → reason)."""
        return record_results(c, station_id, results, self.clock(), endpoint)

    def heartbeat(self, hb: p.Heartbeat) -> p.HeartbeatAck:
        now = self.clock()
        freed = self._beat(hb, now)
        if freed:
            log.info("central.holds_freed", station=hb.station_id, records=freed)
        return p.HeartbeatAck(server_time=dt.datetime.fromtimestamp(now, dt.UTC))

    def _beat(self, hb: p.Heartbeat, now: float) -> int:
        """Store the heartbeat; with an empty outbox free the station's held records (how
        many were freed)."""
        with self._tx() as c:
            c.execute(UPSERT_HEARTBEAT, (hb.station_id, hb.model_dump_json(), now))
            fleet_days.record(c, hb, now)
            return self._free_held(c, hb.station_id, now) if hb.outbox == 0 else 0

    def _free_held(self, c: sqlite3.Connection, station_id: str, now: float) -> int:
        """The station reports every result in: its expired leases were not printed."""
        rows = c.execute(
            "SELECT record_id, lease_id FROM records WHERE lease_station = ?"
            " AND state = 'ready' AND lease_expires <= ?",
            (station_id, now),
        ).fetchall()
        for record_id, lease_id in rows:
            c.execute(
                "UPDATE records SET lease_id = NULL, lease_station = NULL, lease_expires = NULL"
                " WHERE record_id = ?",
                (record_id,),
            )
            close_lease(c, lease_id, now, "expired")
        return len(rows)

    def last_heartbeat(self, station_id: str) -> p.Heartbeat | None:
        with self._read() as c:
            row = c.execute(
                "SELECT body_json FROM heartbeats WHERE station_id = ?", (station_id,)
            ).fetchone()
        return None if row is None else p.Heartbeat.model_validate_json(row[0])

    def heartbeat_index(self) -> list[tuple[str, float, int]]:
        """Every station that sent a heartbeat: its id, when the last came, how many came."""
        with self._read() as c:
            return [
                (str(s), float(t), int(n))
                for s, t, n in c.execute(
                    "SELECT station_id, received_ts, count FROM heartbeats ORDER BY station_id"
                )
            ]

    def heartbeat_bodies(self, station_ids: list[str]) -> list[tuple[str, float, int]]:
        """These stations' latest heartbeats (their JSON), when each came and how many."""
        out: list[tuple[str, float, int]] = []
        with self._read() as c:
            for i in range(0, len(station_ids), 500):
                chunk = station_ids[i : i + 500]
                out += [
                    (str(b), float(t), int(n))
                    for b, t, n in c.execute(
                        "SELECT body_json, received_ts, count FROM heartbeats"
                        f" WHERE station_id IN ({','.join('?' * len(chunk))})",
                        chunk,
                    )
                ]
        return out

    def station_days(
        self, station_id: str, last: dt.date, n: int = 30
    ) -> list[tuple[dt.date, int, dict[str, int]]]:
        """The station's last ``n`` days up to ``last`` (see :mod:`central.fleet_days`)."""
        with self._read() as c:
            return fleet_days.days(c, station_id, last, n)

    def audit(self, station_id: str | None = None) -> list[trust.AuditRow]:
        """Refused requests and results, oldest first (all stations, or one)."""
        with self._read() as c:
            return trust.audit_rows(c, station_id)

    def refuse(
        self, *, station_id: str, endpoint: str, reason: str, peer: str | None = None
    ) -> None:
        """Write one refused request to the audit in its own transaction."""
        with self._tx() as c:
            trust.record_refusal(
                c, self.clock(), station_id=station_id, endpoint=endpoint, reason=reason, peer=peer
            )

    def results_for(self, record_id: str) -> list[p.CardResult]:
        with self._read() as c:
            rows = c.execute(
                "SELECT body_json FROM results WHERE record_id = ? ORDER BY seq", (record_id,)
            ).fetchall()
        return [p.CardResult.model_validate_json(r[0]) for r in rows]

    def summary(self) -> p.ServerSummary:
        now = self.clock()
        with self._read() as c:
            counts = dict(
                c.execute(
                    "SELECT CASE WHEN state = 'ready' AND " + _TAKEN + " THEN 'leased'"
                    " ELSE state END AS s, COUNT(*) FROM records GROUP BY s",
                    (self.lease_hold_s, now),
                ).fetchall()
            )
            n_results = c.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            dups = c.execute(
                "SELECT value FROM counters WHERE name = 'duplicate_results'"
            ).fetchone()[0]
            twice = [
                r[0]
                for r in c.execute(
                    "SELECT record_id FROM results WHERE outcome = 'printed'"
                    " GROUP BY record_id HAVING COUNT(*) > 1 ORDER BY record_id"
                ).fetchall()
            ]
            beats = c.execute("SELECT COALESCE(SUM(count), 0) FROM heartbeats").fetchone()[0]
        return p.ServerSummary(
            records=sum(counts.values()),
            ready=counts.get("ready", 0),
            leased=counts.get("leased", 0),
            printed=counts.get("printed", 0),
            failed=counts.get("failed", 0),
            results=n_results,
            duplicate_results=dups,
            printed_twice=twice,
            heartbeats=beats,
        )
