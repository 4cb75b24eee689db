"""The card state machine against the simulator: faults, bad records, the ledger."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from central.seed import load_or_create_key, signed_records
from drivers.sim.printer import SimPrinter
from station.config import load_config
from station.records import SignedRecord
from station.store import figures
from tests.support.harness import Central, receive, running_station, station_config, wait_for


def run_until(config: Path, central: Central, done: int) -> dict[str, int]:
    with running_station(config) as station:
        wait_for(
            f"{done} records closed at the server",
            lambda: (s := central.server.summary()).printed + s.failed >= done,
        )
        wait_for("an empty outbox", lambda: station.db.run(figures.counts)["outbox"] == 0)
    conn = sqlite3.connect(load_config(config).db_path)
    try:
        return figures.counts(conn)
    finally:
        conn.close()


def test_faults_spoil_blanks_and_records_are_retried(tmp_path: Path, central: Central) -> None:
    """Jams, print failures and dead chips send cards to the reject tray, count the blank
    spoiled, report it, and the record still ends as one good card."""
    central.seed(40)
    config = station_config(
        tmp_path,
        central,
        pipeline={"max_attempts": 10},
        printer={
            "options": {
                "hopper": 120,
                "seed": 3,
                "faults": {"feed_jam": 0.08, "print_fail": 0.08, "chip_dead": 0.08},
            }
        },
    )
    receive(config, 120)
    totals = run_until(config, central, 40)
    printer = SimPrinter(tmp_path / "printer.json")
    trays = printer.trays()
    assert central.server.summary().printed == 40
    assert totals["spoiled"] == len(trays["reject"]) > 0
    assert totals["used"] == len(trays["output"]) == 40
    assert totals["in_stock"] == len(trays["hopper"])
    assert central.server.summary().results == 40 + totals["spoiled"]


def test_forged_record_is_reported_failed_and_never_printed(
    tmp_path: Path, central: Central
) -> None:
    """A record whose signature does not verify is reported failed with the reason."""
    _, key = load_or_create_key(central.key_dir)
    good = next(signed_records(1, key, seed=9, start_index=500))
    forged_record = dict(good.record, issue_place="PALSU")
    forged = SignedRecord(record=forged_record, key_id=good.key_id, signature=good.signature)
    central.server.add_records([forged])
    central.seed(3)
    config = station_config(tmp_path, central)
    receive(config, 10)
    run_until(config, central, 4)
    results = central.server.results_for(good.record_id())
    assert [(r.outcome, r.reason) for r in results] == [("failed", "signature does not verify")]
    labels = {c.label for c in SimPrinter(tmp_path / "printer.json").tray_cards("output")}
    assert good.record_id() not in labels
    assert len(labels) == 3


def test_no_blanks_in_the_ledger_pauses_with_the_fix(tmp_path: Path, central: Central) -> None:
    """With no blanks received, nothing is printed and the status says what to run."""
    central.seed(3)
    with running_station(station_config(tmp_path, central)) as station:
        wait_for(
            "the paused state",
            lambda: (station.board.get("state") or {}).get("category") == "paused",
        )
        state = station.board.get("state")
    assert state["message"] == "no blanks in stock per the ledger"
    assert state["action"] == "receive blanks: station blanks receive COUNT --batch ID"
    assert central.server.summary().printed == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_printed_card_stays_inside_until_printing_is_on_disk(
    tmp_path: Path, central: Central, failing_disk: None
) -> None:
    """When the WAL cannot be fsync'd, the printed card is never ejected to the output
    tray: the printer worker stops with it inside, for recovery to move to the reject
    tray at the next start."""
    central.seed(1)
    config = station_config(tmp_path, central)
    receive(config, 5)
    with running_station(config) as station:
        wait_for("the printer worker to stop", lambda: not station.worker.is_alive())
    printer = SimPrinter(tmp_path / "printer.json")
    inside = printer.card_in_path()
    assert inside is not None
    assert inside.label is not None
    assert printer.tray_cards("output") == []
