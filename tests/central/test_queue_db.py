"""The SQLite queue's per-request work does not grow with the queue: a centre with a
national backlog answers a heartbeat as fast as an empty one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from central.queue_db import QueueDB
from station.link import protocol as p
from tests.support.postgres import running_cluster
from tests.support.queue import KEY, signed

KEY_PAIR = ("central-1", KEY)


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
    db.heartbeat(
        p.Heartbeat(
            station_id="st-1", version="t", printer_state="ready", blanks=10, buffer=0, outbox=0
        )
    )
    conn.set_progress_handler(None, 0)
    db.close()
    return steps


def test_heartbeat_work_does_not_grow_with_the_queue(tmp_path: Path) -> None:
    """A heartbeat freeing a station's held records finds them by station, not by reading
    every record: 2,000 queued records cost it no more than 20 do."""
    small = _heartbeat_steps(tmp_path, 20)
    large = _heartbeat_steps(tmp_path, 2000)
    assert large <= small + 2, (small, large)


def test_lease_walks_the_queue_on_the_index_holding_lease_columns(tmp_path: Path) -> None:
    """The lease query finds free records by the queue index that carries the lease
    columns, so records already leased are skipped without reading their rows."""
    db = QueueDB(tmp_path / "q.db")
    db.add_records(signed(i) for i in range(20))
    seen: list[str] = []
    conn: sqlite3.Connection = db._conn  # instrumenting the engine itself
    conn.set_trace_callback(seen.append)
    db.lease(p.LeaseRequest(station_id="st-1", max=5), 60.0, KEY_PAIR)
    conn.set_trace_callback(None)
    query = next(s for s in seen if s.startswith("SELECT record_id, signed_json"))
    plan = " ".join(str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + query))
    db.close()
    assert "records_queue_leases" in plan, plan


def test_bulk_add_on_postgresql_leaves_the_planner_knowing_the_queue(tmp_path: Path) -> None:
    """After records are added on PostgreSQL the planner knows how many there are (it
    analysed the table), so the first leases walk the queue index instead of sorting it."""
    from central.queue_pg import PgQueueDB

    with running_cluster() as cluster:
        db = PgQueueDB(cluster.new_database())
        db.add_records(signed(i) for i in range(30))
        with db._read() as c:  # instrumenting the engine itself
            tuples = c.execute(
                "SELECT reltuples FROM pg_class WHERE relname = 'records'"
            ).fetchone()[0]
        db.close()
    assert tuples == 30
