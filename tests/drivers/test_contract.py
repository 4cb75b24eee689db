"""The driver contract on the simulator and the PC/SC channel (a real pcscd with a
virtual card through vpcd), always, and on real devices (``--hardware``).

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
from tests.support.pcsc_fixtures import PlugCard, encoder_options, require_pyscard
from tests.support.pcscd import Pcscd
from tests.support.vcard import strict_card


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


class TestPcscChipContract(ChipContract):
    """The PC/SC channel through pcscd and vpcd to the project's strict virtual card."""

    @pytest.fixture
    def make_channel(self, pcscd: Pcscd, plug: PlugCard) -> Iterator[MakeChannel]:
        require_pyscard()
        self._options = encoder_options(pcscd)
        self._opened: list[ChipChannel] = []

        def make(card_present: bool) -> ChipChannel:
            if card_present:
                plug(lambda: strict_card(7))
            return self.reopen(None)

        yield make
        for channel in self._opened:
            channel.close()

    def reopen(self, channel: ChipChannel | None) -> ChipChannel:
        """A new channel on the same reader (a crashed one keeps its handle meanwhile)."""
        again = load_driver(CHIP_DRIVERS, "pcsc").from_options(self._options)
        self._opened.append(again)
        return again


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
