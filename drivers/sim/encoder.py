"""The simulated encoder: the chip of the blank parked at a simulated contact station."""

from __future__ import annotations

import time
from typing import Any, Protocol, runtime_checkable

from drivers.base import CardPrinter, ChipChannel, validate_options
from drivers.errors import N_, ChipDead, NoCard
from drivers.sim.card import SimCard, SimSam
from drivers.sim.state import SimCardRecord, SimChipOptions, SimTimings

__all__ = ["ContactStation", "SimChipChannel"]


@runtime_checkable
class ContactStation(Protocol):
    """What the encoder needs from the printer it sits in."""

    @property
    def timings(self) -> SimTimings:
        """The step timings (``encode_apdu``: milliseconds per APDU)."""
        ...

    def contact_card(self) -> SimCardRecord | None:
        """A copy of the card parked at the contact station, if any (and not jammed)."""
        ...

    def write_chip(self, serial: str, files: dict[int, bytes], *, persist: bool = True) -> None:
        """Store the chip memory of card ``serial`` (NoCard once it left the station)."""
        ...

    def flush(self) -> None:
        """Persist chip memory written with ``persist=False``."""
        ...


class SimChipChannel(ChipChannel):
    """The encoder at the printer's contact station (or, with ``sam_mode``, the SAM)."""

    def __init__(
        self,
        printer: ContactStation,
        sam_mode: bool = False,
        *,
        t0: bool = False,
        require_auth: bool = False,
        poll_s: float = 0.005,
    ) -> None:
        super().__init__()
        self.printer = printer
        self.sam_mode = sam_mode
        self.t0 = t0
        self.require_auth = require_auth
        self.poll_s = poll_s
        self._card: SimCard | SimSam | None = None
        self._serial: str | None = None

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, printer: CardPrinter | None = None
    ) -> SimChipChannel:
        """Build from ``[chip.options]``; the printer must be a simulator (its station)."""
        opts = validate_options(SimChipOptions, options, "sim encoder")
        if not isinstance(printer, ContactStation):
            got = "no printer" if printer is None else type(printer).__name__
            # ValueError: a configuration mistake, reported as such by the callers
            raise ValueError(  # noqa: TRY004
                f'sim encoder: it sits in the sim printer (printer.driver = "sim"), not {got}'
            )
        return cls(printer, opts.sam_mode, t0=opts.t0, require_auth=opts.require_auth)

    def _connect_internal(self, timeout: float) -> bytes:
        if self.sam_mode:
            self._card = SimSam(t0=self.t0)
            return self._card.power_on()
        deadline = time.monotonic() + timeout
        while (record := self.printer.contact_card()) is None:
            if time.monotonic() >= deadline:
                raise NoCard(
                    N_("no card at the contact station after {timeout} s").format(
                        timeout=f"{timeout:.3f}"
                    )
                )
            time.sleep(self.poll_s)
        if record.chip_dead:
            raise ChipDead(N_("card {serial}: chip mute, no ATR").format(serial=record.serial))
        files = {int(fid, 16): bytes.fromhex(content) for fid, content in record.chip.items()}
        self._card = SimCard(
            record.chip_serial, files=files, t0=self.t0, require_auth=self.require_auth
        )
        self._serial = record.serial
        return self._card.power_on()

    def _transmit_internal(self, apdu: bytes) -> bytes:
        card = self._card
        if card is None:
            raise NoCard(N_("transmit: not connected to a card"))
        serial = self._serial
        if serial is not None:
            here = self.printer.contact_card()
            if here is None or here.serial != serial:
                self._card = None
                raise NoCard(N_("card {serial} left the contact station").format(serial=serial))
        if self.printer.timings.encode_apdu > 0:
            time.sleep(self.printer.timings.encode_apdu / 1000.0)
        if isinstance(card, SimCard):
            before = card.writes
            response = card.process(apdu)
            if card.writes != before and serial is not None:
                self.printer.write_chip(serial, card.files(), persist=False)
            return response
        return card.process(apdu)

    def _disconnect_internal(self) -> None:
        if self._serial is not None:
            self.printer.flush()
        self._card = None
        self._serial = None

    def _uid_internal(self) -> str | None:
        if isinstance(self._card, SimCard):
            return self._card.serial.hex().upper()
        return None
