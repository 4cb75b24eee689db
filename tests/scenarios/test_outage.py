"""The link to the centre drops: printing goes on from the buffer, results arrive later."""

from __future__ import annotations

from pathlib import Path

from central.server import CentralServer
from drivers.sim.printer import SimPrinter
from station.config import load_config
from station.daemon import Station
from tests.support.harness import Central, receive, station_config, status, wait_for


def printed_in_tray(path: Path) -> int:
    return len(SimPrinter(path).tray_cards("output"))


def test_printing_continues_while_the_server_is_down(tmp_path: Path, central: Central) -> None:
    """With the server stopped, cards keep coming out; once it is back, every result lands."""
    central.seed(60)
    port = int(central.server.url.rsplit(":", 1)[1])
    config = station_config(
        tmp_path,
        central,
        central={"buffer_target": 40, "lease_batch": 40},
        printer={"options": {"hopper": 80, "timings_ms": {"print": 30}}},
    )
    cfg = load_config(config)
    receive(config, 80)
    station = Station.build(cfg)
    station.start()
    tray = tmp_path / "printer.json"
    server = central.server
    try:
        wait_for("5 results at the server", lambda: server.summary().printed >= 5)
        server.stop()
        at_cut = printed_in_tray(tray)
        wait_for("10 more cards while offline", lambda: printed_in_tray(tray) >= at_cut + 10)
        wait_for(
            "the status to show the link down", lambda: status(cfg.db_path)["link"]["up"] is False
        )
        assert status(cfg.db_path)["counts"]["outbox"] >= 10
        server = CentralServer(central.db, port=port).start()
        wait_for(
            "all 60 printed at the server", lambda: server.summary().printed == 60, timeout=120
        )
        summary = server.summary()
    finally:
        station.stop()
        server.stop()
    assert summary.printed_twice == []
    assert printed_in_tray(tray) == 60
