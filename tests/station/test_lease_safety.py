"""Leases: an expired lease is never started, and a printer stopped too long hands its
leases back so the centre can route the records elsewhere."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from drivers.sim.printer import SimPrinter
from station.config import load_config
from station.daemon import Station
from tests.support.harness import (
    Central,
    db_counts,
    receive,
    release_reasons,
    start_central,
    station_config,
    wait_for,
)


def lease_ages_at_start(central: Central) -> list[float]:
    """For each printed result: seconds between its lease's grant and the card's start."""
    conn = sqlite3.connect(central.db)
    try:
        rows = conn.execute(
            "SELECT json_extract(r.body_json, '$.started_at'), l.granted_ts, l.expires_ts "
            "FROM results r JOIN leases l ON l.lease_id = r.lease_id "
            "WHERE r.outcome = 'printed'"
        ).fetchall()
    finally:
        conn.close()
    import datetime as dt

    return [
        dt.datetime.fromisoformat(started).timestamp() - granted for started, granted, _ in rows
    ]


def test_expired_leases_are_dropped_never_started(tmp_path: Path) -> None:
    """Records whose lease ran out while the cover was open are dropped unprinted, then
    leased afresh: every card started well inside a live lease."""
    central = start_central(tmp_path, lease_ttl_s=3.0)
    try:
        central.seed(8)
        config = station_config(
            tmp_path,
            central,
            pipeline={"lease_margin_s": 1.0},
            central={"renew_every_s": 600.0, "buffer_target": 8},
        )
        receive(config, 20)
        cfg = load_config(config)
        station = Station.build(cfg)
        assert isinstance(station.printer, SimPrinter)
        station.printer.open_cover()
        station.start()
        try:
            wait_for("8 records buffered", lambda: db_counts(cfg.db_path)["buffered"] == 8)
            time.sleep(3.2)  # every lease is now expired (and past the margin)
            station.printer.close_cover()
            wait_for("8 printed", lambda: central.server.summary().printed == 8)
        finally:
            station.stop()
        conn = sqlite3.connect(cfg.db_path)
        dropped = conn.execute(
            "SELECT COUNT(*) FROM audit WHERE event='dropped' "
            "AND detail='lease expired before printing'"
        ).fetchone()[0]
        conn.close()
        assert dropped == 8
        ages = lease_ages_at_start(central)
        assert len(ages) == 8
        assert max(ages) < 3.0 - 1.0
        assert central.server.summary().printed_twice == []
    finally:
        central.server.stop()


def test_printer_stopped_too_long_hands_leases_back(tmp_path: Path, central: Central) -> None:
    """With the cover open past release_paused_after_s, buffered leases go back as 'paused'."""
    central.seed(5)
    config = station_config(tmp_path, central, central={"release_paused_after_s": 0.5})
    receive(config, 10)
    station = Station.build(load_config(config))
    assert isinstance(station.printer, SimPrinter)
    station.printer.open_cover()
    station.start()
    try:
        wait_for("leases released", lambda: len(release_reasons(central)) == 5)
    finally:
        station.stop()
    assert set(release_reasons(central)) == {"released:paused"}
    assert central.server.summary().ready == 5
