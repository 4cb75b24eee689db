"""The daemon end to end on the Evolis driver: the emulator behind a real pseudo-terminal,
the chip of each card at its encoder station, 50 records through to the centre."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.base import CHIP_DRIVERS
from tests.support.evolis_chip import EmulatorChip
from tests.support.evolis_emulator import EmulatorOnPty, EvolisEmulator
from tests.support.harness import Central, receive, running_station, station_config, wait_for


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorOnPty]:
    emu = EvolisEmulator(hopper=60, ribbon=500)
    link = EmulatorOnPty(emu)
    monkeypatch.setitem(CHIP_DRIVERS, "emulated", "tests.support.evolis_chip:EmulatorChip")
    monkeypatch.setattr(EmulatorChip, "emulator", emu)
    try:
        yield link
    finally:
        link.stop()


def test_fifty_records_through_the_evolis_emulator(
    tmp_path: Path, central: Central, emulator: EmulatorOnPty
) -> None:
    """50 seeded records come out as 50 printed cards in the emulator's output tray, each
    with a black panel, and 50 results at the centre."""
    central.seed(50)
    config = station_config(
        tmp_path,
        central,
        printer={"driver": "evolis", "options": emulator.options},
        chip={"driver": "emulated", "connect_timeout_s": 2.0},
    )
    receive(config, 60)
    with running_station(config):
        wait_for(
            "50 printed at the centre", lambda: central.server.summary().printed == 50, timeout=240
        )
    out = emulator.emulator.output
    assert len(out) == 50
    assert all(card.printed and "k" in card.panels for card in out)
    assert central.server.summary().printed_twice == []


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_evolis_prints_only_once_printing_is_on_disk(
    tmp_path: Path, central: Central, emulator: EmulatorOnPty, failing_disk: None
) -> None:
    """The Evolis print sequence ends by ejecting the card, so with a WAL that cannot be
    fsync'd no print starts at all: the encoded card stays at the contact station."""
    central.seed(1)
    config = station_config(
        tmp_path,
        central,
        printer={"driver": "evolis", "options": emulator.options},
        chip={"driver": "emulated", "connect_timeout_s": 2.0},
    )
    receive(config, 5)
    with running_station(config) as station:
        wait_for("the printer worker to stop", lambda: not station.worker.is_alive())
    emu = emulator.emulator
    assert "Ss" not in emu.names()
    assert emu.output == []
    assert emu.position == "contact"
