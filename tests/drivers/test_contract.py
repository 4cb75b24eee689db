"""The driver contract on the simulator (always) and on real devices (``--hardware``).

Hardware runs read the drivers from the environment: ``EKTP_HW_PRINTER`` (a name in
``PRINTER_DRIVERS``) with ``EKTP_HW_PRINTER_OPTIONS`` (JSON), ``EKTP_HW_CHIP`` with
``EKTP_HW_CHIP_OPTIONS``; ``EKTP_HW_HOPPER_EMPTY=1`` when the hopper has been emptied
for the feeder-empty checks (otherwise those are skipped).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.base import CHIP_DRIVERS, PRINTER_DRIVERS, CardPrinter, ChipChannel, load_driver
from drivers.sim.encoder import SimChipChannel
from drivers.sim.printer import SimPrinter
from tests.drivers.conftest import FAST
from tests.support.contract import ChipContract, MakeChannel, MakePrinter, PrinterContract


class TestSimPrinterContract(PrinterContract):
    @pytest.fixture
    def make_printer(self, tmp_path: Path) -> MakePrinter:
        def make(blanks: int) -> CardPrinter:
            printer = SimPrinter(tmp_path / f"printer-{blanks}.json", timings=FAST, hopper=blanks)
            printer.open()
            return printer

        return make

    def output_tray(self, printer: CardPrinter) -> list[str] | None:
        assert isinstance(printer, SimPrinter)
        return printer.trays()["output"]

    def reopen(self, printer: CardPrinter) -> CardPrinter:
        assert isinstance(printer, SimPrinter)  # a crash closes nothing: all is in the file
        return SimPrinter(printer.state_file, timings=FAST)


class TestSimChipContract(ChipContract):
    @pytest.fixture
    def make_channel(self, tmp_path: Path) -> MakeChannel:
        def make(card_present: bool) -> ChipChannel:
            printer = SimPrinter(tmp_path / "chip-printer.json", timings=FAST, hopper=1)
            if card_present:
                printer.feed()
            return SimChipChannel(printer)

        return make

    def reopen(self, channel: ChipChannel) -> ChipChannel:
        assert isinstance(channel, SimChipChannel)
        assert isinstance(channel.printer, SimPrinter)
        return SimChipChannel(SimPrinter(channel.printer.state_file, timings=FAST))


def _hw(kind: str) -> tuple[type[Any], dict[str, Any]]:
    """The driver class and options of the device under test (skips when not given)."""
    name = os.environ.get(f"EKTP_HW_{kind}")
    if not name:
        pytest.skip(f"set EKTP_HW_{kind} to the driver name of the device under test")
    registry = PRINTER_DRIVERS if kind == "PRINTER" else CHIP_DRIVERS
    options: dict[str, Any] = json.loads(os.environ.get(f"EKTP_HW_{kind}_OPTIONS", "{}"))
    return load_driver(registry, name), options


@pytest.fixture
def hw_printer() -> Iterator[CardPrinter]:
    cls, options = _hw("PRINTER")
    printer: CardPrinter = cls.from_options(options)
    printer.open()
    printer.reject()
    yield printer
    printer.reject()
    printer.close()


@pytest.mark.hardware
class TestHardwarePrinterContract(PrinterContract):
    @pytest.fixture
    def make_printer(self, hw_printer: CardPrinter) -> MakePrinter:
        def make(blanks: int) -> CardPrinter:
            empty = os.environ.get("EKTP_HW_HOPPER_EMPTY") == "1"
            if (blanks == 0) != empty:
                pytest.skip("needs the hopper " + ("empty" if blanks == 0 else "loaded"))
            return hw_printer

        return make

    def reopen(self, printer: CardPrinter) -> CardPrinter:
        printer.close()  # all a killed process leaves behind: its link closed by the OS
        cls, options = _hw("PRINTER")
        again: CardPrinter = cls.from_options(options)
        return again


@pytest.mark.hardware
class TestHardwareChipContract(ChipContract):
    @pytest.fixture
    def make_channel(self, hw_printer: CardPrinter) -> MakeChannel:
        cls, options = _hw("CHIP")

        def make(card_present: bool) -> ChipChannel:
            if card_present:
                hw_printer.feed()
            channel: ChipChannel = cls.from_options(options, printer=hw_printer)
            return channel

        self._printer = hw_printer
        return make

    def reopen(self, channel: ChipChannel) -> ChipChannel:
        cls, options = _hw("CHIP")
        again: ChipChannel = cls.from_options(options, printer=self._printer)
        return again
