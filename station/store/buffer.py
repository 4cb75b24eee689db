"""The record buffer: leased records waiting to print, picked by policy, dropped, purged, failed."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from station.store.audit import audit
from station.store.outbox import write_result
from station.store.states import CLOSED_STATUSES, OPEN_STATUSES, RecordStatus, marks

_QUEUED = RecordStatus.QUEUED


@dataclass(frozen=True)
class Lease:
    record_id: str
    lease_id: str
    deadline: float  # wall clock
    mono: float
    boot_id: str


@dataclass(frozen=True)
class BufferedRecord:
    record_id: str
    lease_id: str
    payload: bytes
    attempts: int


def add_record(
    conn: sqlite3.Connection,
    lease: Lease,
    *,
    kind: str,
    urgent: bool,
    enrolled_at: str,
    payload: bytes,
    nik_hash: str | None = None,
) -> bool:
    """Buffer a leased record. A record still queued here only gets its new lease; one
    dropped or released earlier (its lease ran out, or went back) is buffered again with
    the new lease; one printed, failed or in the printer is left as it is."""
    cur = conn.execute(
        "UPDATE records SET lease_id=?, lease_deadline=?, lease_mono=?, boot_id=? "
        "WHERE record_id=? AND status=?",
        (lease.lease_id, lease.deadline, lease.mono, lease.boot_id, lease.record_id, _QUEUED),
    )
    if cur.rowcount:
        return False
    cur = conn.execute(
        "UPDATE records SET lease_id=?, lease_deadline=?, lease_mono=?, boot_id=?, "
        "status=?, payload=?, closed_at=NULL "
        "WHERE record_id=? AND status IN (?,?)",
        (
            lease.lease_id,
            lease.deadline,
            lease.mono,
            lease.boot_id,
            _QUEUED,
            payload,
            lease.record_id,
            RecordStatus.DROPPED,
            RecordStatus.RELEASED,
        ),
    )
    if not cur.rowcount:
        cur = conn.execute(
            "INSERT OR IGNORE INTO records(record_id, lease_id, lease_deadline, lease_mono, "
            "boot_id, kind, urgent, enrolled_at, payload, received_at, nik_hash) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                lease.record_id,
                lease.lease_id,
                lease.deadline,
                lease.mono,
                lease.boot_id,
                kind,
                int(urgent),
                enrolled_at,
                payload,
                time.time(),
                nik_hash,
            ),
        )
    if cur.rowcount:
        audit(conn, "leased", record_id=lease.record_id)
    return bool(cur.rowcount)


def next_records(
    conn: sqlite3.Connection,
    *,
    usable: Callable[[Lease], bool],
    kinds: tuple[str, ...] = ("first", "reprint"),
    urgent_only: bool = False,
    count: int = 1,
) -> list[BufferedRecord]:
    """The next ``count`` queued records by policy (urgent, first cards, earliest
    enrolment) among ``kinds`` (and only urgent ones if asked) whose lease
    ``usable(Lease)`` accepts; records whose lease is no longer usable are dropped."""
    picked: list[BufferedRecord] = []
    while True:
        # 'first' sorts before 'reprint': the order is the index records_next's, no sort.
        rows = conn.execute(
            "SELECT record_id, lease_id, lease_deadline, lease_mono, boot_id, attempts "
            f"FROM records WHERE status=? AND kind IN ({marks(kinds)}) "
            f"{'AND urgent=1 ' if urgent_only else ''}"
            "ORDER BY urgent DESC, kind, enrolled_at LIMIT ? OFFSET ?",
            (_QUEUED, *kinds, count - len(picked) + 2, len(picked)),
        ).fetchall()
        dropped = False
        for row in rows:
            if len(picked) == count:
                return picked
            lease = Lease(row[0], row[1], row[2], row[3], row[4])
            if usable(lease):
                payload = conn.execute(
                    "SELECT payload FROM records WHERE record_id=?", (row[0],)
                ).fetchone()[0]
                picked.append(BufferedRecord(row[0], row[1], payload, row[5]))
            else:
                drop_record(conn, row[0], "lease expired before printing")
                dropped = True
        if len(picked) == count or not dropped:  # else look past the dropped ones
            return picked


def drop_record(conn: sqlite3.Connection, record_id: str, reason: str) -> None:
    """Forget a record unprinted (lease expired or lost): the centre leases it again."""
    conn.execute(
        "UPDATE records SET status=?, payload=NULL, closed_at=? WHERE record_id=? AND status=?",
        (RecordStatus.DROPPED, time.time(), record_id, _QUEUED),
    )
    audit(conn, "dropped", record_id=record_id, detail=reason)


def purge_closed(conn: sqlite3.Connection, record_id: str | None = None) -> int:
    """Overwrite (secure_delete) the sealed payload of ``record_id`` if it is closed, or
    of every closed record (start-up: purges a crash overtook). Returns how many."""
    only = "" if record_id is None else " AND record_id=?"
    return conn.execute(
        "UPDATE records SET payload=NULL WHERE payload IS NOT NULL "
        f"AND status NOT IN ({marks(OPEN_STATUSES)}){only}",
        (*OPEN_STATUSES, *(() if record_id is None else (record_id,))),
    ).rowcount


def fail_record(conn: sqlite3.Connection, record_id: str, reason: str) -> bool:
    """A record whose data is bad: never printed, reported failed so the centre fixes it.
    A record already closed (done or failed) is left as it is: one result per record,
    never a ``failed`` after a ``printed``; False then."""
    row = conn.execute(
        "SELECT record_id, lease_id, received_at AS started_at FROM records WHERE record_id=?"
        f" AND status NOT IN ({marks(CLOSED_STATUSES)})",
        (record_id, *CLOSED_STATUSES),
    ).fetchone()
    if row is None:
        audit(conn, "fail_ignored", record_id=record_id, detail=f"already closed: {reason}")
        return False
    close_failed(conn, row, reason)
    return True


def close_failed(conn: sqlite3.Connection, row: sqlite3.Row, reason: str) -> None:
    conn.execute(
        "UPDATE records SET status=?, payload=NULL, closed_at=? WHERE record_id=?",
        (RecordStatus.FAILED, time.time(), row["record_id"]),
    )
    write_result(conn, row, "failed", None, reason)
    audit(conn, "failed", record_id=row["record_id"], detail=reason)
