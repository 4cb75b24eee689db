"""The behaviour every printer and chip driver must show, as reusable pytest classes.

A driver's test module subclasses :class:`PrinterContract` / :class:`ChipContract` (the
``Test`` prefix makes pytest collect the subclass, not these bases) and provides:

* ``make_printer``: a fixture returning ``factory(blanks) -> CardPrinter``, the printer
  opened, its path empty, ``blanks`` cards in the hopper (a hardware factory may skip
  when it cannot arrange that count, e.g. an empty hopper);
* ``make_channel``: a fixture returning ``factory(card_present) -> ChipChannel`` with a
  blank parked at the contact station, or none.

:meth:`PrinterContract.output_tray` may be overridden where the output tray can be read.
Both contracts call ``reopen(device)``, which a subclass must provide: a new driver
instance on the same device, ``device`` left as a killed process leaves it (the OS
closed its links, nothing else was done; the previous card stays in the path).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import pytest
from PIL import Image, ImageDraw

from drivers.base import CardPosition, CardPrinter, ChipChannel, PrinterState, PrintJob
from drivers.errors import ChipError, FeederEmpty, NoCard

MakePrinter = Callable[[int], CardPrinter]
MakeChannel = Callable[[bool], ChipChannel]


def _face_png() -> bytes:
    """A minimal card face: the PNG format real drivers take (1016 × 648, black text)."""
    img = Image.new("RGB", (1016, 648), (235, 240, 250))
    ImageDraw.Draw(img).rectangle((60, 60, 400, 90), fill=(0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


JOB = PrintJob(label="contract", front=_face_png())


def _sw(response: bytes) -> int:
    return int.from_bytes(response[-2:], "big")


class PrinterContract:
    """What any CardPrinter must do; see the module docstring for the fixture."""

    def output_tray(self, printer: CardPrinter) -> list[str] | None:
        """The output tray's card serials when the device can tell (else None)."""
        return None

    def reopen(self, printer: CardPrinter) -> CardPrinter:
        """A new driver instance on the device of ``printer``, as after a crash."""
        raise NotImplementedError

    def test_reopen_after_a_crash_rejects_the_card_left_in_the_path(
        self, make_printer: MakePrinter
    ) -> None:
        """A new instance after a crash sees the card the old one fed, and rejects it."""
        printer = make_printer(2)
        before = printer.status().hopper
        serial = printer.feed()
        again = self.reopen(printer)
        again.open()
        found = again.status()
        assert found.card is CardPosition.CONTACT
        if serial is not None and found.card_serial is not None:
            assert found.card_serial == serial
        again.reject()
        after = again.status()
        assert after.card is CardPosition.NONE
        if before is not None and after.hopper is not None:
            assert after.hopper == before - 1
        assert self.output_tray(again) in (None, [])
        again.feed()  # the path is usable again
        assert again.status().card is CardPosition.CONTACT

    def test_with_releases_the_device_and_close_twice_is_harmless(
        self, make_printer: MakePrinter
    ) -> None:
        """Leaving ``with`` frees the device for a new instance; closing again raises nothing."""
        with make_printer(1) as printer:
            assert printer.status().state is PrinterState.READY
        printer.close()
        again = self.reopen(printer)
        again.open()
        assert again.status().state is PrinterState.READY

    def test_open_reports_identity(self, make_printer: MakePrinter) -> None:
        """open() names the model and serial of the device."""
        info = make_printer(1).open()
        assert info.model
        assert info.serial

    def test_idle_status_is_ready(self, make_printer: MakePrinter) -> None:
        """An idle printer with blanks and an empty path reports ready and no card."""
        status = make_printer(2).status()
        assert status.state is PrinterState.READY
        assert status.card is CardPosition.NONE

    def test_feed_print_eject_puts_one_card_in_output(self, make_printer: MakePrinter) -> None:
        """feed → print → eject takes one blank and leaves one card in the output tray."""
        printer = make_printer(2)
        before = printer.status().hopper
        serial = printer.feed()
        assert printer.status().card is CardPosition.CONTACT
        printer.print_card(JOB)
        printer.eject()
        after = printer.status()
        assert after.card is CardPosition.NONE
        if before is not None and after.hopper is not None:
            assert after.hopper == before - 1
        tray = self.output_tray(printer)
        if tray is not None:
            assert len(tray) == 1
            if serial is not None:
                assert tray == [serial]

    def test_reject_on_empty_path_is_a_no_op(self, make_printer: MakePrinter) -> None:
        """reject() with no card in the path changes nothing and raises nothing."""
        printer = make_printer(1)
        before = printer.status()
        printer.reject()
        after = printer.status()
        assert (after.state, after.card, after.hopper) == (before.state, before.card, before.hopper)

    def test_reject_clears_the_path(self, make_printer: MakePrinter) -> None:
        """A fed card goes to the reject tray and the path is empty again."""
        printer = make_printer(1)
        printer.feed()
        printer.reject()
        assert printer.status().card is CardPosition.NONE

    def test_feed_on_empty_hopper(self, make_printer: MakePrinter) -> None:
        """Feeding from an empty hopper raises FeederEmpty and status says feeder_empty."""
        printer = make_printer(0)
        with pytest.raises(FeederEmpty):
            printer.feed()
        status = printer.status()
        assert status.state is PrinterState.FEEDER_EMPTY
        assert status.card is CardPosition.NONE

    def test_errors_carry_frames(self, make_printer: MakePrinter) -> None:
        """A device error carries the last frames exchanged, ending with the failed step."""
        printer = make_printer(0)
        with pytest.raises(FeederEmpty) as info:
            printer.feed()
        assert info.value.frames
        assert "> feed" in info.value.frames
        assert not info.value.retryable


class ChipContract:
    """What any ChipChannel must do; see the module docstring for the fixture."""

    def reopen(self, channel: ChipChannel) -> ChipChannel:
        """A new channel instance on the station of ``channel``, as after a crash."""
        raise NotImplementedError

    def test_reopen_after_a_crash_finds_the_card_left_there(
        self, make_channel: MakeChannel
    ) -> None:
        """A new channel after a crash mid-script reaches the same card (same serial)."""
        from drivers.script import read_chip_serial

        channel = make_channel(True)
        channel.connect(timeout=2.0)
        serial = read_chip_serial(channel)
        assert _sw(channel.transmit(bytes.fromhex("00A4000C023F00"))) == 0x9000
        again = self.reopen(channel)  # the old one never disconnected
        again.connect(timeout=2.0)
        assert read_chip_serial(again) == serial

    def test_with_disconnects_and_close_twice_is_harmless(self, make_channel: MakeChannel) -> None:
        """Leaving ``with`` disconnects (a transmit is refused); closing again raises nothing."""
        with make_channel(True) as channel:
            channel.connect(timeout=2.0)
        channel.close()
        with pytest.raises(ChipError):
            channel.transmit(bytes.fromhex("00A4000C023F00"))

    def test_connect_returns_an_atr(self, make_channel: MakeChannel) -> None:
        """With a card present connect() returns an ATR starting with TS 3B or 3F."""
        atr = make_channel(True).connect(timeout=2.0)
        assert atr[0] in (0x3B, 0x3F)
        assert 2 <= len(atr) <= 33

    def test_answers_unknown_file_and_instruction(self, make_channel: MakeChannel) -> None:
        """A SELECT of a missing file answers 6A82; an unknown INS answers 6D00."""
        channel = make_channel(True)
        channel.connect(timeout=2.0)
        assert _sw(channel.transmit(bytes.fromhex("00A4000C02ABCD"))) == 0x6A82
        assert _sw(channel.transmit(bytes.fromhex("0020000000"))) in (0x6D00, 0x6E00)

    def test_serial_is_readable(self, make_channel: MakeChannel) -> None:
        """The chip reports a serial, by uid() or by GET DATA."""
        from drivers.script import read_chip_serial

        channel = make_channel(True)
        channel.connect(timeout=2.0)
        serial = read_chip_serial(channel)
        assert len(serial) >= 8
        assert serial == serial.upper()
        int(serial, 16)

    def test_no_card_raises_no_card_in_time(self, make_channel: MakeChannel) -> None:
        """Without a card connect() raises NoCard after about its timeout, with frames."""
        channel = make_channel(False)
        start = time.monotonic()
        with pytest.raises(NoCard) as info:
            channel.connect(timeout=0.2)
        assert time.monotonic() - start < 2.0
        assert "> connect" in info.value.frames

    def test_transmit_after_disconnect_is_refused(self, make_channel: MakeChannel) -> None:
        """After disconnect() a transmit raises a ChipError rather than reaching a card."""
        channel = make_channel(True)
        channel.connect(timeout=2.0)
        channel.disconnect()
        with pytest.raises(ChipError):
            channel.transmit(bytes.fromhex("00A4000C023F00"))
