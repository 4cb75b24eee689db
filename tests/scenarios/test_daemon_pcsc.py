"""The daemon end to end with the PC/SC encoder: the simulated printer moves the blanks,
a virtual card behind a real pcscd stands for the chip at the encoder station (a fresh
blank at every power-on), and one blank's chip refuses the script."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.sim.printer import SimPrinter
from station.config import load_config
from station.daemon import Station
from tests.support.harness import Central, db_counts, receive, station_config, tray_labels, wait_for
from tests.support.pcscd import PcscEnv, pcsc_environment, wait_card
from tests.support.vcard import StrictCard, strict_card


@pytest.fixture
def env_with_a_bad_blank(pcscd, tmp_path: Path) -> Iterator[PcscEnv]:
    """Blanks whose second chip answers 6982 (security status not satisfied) to writes."""
    numbers = itertools.count(1)

    def blank() -> StrictCard:
        n = next(numbers)
        return strict_card(n, require_auth=(n == 2))

    with pcsc_environment(tmp_path, blank, with_sam=True) as env:
        wait_card(pcscd.readers[0])
        yield env


def test_records_print_through_pcsc_and_a_refused_chip_spoils_its_blank(
    tmp_path: Path, central: Central, env_with_a_bad_blank: PcscEnv
) -> None:
    """Ten records become ten good cards; the blank whose chip refused the script is
    rejected with reason 'failed encode' and counted spoiled in the ledger."""
    central.seed(10)
    config = station_config(
        tmp_path,
        central,
        chip={"driver": "pcsc", "connect_timeout_s": 5.0, "options": env_with_a_bad_blank.options},
    )
    receive(config, 20)
    cfg = load_config(config)
    station = Station.build(cfg)
    station.start()
    try:
        wait_for("10 printed", lambda: central.server.summary().printed == 10, timeout=120)
    finally:
        station.stop()
    conn = sqlite3.connect(cfg.db_path)
    rejected = conn.execute("SELECT reason FROM attempts WHERE state='rejected'").fetchall()
    spoiled = conn.execute("SELECT class, detail FROM ledger WHERE kind='spoiled'").fetchall()
    conn.close()
    assert len(rejected) == 1
    assert rejected[0][0].startswith("failed encode: step ")
    assert "SW 6982" in rejected[0][0]
    assert [s[0] for s in spoiled] == ["failed encode"]
    totals = db_counts(cfg.db_path)
    assert (totals["used"], totals["spoiled"]) == (10, 1)
    trays = SimPrinter(tmp_path / "printer.json").trays()
    assert (len(trays["output"]), len(trays["reject"])) == (10, 1)
    results = [r for rid in tray_labels(tmp_path) for r in central.server.results_for(str(rid))]
    serials = {r.card_serial for r in results if r.outcome == "printed"}
    assert len(serials) == 10  # each card's own chip serial, read at the encoder
