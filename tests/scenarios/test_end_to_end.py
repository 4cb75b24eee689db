"""The whole station in one process: server on loopback, daemon threads, simulated printer."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from drivers.sim.printer import SimPrinter
from station.config import load_config
from station.daemon import Station
from tests.support.harness import (
    Central,
    db_counts,
    personal_values,
    receive,
    station_config,
    wait_for,
)


def test_200_records_become_200_good_cards(
    tmp_path: Path, central: Central, capfd: pytest.CaptureFixture[str]
) -> None:
    """200 seeded records come out as 200 good cards, each once, all acknowledged; no
    log line and no byte of the station's database carries a NIK or a name."""
    central.seed(200)
    config = station_config(tmp_path, central, printer={"options": {"hopper": 210}})
    cfg = load_config(config)
    receive(config, 210)
    station = Station.build(cfg)
    station.start()
    try:
        wait_for(
            "200 printed results at the server",
            lambda: central.server.summary().printed == 200,
            timeout=120,
        )
        wait_for("an empty outbox", lambda: db_counts(cfg.db_path)["outbox"] == 0)
    finally:
        station.stop()
    summary = central.server.summary()
    assert summary.printed == 200
    assert summary.printed_twice == []
    assert summary.duplicate_results == 0
    printer = SimPrinter(tmp_path / "printer.json")
    labels = Counter(card.label for card in printer.tray_cards("output"))
    assert len(labels) == 200
    assert set(labels.values()) == {1}
    totals = db_counts(cfg.db_path)
    assert totals["used"] == 200
    assert totals["spoiled"] == 0
    assert totals["received"] == totals["in_stock"] + totals["used"] + totals["spoiled"]
    assert len(printer.trays()["hopper"]) == totals["in_stock"] == 10
    logged = capfd.readouterr()
    at_rest = b"".join(p.read_bytes() for p in cfg.state_dir.iterdir() if p.is_file())
    for value in personal_values(central):
        assert value.decode() not in logged.out + logged.err
        assert value not in at_rest
    assert "card_printed" in logged.out + logged.err  # the log was captured at all
