"""The audit trail: one row per event, in the transaction of the change it records."""

from __future__ import annotations

import sqlite3
import time


def audit(
    conn: sqlite3.Connection,
    event: str,
    *,
    attempt_id: int | None = None,
    record_id: str | None = None,
    detail: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO audit(at, event, attempt_id, record_id, detail) VALUES (?,?,?,?,?)",
        (time.time(), event, attempt_id, record_id, detail),
    )
