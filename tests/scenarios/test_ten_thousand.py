"""A long run: 10,000 cards through the simulator, with seeded faults; the ledger's daily
reports must match the simulator's own trays exactly."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from drivers.sim.printer import SimPrinter
from station.config import load_config
from station.daemon import Station
from station.policy import ZONES
from tests.support.harness import Central, db_counts, receive, run, station_config, wait_for

CARDS = int(os.environ.get("STATION_TEST_LONG_RUN", "10000"))


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_ten_thousand_cards_balance_with_the_trays(
    tmp_path: Path, central: Central, capsys: pytest.CaptureFixture[str]
) -> None:
    """After 10,000 records, printed + spoiled per the daily reports equal the output and
    reject trays card for card, and the stock equals the hopper."""
    central.seed(CARDS)
    hopper = CARDS + CARDS // 10
    config = station_config(
        tmp_path,
        central,
        pipeline={"max_attempts": 10},
        central={
            "buffer_target": 1000,
            "lease_batch": 500,
            "outbox_batch": 1000,
            "sync_interval_s": 0.2,
        },
        printer={
            "options": {
                "hopper": hopper,
                "seed": 10,
                "ribbon": 2 * CARDS,
                "faults": {"feed_jam": 0.005, "print_fail": 0.005, "chip_dead": 0.005},
            }
        },
    )
    receive(config, hopper)
    cfg = load_config(config)
    start = dt.datetime.now(ZONES["WIB"]).date()
    station = Station.build(cfg)
    station.start()
    try:
        wait_for(
            f"{CARDS} printed",
            lambda: central.server.summary().printed == CARDS,
            timeout=1200,
            every=1.0,
        )
        wait_for("an empty outbox", lambda: db_counts(cfg.db_path)["outbox"] == 0)
    finally:
        station.stop()
    end = dt.datetime.now(ZONES["WIB"]).date()
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    reports = [
        json.loads(run(capsys, config, "report", "daily", "--date", d.isoformat(), "--json")[1])
        for d in days
    ]
    printer = SimPrinter(tmp_path / "printer.json")
    trays = printer.trays()
    assert sum(r["printed"] for r in reports) == len(trays["output"]) == CARDS
    assert sum(r["spoiled"] for r in reports) == len(trays["reject"])
    assert reports[-1]["stock_end"] == len(trays["hopper"])
    assert reports[0]["received"] == hopper
    # Spoiled blanks add up twice over: once by the class offices report, once by cause.
    by_class = {
        k: sum(r[k] for r in reports)
        for k in reports[0]
        if k.startswith("spoiled_") and not k.startswith("spoiled_by_")
    }
    by_cause = {k: sum(r[k] for r in reports) for k in reports[0] if k.startswith("spoiled_by_")}
    assert sum(by_class.values()) == len(trays["reject"]) > 0
    assert sum(by_cause.values()) == len(trays["reject"])
