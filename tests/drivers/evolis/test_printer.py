"""The Evolis driver against the protocol emulator over a pty, loopback TCP and virtual USB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from drivers.base import CardPosition, CardPrinter, PrinterState
from drivers.errors import (
    CardJam,
    CoverOpen,
    DeviceOffline,
    DeviceTimeout,
    FeederEmpty,
    PrinterError,
    PrintFailed,
    RibbonOut,
)
from drivers.evolis.printer import EvolisPrinter
from drivers.evolis.protocol import face_panels
from tests.support.contract import JOB, PrinterContract
from tests.support.evolis_emulator import EmulatorOnPty, EvolisEmulator, Fault
from tests.support.evolis_links import EmulatorOnTcp, VirtualUsbBackend

LINKS = ["pty", "tcp", "usb"]
Make = Callable[..., tuple[EvolisPrinter, EvolisEmulator]]


class _Links:
    """Opened EvolisPrinters on emulators over one kind of link, closed at the end."""

    def __init__(self, link: str) -> None:
        self.link = link
        self.cleanups: list[Callable[[], None]] = []
        self._built: dict[int, tuple[dict[str, Any], VirtualUsbBackend | None]] = {}

    def build(self, blanks: int = 5, **options: Any) -> tuple[EvolisPrinter, EvolisEmulator]:
        emulator = EvolisEmulator(hopper=blanks)
        backend = None
        if self.link == "pty":
            harness: EmulatorOnPty | EmulatorOnTcp = EmulatorOnPty(emulator, **options)
            self.cleanups.append(harness.stop)
            opts = harness.options
        elif self.link == "tcp":
            harness = EmulatorOnTcp(emulator, **options)
            self.cleanups.append(harness.stop)
            opts = harness.options
        else:
            backend = VirtualUsbBackend(emulator)
            opts = {
                "transport": "usb",
                "min_print_s": 0,
                "reset_wait_s": 0,
                "timeout_s": 5.0,
                **options,
            }
        printer = self._new(opts, backend)
        printer.open()
        return printer, emulator

    def _new(self, opts: dict[str, Any], backend: VirtualUsbBackend | None) -> EvolisPrinter:
        printer = EvolisPrinter.from_options(opts, usb_backend=backend)
        self.cleanups.insert(0, printer.close)
        self._built[id(printer)] = (opts, backend)
        return printer

    def reopen(self, printer: EvolisPrinter) -> EvolisPrinter:
        """A new driver on the same emulator, ``printer`` left as a killed process leaves
        it: its link closed (what the OS does), nothing sent to the printer."""
        printer.close()
        return self._new(*self._built[id(printer)])

    def stop(self) -> None:
        for cleanup in self.cleanups:
            cleanup()


@pytest.fixture(params=LINKS)
def links(request: pytest.FixtureRequest) -> Iterator[_Links]:
    opened = _Links(request.param)
    yield opened
    opened.stop()


@pytest.fixture
def make(links: _Links) -> Make:
    """``make(blanks, **options)``: an opened EvolisPrinter on an emulator over the link."""
    return links.build


class TestEvolisContract(PrinterContract):
    @pytest.fixture
    def make_printer(self, links: _Links) -> Callable[[int], CardPrinter]:
        self._links = links
        self._emulators: dict[int, EvolisEmulator] = {}

        def factory(blanks: int) -> CardPrinter:
            printer, emulator = links.build(blanks)
            self._emulators[id(printer)] = emulator
            return printer

        return factory

    def reopen(self, printer: CardPrinter) -> CardPrinter:
        assert isinstance(printer, EvolisPrinter)
        again = self._links.reopen(printer)
        self._emulators[id(again)] = self._emulators[id(printer)]
        return again

    def output_tray(self, printer: CardPrinter) -> list[str] | None:
        return [str(card.number) for card in self._emulators[id(printer)].output]


def test_connect_sends_identity_and_modes(make: Make) -> None:
    """open() asks model, serial and firmware and sets host-managed errors and the feeder."""
    printer, emulator = make()
    assert emulator.names()[:5] == ["Pem", "Pmi", "Rtp", "Rsn", "Rfv"]
    assert (emulator.pem, emulator.pmi) == ("2", "F")
    assert printer.open().serial == emulator.serial


def test_print_sends_the_face_panels_and_keeps_one_blank(make: Make) -> None:
    """A print downloads Y M C K O of the face to the card fed and takes no second blank."""
    printer, emulator = make(3)
    printer.feed()
    printer.print_card(JOB)
    printer.eject()
    assert emulator.hopper == 2
    assert [c.number for c in emulator.output] == [1]
    card = emulator.output[0]
    assert list(card.panels) == list("ymcko")
    assert card.panels == face_panels(JOB.front)
    assert emulator.ribbon == 99
    assert emulator.names()[-13:] == [
        "Rlr",
        "Pmi",
        "Pr",
        "Ss",
        "Sr",
        "Db",
        "Db",
        "Db",
        "Dbc",
        "Dbc",
        "Se",
        "Pmi",
        "Rlr",
    ]


def test_cover_open_mid_job(make: Make) -> None:
    """The cover opening during a print raises CoverOpen; the card stays in and is rejected."""
    printer, emulator = make()
    printer.feed()
    emulator.inject(Fault.COVER_OPEN_MID_JOB)
    with pytest.raises(CoverOpen):
        printer.print_card(JOB)
    status = printer.status()
    assert (status.state, status.card) == (PrinterState.COVER_OPEN, CardPosition.PRINT)
    with pytest.raises(CoverOpen):
        printer.reject()
    emulator.close_cover()
    printer.reject()
    assert len(emulator.rejected) == 1
    assert printer.status().state is PrinterState.READY


def test_feeder_empty(make: Make) -> None:
    """An emptied hopper makes feed raise FeederEmpty and status report feeder_empty."""
    printer, emulator = make()
    emulator.inject(Fault.FEEDER_EMPTY)
    with pytest.raises(FeederEmpty):
        printer.feed()
    status = printer.status()
    assert (status.state, status.hopper) == (PrinterState.FEEDER_EMPTY, 0)


def test_ribbon_end(make: Make) -> None:
    """The ribbon ending during a print raises RibbonOut; status says ribbon_out."""
    printer, emulator = make()
    printer.feed()
    emulator.inject(Fault.RIBBON_END)
    with pytest.raises(RibbonOut):
        printer.print_card(JOB)
    status = printer.status()
    assert (status.state, status.ribbon_left) == (PrinterState.RIBBON_OUT, 0)
    printer.reject()
    assert printer.status().card is CardPosition.NONE


def test_jam(make: Make) -> None:
    """A jam on feed raises CardJam; reject cannot move it until a person clears it."""
    printer, emulator = make()
    emulator.inject(Fault.JAM, on="Sis")
    with pytest.raises(CardJam):
        printer.feed()
    status = printer.status()
    assert (status.state, status.card) == (PrinterState.JAM, CardPosition.JAMMED)
    with pytest.raises(CardJam):
        printer.reject()
    emulator.clear_jam()
    assert printer.status().state is PrinterState.READY


def test_no_reply_times_out_then_recovers(make: Make) -> None:
    """A lost command raises DeviceTimeout after timeout_s; the next command works."""
    printer, emulator = make(timeout_s=0.3)
    emulator.inject(Fault.NO_REPLY, on="Rlr")
    with pytest.raises(DeviceTimeout) as info:
        printer.status()
    assert info.value.retryable
    assert printer.status().state is PrinterState.READY


def test_garbage_reply(make: Make) -> None:
    """A garbled reply raises PrinterError; status afterwards still finds the card."""
    printer, emulator = make()
    emulator.inject(Fault.GARBAGE, on="Sis")
    with pytest.raises(PrinterError, match="unintelligible"):
        printer.feed()
    assert printer.status().card is CardPosition.CONTACT
    printer.reject()
    assert len(emulator.rejected) == 1


def test_disconnect_mid_print_then_recovery(make: Make) -> None:
    """A link lost mid-print raises DeviceOffline; the next call reconnects, resends modes."""
    printer, emulator = make()
    printer.feed()
    emulator.inject(Fault.DISCONNECT, on="Ss")
    with pytest.raises(DeviceOffline):
        printer.print_card(JOB)
    assert emulator.pem == "0"  # the printer lost its modes
    assert printer.status().card is CardPosition.CONTACT
    assert printer.connects == 2
    assert (emulator.pem, emulator.pmi) == ("2", "F")
    printer.reject()
    assert len(emulator.rejected) == 1


def test_reset_resends_modes(make: Make) -> None:
    """reset() sends Srs and then the modes again."""
    printer, emulator = make()
    printer.reset()
    assert emulator.names()[-3:] == ["Srs", "Pem", "Pmi"]
    assert emulator.pem == "2"


def test_implausibly_fast_print_fails(make: Make) -> None:
    """A print quicker than min_print_s raises PrintFailed."""
    printer, _ = make(min_print_s=30)
    printer.feed()
    with pytest.raises(PrintFailed, match="implausibly fast"):
        printer.print_card(JOB)


def test_feed_refuses_a_second_card(make: Make) -> None:
    """Feeding while a card is in the printer raises rather than moving it."""
    printer, emulator = make()
    printer.feed()
    with pytest.raises(PrinterError, match="already"):
        printer.feed()
    assert emulator.hopper == 4


def test_bad_job_is_a_print_failure(make: Make) -> None:
    """Job bytes that are not a 1016 × 648 image raise PrintFailed before anything moves."""
    printer, emulator = make()
    printer.feed()
    from drivers.base import PrintJob

    with pytest.raises(PrintFailed):
        printer.print_card(PrintJob(label="bad", front=b"not a png"))
    assert emulator.position == "contact"


def test_diagnostics(make: Make) -> None:
    """diagnostics() reports ribbon left and counters."""
    printer, _ = make()
    info = printer.diagnostics()
    assert info["ribbon left"] == "100"
    assert info["cards inserted"] == "0"


def test_usb_absent_is_offline() -> None:
    """With no Evolis device on the bus, open() raises DeviceOffline."""
    backend = VirtualUsbBackend()
    backend.unplug()
    printer = EvolisPrinter.from_options({"transport": "usb"}, usb_backend=backend)
    with pytest.raises(DeviceOffline):
        printer.open()


def test_usb_detaches_kernel_driver() -> None:
    """The usblp kernel driver is detached before the interface is claimed."""
    backend = VirtualUsbBackend()
    printer = EvolisPrinter.from_options({"transport": "usb"}, usb_backend=backend)
    printer.open()
    printer.close()
    assert backend.detaches == 1
    assert backend.kernel_driver_active  # given back at close


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"transport": "serial"}, "port"),
        ({"transport": "tcp", "host": "h"}, "tcp_port"),
        ({"colour": 1}, "colour"),
        ({"baudrate": 300}, "baudrate"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, Any], key: str) -> None:
    """from_options raises ValueError naming the bad or unknown key."""
    with pytest.raises(ValueError, match=key):
        EvolisPrinter.from_options(options)
