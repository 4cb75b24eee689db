"""Recovery after a power cut: each case the kill test found, cut at the exact moment."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from drivers.base import PrinterStatus
from drivers.errors import CoverOpen, DeviceOffline
from drivers.sim.printer import SimPrinter
from station.config import load_config
from station.daemon import Station
from station.papers.destruction import serial_label
from station.store import ledger as inventory
from station.store.attempts import resolve
from tests.support.harness import (
    Central,
    db_counts,
    receive,
    running_station,
    station_config,
    wait_for,
)

HOPPER = 10

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


class Killed(BaseException):
    """A power cut as the printer worker sees it: nothing after it runs."""


def config_for(tmp_path: Path, central: Central, **faults: float) -> Path:
    return station_config(
        tmp_path,
        central,
        pipeline={"max_attempts": 5},
        printer={"options": {"hopper": HOPPER, "seed": 1, "faults": faults}},
    )


def cut_at(config: Path, method: str, *, after: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the station until the printer's ``method`` is first called and cut the power
    there: before the real call, or after it returned or raised."""
    station = Station.build(load_config(config))
    printer = station.printer
    real = getattr(printer, method)

    def cut(*args: Any) -> Any:
        if after:
            try:
                real(*args)
            finally:
                raise Killed(method)  # the power goes, whatever happened
        raise Killed(method)

    monkeypatch.setattr(printer, method, cut)
    station.start()
    try:
        wait_for("the power cut", lambda: not station.worker.is_alive())
    finally:
        station.stop()
        monkeypatch.undo()


def printed_at_server(central: Central, n: int) -> bool:
    return central.server.summary().printed >= n


def attempts(config: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(load_config(config).db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [
            dict(r)
            for r in conn.execute(
                "SELECT a.attempt_id, a.state, a.reason, a.blank_serial, "
                "l.serial AS ledger_serial, l.class, l.serial_note "
                "FROM attempts a LEFT JOIN ledger l "
                "ON l.attempt_id = a.attempt_id AND l.kind = 'spoiled' ORDER BY a.attempt_id"
            )
        ]
    finally:
        conn.close()


def assert_ledger_is_the_printer(config: Path, tmp_path: Path) -> dict[str, int]:
    """The ledger's stock, used and spoiled blanks are the hopper and the two trays."""
    totals = db_counts(load_config(config).db_path)
    printer = SimPrinter(tmp_path / "printer.json")
    trays = printer.trays()
    assert printer.card_in_path() is None
    assert (totals["in_stock"], totals["used"], totals["spoiled"]) == (
        len(trays["hopper"]),
        len(trays["output"]),
        len(trays["reject"]),
    )
    assert totals["inspection"] == totals["in_printer"] == 0
    return totals


def finish(config: Path, central: Central, printed: int = 1) -> None:
    with running_station(config):
        wait_for("the record printed", lambda: printed_at_server(central, printed))


def test_feed_jam_rejected_then_cut_before_the_commit_is_spoiled_not_restocked(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A jammed blank moved to the reject tray just before a power cut is counted spoiled
    (with its serial) after the restart, never back in stock."""
    central.seed(1)
    config = config_for(tmp_path, central, feed_jam=1.0)
    receive(config, HOPPER)
    cut_at(config, "reject", after=True, monkeypatch=monkeypatch)
    (jammed,) = SimPrinter(tmp_path / "printer.json").trays()["reject"]
    finish(config_for(tmp_path, central), central)
    first = attempts(config)[0]
    assert (first["state"], first["class"], first["ledger_serial"]) == (
        "rejected",
        "failed encode",
        jammed,
    )
    assert_ledger_is_the_printer(config, tmp_path)


def test_cover_open_with_a_card_inside_comes_up_paused_and_finishes_when_closed(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the cover open and a card in the printer, start-up does not fail: the station
    is PAUSED saying to close the cover; once closed, the card goes to the reject tray,
    counted spoiled without asking a person, and the record prints."""
    central.seed(1)
    config = config_for(tmp_path, central)
    receive(config, HOPPER)
    cut_at(config, "print_card", after=False, monkeypatch=monkeypatch)
    SimPrinter(tmp_path / "printer.json").open_cover()
    station = Station.build(load_config(config))
    station.start()
    try:
        state = station.board.get("state")
        assert state["category"] == "paused"
        assert "cover open" in state["message"]
        assert state["action"].startswith("close the printer cover")
        assert station.worker.is_alive()
        assert attempts(config)[0]["state"] == "printing"
        station.printer.close_cover()  # type: ignore[attr-defined]
        wait_for("the record printed", lambda: printed_at_server(central, 1))
    finally:
        station.stop()
    first = attempts(config)[0]
    assert (first["state"], first["class"]) == ("rejected", "failed print")
    assert_ledger_is_the_printer(config, tmp_path)


def test_printed_card_still_inside_is_spoiled_without_a_person(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A card printed but still in the printer at the power cut cannot be in the output
    tray: recovery rejects it and settles it spoiled, no inspection."""
    central.seed(1)
    config = config_for(tmp_path, central)
    receive(config, HOPPER)
    cut_at(config, "print_card", after=True, monkeypatch=monkeypatch)
    finish(config, central)
    assert attempts(config)[0]["state"] == "rejected"
    assert_ledger_is_the_printer(config, tmp_path)


def test_print_failure_rejected_then_cut_is_spoiled_without_a_person(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed print sent to the reject tray just before a power cut is known to be in
    the reject tray (the mark journaled before the move): spoiled, no inspection."""
    central.seed(1)
    config = config_for(tmp_path, central, print_fail=1.0)
    receive(config, HOPPER)
    cut_at(config, "reject", after=True, monkeypatch=monkeypatch)
    finish(config_for(tmp_path, central), central)
    first = attempts(config)[0]
    assert (first["state"], first["class"]) == ("rejected", "failed print")
    assert_ledger_is_the_printer(config, tmp_path)


def test_ejected_card_cut_before_its_result_needs_a_person(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A card that may be good in the output tray is never decided by the station: the
    attempt waits for a person, the record is not printed again."""
    central.seed(1)
    config = config_for(tmp_path, central)
    receive(config, HOPPER)
    cut_at(config, "eject", after=True, monkeypatch=monkeypatch)
    with running_station(config) as station:
        wait_for("recovery", lambda: station.board.get("recovered") == 1)
    (first,) = attempts(config)
    assert first["state"] == "needs_inspection"
    assert first["reason"].startswith("restart after printing began")
    assert central.server.summary().printed == 0


def open_cover_at_print(printer: SimPrinter, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cover is opened while the first card is at the contact station."""
    real = printer.print_card

    def print_card(job: Any) -> None:
        monkeypatch.setattr(printer, "print_card", real)
        printer.open_cover()
        real(job)

    monkeypatch.setattr(printer, "print_card", print_card)


def test_card_left_after_a_failed_reject_is_charged_once_and_not_to_the_next(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cover opens mid-card, so the card cannot be rejected and stays inside; when the
    cover is closed the card goes to the reject tray, its own attempt is spoiled once
    (no person needed) and the next attempt feeds its own blank."""
    central.seed(1)
    config = config_for(tmp_path, central)
    receive(config, HOPPER)
    station = Station.build(load_config(config))
    printer = station.printer
    assert isinstance(printer, SimPrinter)
    open_cover_at_print(printer, monkeypatch)
    station.start()
    try:
        wait_for(
            "the paused state",
            lambda: (
                "a card is in the printer (reject: cover open)"
                in station.board.get("state")["message"]
            ),
        )
        assert printer.card_in_path() is not None
        printer.close_cover()
        wait_for("the record printed", lambda: printed_at_server(central, 1))
    finally:
        station.stop()
    states = [a["state"] for a in attempts(config)]
    assert states == ["rejected", "done"]
    assert_ledger_is_the_printer(config, tmp_path)


def test_card_left_in_the_printer_after_a_spoiled_verdict_adds_no_second_row(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A technician resolves the attempt spoiled but leaves its card inside: the next
    start moves it to the reject tray without a second spoiled row."""
    central.seed(1)
    config = config_for(tmp_path, central)
    receive(config, HOPPER)
    station = Station.build(load_config(config))
    printer = station.printer
    assert isinstance(printer, SimPrinter)
    open_cover_at_print(printer, monkeypatch)
    monkeypatch.setattr(station.pipeline.recovery, "pause", lambda: None)  # killed before
    station.start()
    try:
        wait_for("the inspection", lambda: db_counts(station.cfg.db_path)["inspection"] == 1)
    finally:
        station.stop()
    monkeypatch.undo()
    technician = SimPrinter(tmp_path / "printer.json")
    technician.close_cover()
    conn = sqlite3.connect(load_config(config).db_path)
    conn.row_factory = sqlite3.Row
    with conn:
        resolve(conn, 1, good=False, serial=None, max_attempts=5)
    conn.close()
    finish(config, central)
    assert [a["state"] for a in attempts(config)] == ["rejected", "done"]
    assert_ledger_is_the_printer(config, tmp_path)


def test_unreachable_printer_at_start_waits_and_recovers_when_back(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A printer that does not answer at start-up leaves the station up with an ERROR
    state naming the printer; recovery finishes when it answers again."""
    central.seed(1)
    config = config_for(tmp_path, central)
    receive(config, HOPPER)
    cut_at(config, "print_card", after=False, monkeypatch=monkeypatch)
    station = Station.build(load_config(config))
    printer = station.printer
    real = printer.status
    offline = [True]

    def status() -> PrinterStatus:
        if offline[0]:
            raise DeviceOffline("status: device unreachable (USBError)")
        return real()

    monkeypatch.setattr(printer, "status", status)
    station.start()
    try:
        state = station.board.get("state")
        assert state["category"] == "error"
        assert state["message"].startswith("recovery waits for the printer")
        assert attempts(config)[0]["state"] == "printing"
        offline[0] = False
        wait_for("the record printed", lambda: printed_at_server(central, 1))
    finally:
        station.stop()
    assert attempts(config)[0]["state"] == "rejected"
    assert_ledger_is_the_printer(config, tmp_path)


def test_feed_jam_on_a_printer_without_serials_says_why_the_serial_is_unknown(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A jammed blank whose serial no device could read is listed in the berita acara
    with the reason, not as "(unknown)"."""
    central.seed(1)
    config = config_for(tmp_path, central, feed_jam=1.0)
    receive(config, HOPPER)
    station = Station.build(load_config(config))
    printer = station.printer
    real = printer.status
    monkeypatch.setattr(printer, "status", lambda: dataclasses.replace(real(), card_serial=None))
    station.start()
    try:
        wait_for("a spoiled blank", lambda: db_counts(station.cfg.db_path)["spoiled"] >= 1)
    finally:
        station.stop()
    conn = sqlite3.connect(load_config(config).db_path)
    conn.row_factory = sqlite3.Row
    try:
        first = inventory.spoiled_pending(conn)[0]
    finally:
        conn.close()
    assert first["serial"] is None
    assert serial_label(first) == "unknown: feed jam before the chip was read"


def test_unreachable_printer_with_nothing_to_recover_is_the_printer_s_own_error(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no attempt left open, a printer that does not answer shows as the printer's
    error, not as recovery waiting."""
    config = config_for(tmp_path, central)
    station = Station.build(load_config(config))
    printer = station.printer

    def status() -> PrinterStatus:
        raise DeviceOffline("status: device unreachable (USBError)")

    monkeypatch.setattr(printer, "status", status)
    station.start()
    try:
        assert station.pipeline.recovery.pending is None
        wait_for(
            "the printer's error",
            lambda: str((station.board.get("state") or {}).get("message", "")).startswith(
                "printer:"
            ),
        )
    finally:
        station.stop()


def test_card_taken_out_by_hand_before_printing_is_settled_without_a_person(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blank whose chip failed and that the printer could not reject waits for no
    verdict: once a technician has taken it out, it is spoiled (it never printed)."""
    central.seed(1)
    config = config_for(tmp_path, central, chip_dead=1.0)
    receive(config, HOPPER)
    station = Station.build(load_config(config))
    printer = station.printer
    assert isinstance(printer, SimPrinter)
    by_hand = printer.reject

    def stuck() -> None:
        raise CoverOpen("reject: cover open")

    monkeypatch.setattr(printer, "reject", stuck)
    station.start()
    try:
        wait_for("the inspection", lambda: db_counts(station.cfg.db_path)["inspection"] == 1)
        by_hand()  # the technician takes the card out into the reject tray
        wait_for("the attempt settled", lambda: attempts(config)[0]["state"] == "rejected")
    finally:
        station.stop()
    first = attempts(config)[0]
    assert (first["state"], first["class"]) == ("rejected", "failed encode")
