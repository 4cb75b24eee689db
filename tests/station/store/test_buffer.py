"""The record buffer's choices on a real database file: print order, leases, purges."""

from __future__ import annotations

import sqlite3
import time

from station.store import buffer


def lease_in(
    conn: sqlite3.Connection,
    rid: str,
    *,
    kind: str = "first",
    urgent: bool = False,
    enrolled: str = "2026-05-01",
    deadline: float | None = None,
) -> None:
    deadline = time.time() + 3600 if deadline is None else deadline
    lease = buffer.Lease(rid, f"L-{rid}", deadline, time.monotonic() + 3600, "boot")
    buffer.add_record(
        conn,
        lease,
        kind=kind,
        urgent=urgent,
        enrolled_at=enrolled,
        payload=f"sealed {rid}".encode(),
    )


def unexpired(lease: buffer.Lease) -> bool:
    return lease.deadline > time.time()


def test_order_is_urgent_then_first_cards_then_earliest_enrolment(conn) -> None:
    """Urgent records come first, then first cards before reprints, each by enrolment."""
    lease_in(conn, "reprint-early", kind="reprint", enrolled="2026-01-01")
    lease_in(conn, "first-late", enrolled="2026-06-01")
    lease_in(conn, "first-early", enrolled="2026-02-01")
    lease_in(conn, "urgent-reprint", kind="reprint", urgent=True, enrolled="2026-07-01")
    picks = buffer.next_records(conn, usable=unexpired, count=4)
    assert [p.record_id for p in picks] == [
        "urgent-reprint",
        "first-early",
        "first-late",
        "reprint-early",
    ]
    assert picks[0].payload == b"sealed urgent-reprint"


def test_expired_leases_are_dropped_and_the_next_usable_ones_taken(conn) -> None:
    """Five expired leases ahead in the queue are dropped; the two after them are picked."""
    for i in range(5):
        lease_in(conn, f"expired-{i}", enrolled=f"2026-01-0{i + 1}", deadline=time.time() - 1)
    lease_in(conn, "ok-1", enrolled="2026-03-01")
    lease_in(conn, "ok-2", enrolled="2026-03-02")
    picks = buffer.next_records(conn, usable=unexpired, count=2)
    assert [p.record_id for p in picks] == ["ok-1", "ok-2"]
    dropped = conn.execute(
        "SELECT COUNT(*) FROM records WHERE status='dropped' AND payload IS NULL"
    ).fetchone()[0]
    assert dropped == 5


def test_purge_overwrites_closed_records_only(conn) -> None:
    """A purge clears the sealed payload of closed records and keeps queued ones."""
    lease_in(conn, "queued")
    lease_in(conn, "done")
    conn.execute("UPDATE records SET status='done' WHERE record_id='done'")
    assert buffer.purge_closed(conn) == 1
    payloads = dict(conn.execute("SELECT record_id, payload FROM records").fetchall())
    assert payloads == {"queued": b"sealed queued", "done": None}
