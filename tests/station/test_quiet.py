"""The sync thread's rounds keep away from the printer's durable points."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from station.cli.main import main
from station.config import load_config
from station.daemon import Station
from tests.support.harness import Central, station_config, wait_for

FEED_S = 1.5


def delays(tmp_path: Path, central: Central, *, max_wait_s: float | None) -> list[float]:
    """Print two cards with a slow feed; seconds from each result's writing (its
    ``finished_at``) to its arrival at the centre, in printing order."""
    central.seed(2)
    config = station_config(
        tmp_path,
        central,
        printer={"options": {"timings_ms": {"feed": FEED_S * 1000, "print": 300, "eject": 50}}},
    )
    assert main(["--config", str(config), "blanks", "receive", "5", "--batch", "Q"]) == 0
    station = Station.build(load_config(config))
    if max_wait_s is not None:
        station.quiet.max_wait_s = max_wait_s
    station.start()
    try:
        wait_for(
            "2 printed results at the server",
            lambda: central.server.summary().printed == 2,
            timeout=30,
        )
    finally:
        station.stop()
    conn = sqlite3.connect(central.db)
    try:
        rows = conn.execute("SELECT body_json, received_ts FROM results").fetchall()
    finally:
        conn.close()
    out = [
        (dt.datetime.fromisoformat(json.loads(body)["finished_at"]).timestamp(), received)
        for body, received in rows
    ]
    return [received - finished for finished, received in sorted(out)]


def test_a_result_goes_out_while_the_next_face_prints(tmp_path: Path, central: Central) -> None:
    """A result written at a card boundary is sent once the next card's face is printing
    (after its feed), not during the feed; the last one as soon as the printer is idle."""
    first, last = delays(tmp_path, central, max_wait_s=None)
    assert FEED_S <= first < FEED_S + 1.0
    assert last < 0.5


def test_a_stuck_step_holds_results_back_only_so_long(tmp_path: Path, central: Central) -> None:
    """When a printer step lasts longer than the window's wait, results go out anyway."""
    first, _ = delays(tmp_path, central, max_wait_s=0.3)
    assert first < FEED_S - 0.5


def test_no_sync_transaction_lands_between_a_cards_durable_points(
    tmp_path: Path, central: Central
) -> None:
    """While a card is between its card boundary and its print (the window shut), the sync
    thread starts no transaction on the database: each step of a round waits for the
    window, not only the round's start (a step that checked the window just as it shut
    is let through: the printer never waits for the sync thread)."""
    central.seed(10)
    config = station_config(
        tmp_path,
        central,
        central={"sync_interval_s": 0.05, "heartbeat_every_s": 0.2, "lease_batch": 2},
        printer={"options": {"timings_ms": {"feed": 400, "print": 60, "eject": 20}}},
    )
    assert main(["--config", str(config), "blanks", "receive", "12", "--batch", "Q"]) == 0
    station = Station.build(load_config(config))
    shut_at: list[float | None] = [None]
    close, open_ = station.quiet.close, station.quiet.open

    def closing() -> None:
        if shut_at[0] is None:
            shut_at[0] = time.monotonic()
        close()

    def opening() -> None:
        shut_at[0] = None
        open_()

    station.quiet.close, station.quiet.open = closing, opening  # type: ignore[method-assign]
    calls, late = [0], []
    inner = station.db.run

    def run(fn: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "sync":
            calls[0] += 1
            since = shut_at[0]
            if since is not None and time.monotonic() - since > 0.05:
                late.append(getattr(fn, "__qualname__", repr(fn)))
        return inner(fn, **kwargs)

    station.db.run = run  # type: ignore[method-assign]
    station.start()
    try:
        wait_for("10 printed", lambda: central.server.summary().printed == 10, timeout=90)
    finally:
        station.stop()
    assert calls[0] > 20  # the sync thread did work all along
    assert late == []
