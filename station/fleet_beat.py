"""What a heartbeat tells the centre's fleet view beyond the stock (issue 15): the
station's state and message code, the last error, spoiled blanks by class today and in
all, cards printed in all, free disk. Only codes and counts: never a personal value."""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from typing import Any

from station.status import StatusBoard

STATES = ("starting", "ready", "printing", "paused", "error", "stopped")


def spoiled_by_class(conn: sqlite3.Connection, since: float = 0.0) -> dict[str, int]:
    """Blanks spoiled since ``since`` (epoch s), by spoilage class ("unclassified" for
    rows written before classes existed)."""
    return {
        str(k): int(n)
        for k, n in conn.execute(
            "SELECT COALESCE(class, 'unclassified'), SUM(count) FROM ledger "
            "WHERE kind='spoiled' AND at>=? GROUP BY 1 ORDER BY 1",
            (since,),
        )
    }


def printed_total(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM attempts WHERE state='done'").fetchone()[0])


def fleet_fields(
    conn: sqlite3.Connection, board: StatusBoard, midnight: float, disk_free_mb: float | None
) -> dict[str, Any]:
    """The optional heartbeat fields (station/link/protocol.py Heartbeat)."""
    state = board.get("state") or {}
    error = board.get("last_error") or {}
    category = state.get("category")
    code = (state.get("msg") or {}).get("code")
    err_code = (error.get("msg") or {}).get("code")
    err_at = error.get("at")
    return {
        "state": category if category in STATES else None,
        "message_code": str(code)[:500] if code else None,
        "last_error_code": str(err_code)[:500] if err_code else None,
        "last_error_at": (
            dt.datetime.fromtimestamp(float(err_at), dt.UTC)
            if isinstance(err_at, int | float)
            else None
        ),
        "spoiled_today": spoiled_by_class(conn, midnight),
        "printed_total": printed_total(conn),
        "spoiled_total": spoiled_by_class(conn),
        "disk_free_mb": (
            round(disk_free_mb, 1)
            if disk_free_mb is not None and math.isfinite(disk_free_mb) and disk_free_mb >= 0
            else None
        ),
    }


def heartbeat_state(worker_problem: str | None, board: StatusBoard) -> str:
    """The printer state the centre is told: the worker's trouble first (a station that
    cannot print must not look well), else the printer's own state."""
    if worker_problem is not None:
        return f"error: {worker_problem}"
    return str(board.get("printer_state") or "unknown")
