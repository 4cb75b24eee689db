"""A chip channel for tests with the Evolis emulator: the chip of whatever card the
emulator holds at its encoder station, each card its own simulated chip (drivers.sim.card).
It stands where a PC/SC encoder would be, so the daemon can run end to end on the
emulator. Registered in CHIP_DRIVERS by the test that uses it."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from drivers.base import CardPrinter, ChipChannel
from drivers.errors import NoCard
from drivers.sim.card import SimCard
from tests.support.evolis_emulator import EvolisEmulator


class EmulatorChip(ChipChannel):
    #: The emulator whose card this channel reaches (set by the test before the daemon).
    emulator: ClassVar[EvolisEmulator | None] = None

    def __init__(self, emulator: EvolisEmulator) -> None:
        super().__init__()
        self.emu = emulator
        self._chips: dict[int, SimCard] = {}
        self._card: SimCard | None = None

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, printer: CardPrinter | None = None
    ) -> EmulatorChip:
        if cls.emulator is None or options:
            raise ValueError("EmulatorChip needs EmulatorChip.emulator set and no options")
        return cls(cls.emulator)

    def _present(self) -> SimCard | None:
        card = self.emu.card
        if card is None or self.emu.position not in ("contact", "contactless"):
            return None
        return self._chips.setdefault(card.number, SimCard(b"EVO" + card.number.to_bytes(5, "big")))

    def _connect_internal(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while (chip := self._present()) is None:
            if time.monotonic() > deadline:
                raise NoCard("connect: no card at the encoder station")
            time.sleep(0.005)
        self._card = chip
        return chip.power_on()

    def _transmit_internal(self, apdu: bytes) -> bytes:
        if self._card is None or self._present() is not self._card:
            raise NoCard("transmit: the card left the encoder station")
        return self._card.process(apdu)

    def _disconnect_internal(self) -> None:
        self._card = None
