"""The two ways an attempt ends at the reject tray, on a real database file."""

from __future__ import annotations

import sqlite3
import time

from station.store import attempts, buffer, figures
from station.store.states import RecordStatus


def started(conn: sqlite3.Connection, rid: str = "R-1") -> int:
    """A buffered record whose attempt has just started."""
    lease = buffer.Lease(rid, f"L-{rid}", time.time() + 3600, time.monotonic() + 3600, "boot")
    buffer.add_record(
        conn, lease, kind="first", urgent=False, enrolled_at="2026-05-01", payload=b"sealed"
    )
    return attempts.begin_attempt(conn, rid)


def record(conn: sqlite3.Connection, rid: str = "R-1") -> tuple[str, int]:
    row = conn.execute("SELECT status, attempts FROM records WHERE record_id=?", (rid,))
    status, tries = row.fetchone()
    return status, tries


def test_an_aborted_attempt_uses_no_blank_and_no_try(conn: sqlite3.Connection) -> None:
    """An attempt ended before its blank was taken queues the record again with no try
    counted, no blank spoiled and nothing reported."""
    attempts.abort_attempt(conn, started(conn), "not started: feed refused")
    assert record(conn) == ("queued", 0)
    assert figures.ledger_totals(conn)["spoiled"] == 0
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0


def test_a_spoiled_attempt_counts_its_blank_and_fails_the_record_at_the_limit(
    conn: sqlite3.Connection,
) -> None:
    """Each spoiled attempt charges one blank and reports it; the second of two allowed
    fails the record."""
    first = attempts.spoil_attempt(conn, started(conn), "jam", max_attempts=2)
    assert first is RecordStatus.QUEUED
    second = attempts.spoil_attempt(
        conn, attempts.begin_attempt(conn, "R-1"), "jam", max_attempts=2
    )
    assert second is RecordStatus.FAILED
    assert record(conn) == ("failed", 2)
    assert figures.ledger_totals(conn)["spoiled"] == 2
    outcomes = [
        r[0]
        for r in conn.execute("SELECT json_extract(body, '$.outcome') FROM outbox ORDER BY rowid")
    ]
    assert outcomes == ["spoiled", "spoiled", "failed"]
