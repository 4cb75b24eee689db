"""Lease renewal at scale: a station holding more leases than one request carries."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from drivers.sim.printer import SimPrinter
from station import sync
from station.config import load_config
from station.daemon import Station
from tests.support.harness import Central, db_counts, receive, station_config, wait_for


def expiries(central: Central) -> dict[str, float]:
    conn = sqlite3.connect(central.db)
    try:
        return dict(
            conn.execute("SELECT lease_id, lease_expires FROM records WHERE lease_id IS NOT NULL")
        )
    finally:
        conn.close()


def test_leases_are_renewed_in_chunks_and_all_of_them(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Renewals go out a chunk at a time (one request for the 10,300 leases of
    bench/endurance.py broke the protocol's limit and killed the sync thread): every
    lease is renewed, and the sync thread lives on."""
    monkeypatch.setattr(sync, "RENEW_CHUNK", 3)
    central.seed(8)
    config = station_config(tmp_path, central, central={"renew_every_s": 0.3, "buffer_target": 8})
    receive(config, 20)
    cfg = load_config(config)
    station = Station.build(cfg)
    assert isinstance(station.printer, SimPrinter)
    station.printer.open_cover()  # nothing prints: the leases stay held
    station.start()
    try:
        wait_for("8 records buffered", lambda: db_counts(cfg.db_path)["buffered"] == 8)
        before = expiries(central)
        assert len(before) == 8
        time.sleep(0.1)
        wait_for(
            "every lease renewed",
            lambda: all(expiries(central)[lid] > t for lid, t in before.items()),
            timeout=30,
        )
        assert station.sync._thread.is_alive()
    finally:
        station.stop()
