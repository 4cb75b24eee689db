"""The SQLite queue's per-request work does not grow with the queue: a centre with a
national backlog answers a heartbeat as fast as an empty one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from station.central import protocol as p
from station.central.queue_db import QueueDB
from tests.station.central.test_server import signed


def _heartbeat_steps(tmp_path: Path, records: int) -> int:
    """SQLite VM instructions (in thousands) one empty-outbox heartbeat takes."""
    db = QueueDB(tmp_path / f"q{records}.db")
    db.add_records(signed(i) for i in range(records))
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn: sqlite3.Connection = db._conn  # instrumenting the engine itself
    conn.set_progress_handler(count, 1000)
    db.heartbeat(p.Heartbeat(station_id="st-1", version="t", printer_state="ready",
                             blanks=10, buffer=0, outbox=0))
    conn.set_progress_handler(None, 0)
    db.close()
    return steps


def test_heartbeat_work_does_not_grow_with_the_queue(tmp_path: Path) -> None:
    """A heartbeat freeing a station's held records finds them by station, not by reading
    every record: 2,000 queued records cost it no more than 20 do."""
    small = _heartbeat_steps(tmp_path, 20)
    large = _heartbeat_steps(tmp_path, 2000)
    assert large <= small + 2, (small, large)
