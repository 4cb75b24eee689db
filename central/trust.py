"""Who may say what at the centre: a result counts only from the station its lease was
granted to, and every refusal is written to the centre's ``audit`` table."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from station.link import protocol as p


@dataclass(frozen=True)
class AuditRow:
    at: float
    station_id: str
    peer: str | None
    endpoint: str
    event: str
    reason: str


def record_refusal(
    c: sqlite3.Connection,
    now: float,
    *,
    station_id: str,
    endpoint: str,
    reason: str,
    peer: str | None = None,
) -> None:
    """One refused request or result in the centre's audit (inside the caller's tx)."""
    c.execute(
        "INSERT INTO audit (at, station_id, peer, endpoint, event, reason)"
        " VALUES (?, ?, ?, ?, 'refused', ?)",
        (now, station_id[:64], peer, endpoint[:100], reason[:300]),
    )


def audit_rows(c: sqlite3.Connection, station_id: str | None = None) -> list[AuditRow]:
    rows = c.execute(
        "SELECT at, station_id, peer, endpoint, event, reason FROM audit"
        " WHERE ? IS NULL OR station_id = ? ORDER BY seq",
        (station_id, station_id),
    ).fetchall()
    return [AuditRow(float(r[0]), str(r[1]), r[2], str(r[3]), str(r[4]), str(r[5])) for r in rows]


def lease_fault(lease: tuple[str, str] | None, station_id: str, res: p.CardResult) -> str | None:
    """Why ``res`` may not be reported on its lease (``lease``: the lease's record id and
    station id, None when never granted), or None when it may."""
    lease_name = f"lease {res.lease_id[:64]!r}"
    if lease is None:
        return f"{lease_name} was never granted: record {res.record_id[:64]!r} not leased"
    if lease[0] != res.record_id:
        return f"{lease_name} was granted for another record, not {res.record_id[:64]!r}"
    if lease[1] != station_id:
        return f"{lease_name} is held by another station, not {station_id[:64]!r}"
    return None


def record_fault(c: sqlite3.Connection, station_id: str, res: p.CardResult) -> str | None:
    """Why a ``failed`` or ``deferred`` result may not touch its record now, or None."""
    if res.outcome in ("failed", "deferred"):
        row = c.execute(
            "SELECT state, lease_id, lease_station FROM records WHERE record_id = ?",
            (res.record_id,),
        ).fetchone()
        if row is not None and row[0] == "printed":
            return (
                f"record {res.record_id[:64]!r} is printed: a {res.outcome} result "
                "would contradict it"
            )
        if row is not None and row[1] is not None and row[2] != station_id:
            return f"record {res.record_id[:64]!r} is leased to another station now"
    return None


def refuse_foreign_lease(
    c: sqlite3.Connection, now: float, station_id: str, lease_id: str, endpoint: str
) -> None:
    """Audit a renew or release of a lease the centre granted to another station (a lease
    that is merely unknown or closed is answered as lost, not audited)."""
    row = c.execute("SELECT station_id FROM leases WHERE lease_id = ?", (lease_id,)).fetchone()
    if row is not None and row[0] != station_id:
        record_refusal(
            c,
            now,
            station_id=station_id,
            endpoint=endpoint,
            reason=f"lease {lease_id[:64]!r} is held by another station, not {station_id[:64]!r}",
        )
