"""The lease side of the buffer: renewals, lost leases, and leases handed back."""

from __future__ import annotations

import sqlite3
import time

from station.store.audit import audit
from station.store.buffer import drop_record


def active_leases(conn: sqlite3.Connection) -> list[str]:
    """Leases to keep renewing: records buffered, in the printer or awaiting inspection,
    and records printed or failed whose result the centre has not acknowledged yet (so
    the centre never hands a printed record to another station meanwhile)."""
    # From the few results pending to their records, not from every closed record to the
    # outbox (that read a year of records at each renewal: bench/endurance.py).
    rows = conn.execute(
        "SELECT lease_id FROM records WHERE status IN ('queued','printing','inspection') "
        "UNION ALL SELECT r.lease_id FROM outbox o JOIN records r "
        "ON r.record_id = json_extract(o.body, '$.record_id') "
        "WHERE o.acked_at IS NULL AND r.status IN ('done','failed')"
    ).fetchall()
    return [r[0] for r in rows]


def renew_leases(
    conn: sqlite3.Connection, renewed: dict[str, tuple[float, float]], lost: list[str]
) -> None:
    conn.executemany(
        "UPDATE records SET lease_deadline=?, lease_mono=? WHERE lease_id=?",
        [(deadline, mono, lid) for lid, (deadline, mono) in renewed.items()],
    )
    for lease_id in lost:
        row = conn.execute(
            "SELECT record_id FROM records WHERE lease_id=? AND status='queued'", (lease_id,)
        ).fetchone()
        if row:
            drop_record(conn, row[0], "lease lost at the centre")


def excess_leases(
    conn: sqlite3.Connection, capacity: int, urgent_only: bool = False
) -> list[tuple[str, str]]:
    """(lease_id, record_id) of queued records beyond ``capacity``, last in policy order;
    with ``urgent_only`` every record that is not urgent is excess too."""
    if (
        not urgent_only
        and conn.execute("SELECT COUNT(*) FROM records WHERE status='queued'").fetchone()[0]
        <= capacity
    ):
        return []  # the usual answer, without sorting the whole buffer (bench/endurance.py)
    rows = conn.execute(
        "SELECT lease_id, record_id, urgent FROM records WHERE status='queued' "
        "ORDER BY urgent DESC, kind='reprint', enrolled_at"
    ).fetchall()
    return [(r[0], r[1]) for i, r in enumerate(rows) if i >= capacity or (urgent_only and not r[2])]


def release_records(conn: sqlite3.Connection, leases: list[tuple[str, str]], reason: str) -> None:
    """Take records out of the buffer before telling the centre: once this commits they
    can never start here, so the centre may hand them to another station."""
    now = time.time()
    for lease_id, record_id in leases:
        conn.execute(
            "UPDATE records SET status='released', payload=NULL, closed_at=? "
            "WHERE record_id=? AND status='queued'",
            (now, record_id),
        )
        conn.execute(
            "INSERT INTO releases(lease_id, record_id, reason, at) VALUES (?,?,?,?)",
            (lease_id, record_id, reason, now),
        )
        audit(conn, "released", record_id=record_id, detail=reason)


def unsent_releases(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """reason → lease ids released here but not yet acknowledged by the centre."""
    out: dict[str, list[str]] = {}
    for lease_id, reason in conn.execute(
        "SELECT lease_id, reason FROM releases WHERE sent_at IS NULL ORDER BY release_id"
    ):
        out.setdefault(reason, []).append(lease_id)
    return out


def releases_sent(conn: sqlite3.Connection, lease_ids: list[str]) -> None:
    conn.executemany(
        "UPDATE releases SET sent_at=? WHERE lease_id=? AND sent_at IS NULL",
        [(time.time(), lid) for lid in lease_ids],
    )
