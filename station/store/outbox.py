"""Results for the centre: written with the card's state change, then sent and acknowledged."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
import uuid

from station.link.protocol import CardResult, Outcome
from station.store.audit import audit


def write_result(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    outcome: Outcome,
    serial: str | None,
    reason: str | None,
) -> None:
    result = CardResult(
        result_id=uuid.uuid4().hex,
        record_id=row["record_id"],
        lease_id=row["lease_id"],
        outcome=outcome,
        card_serial=serial,
        started_at=_utc(row["started_at"]),
        finished_at=_utc(time.time()),
        reason=reason,
    )
    conn.execute(
        "INSERT INTO outbox(result_id, body, created_at) VALUES (?,?,?)",
        (result.result_id, result.model_dump_json(), time.time()),
    )


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def pending_results(conn: sqlite3.Connection, limit: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT result_id, body FROM outbox WHERE acked_at IS NULL ORDER BY created_at LIMIT ?",
        (limit,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def ack_results(conn: sqlite3.Connection, result_ids: list[str]) -> None:
    now = time.time()
    conn.executemany(
        "UPDATE outbox SET acked_at=? WHERE result_id=? AND acked_at IS NULL",
        [(now, rid) for rid in result_ids],
    )


def settle_refused(conn: sqlite3.Connection, refused: dict[str, str]) -> None:
    """Results the centre will never take (not this station's lease, ...): out of the
    outbox, each kept in the audit with the centre's reason."""
    ack_results(conn, list(refused))
    for result_id, reason in refused.items():
        row = conn.execute(
            "SELECT json_extract(body, '$.record_id') FROM outbox WHERE result_id=?", (result_id,)
        ).fetchone()
        audit(
            conn,
            "result_refused",
            record_id=row[0] if row else None,
            detail=f"{result_id}: {reason[:300]}",
        )
