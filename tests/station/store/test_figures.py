"""The blank ledger's figures on a real database file."""

from __future__ import annotations

import time

from station.store import figures


def test_ledger_totals_follow_every_kind_of_entry(conn) -> None:
    """Received, used, spoiled and adjusted entries add up to the stock in hand."""
    for kind, count in (
        ("received", 100),
        ("used", 1),
        ("used", 1),
        ("spoiled", 1),
        ("adjusted", -2),
    ):
        conn.execute(
            "INSERT INTO ledger(kind, count, at) VALUES (?, ?, ?)", (kind, count, time.time())
        )
    totals = figures.ledger_totals(conn)
    assert (totals["received"], totals["used"], totals["spoiled"], totals["adjusted"]) == (
        100,
        2,
        1,
        -2,
    )
    assert totals["in_stock"] == 95
