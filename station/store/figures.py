"""The station's figures straight from the tables: blank totals, print pace, the counts
the status line and the heartbeat show."""

from __future__ import annotations

import sqlite3
import time

from station.store.states import HOLDING_A_BLANK, marks


def ledger_totals(conn: sqlite3.Connection) -> dict[str, int]:
    totals = {"received": 0, "used": 0, "spoiled": 0, "adjusted": 0}
    for kind, total in conn.execute("SELECT kind, total FROM ledger_sums"):
        totals[kind] = int(total)
    by_state = dict(
        conn.execute(
            f"SELECT state, COUNT(*) FROM attempts WHERE state IN ({marks(HOLDING_A_BLANK)}) "
            "GROUP BY state",
            HOLDING_A_BLANK,
        ).fetchall()
    )
    totals["inspection"] = int(by_state.pop("needs_inspection", 0))
    totals["in_printer"] = int(sum(by_state.values()))
    totals["in_stock"] = (
        totals["received"]
        + totals["adjusted"]
        - totals["used"]
        - totals["spoiled"]
        - totals["in_printer"]
        - totals["inspection"]
    )
    return totals


def print_rate_per_hour(conn: sqlite3.Connection, last: int = 50) -> float | None:
    """Good cards an hour at the printer's measured pace (median time of the last good
    cards, start to done), or None before five cards have been printed."""
    rows = [
        r[0]
        for r in conn.execute(
            "SELECT updated_at - started_at FROM attempts WHERE state='done' "
            "ORDER BY attempt_id DESC LIMIT ?",
            (last,),
        )
    ]
    if len(rows) < 5:
        return None
    rows.sort()
    return 3600.0 / max(float(rows[len(rows) // 2]), 1e-3)


def counts(conn: sqlite3.Connection, midnight: float | None = None) -> dict[str, int]:
    """What the status line and the heartbeat show, straight from the tables.
    ``midnight``: start of the office's day (default: the machine's local midnight)."""
    if midnight is None:
        midnight = time.mktime((*time.localtime()[:3], 0, 0, 0, 0, 0, -1))
    out = ledger_totals(conn)
    for key, sql, args in (
        ("buffered", "SELECT COUNT(*) FROM records WHERE status='queued'", ()),
        ("outbox", "SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL", ()),
        (
            "cards_today",
            "SELECT COUNT(*) FROM attempts WHERE state='done' AND updated_at>=?",
            (midnight,),
        ),
    ):
        out[key] = int(conn.execute(sql, args).fetchone()[0])
    return out
