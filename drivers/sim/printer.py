"""A simulated card printer and chip encoder: a device model with timing, faults, memory."""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from drivers.base import (
    CardPosition,
    CardPrinter,
    PrinterInfo,
    PrinterStatus,
    PrintJob,
    derive_state,
    validate_options,
)
from drivers.errors import (
    N_,
    CardJam,
    CoverOpen,
    DeviceBusy,
    FeederEmpty,
    NoCard,
    PrinterError,
    PrintFailed,
    RibbonOut,
)
from drivers.sim.state import (
    STATE_VERSION,
    SimCardRecord,
    SimFaults,
    SimPrinterOptions,
    SimState,
    SimTimings,
    TrayJournal,
    atomic_write,
)

__all__ = [
    "SimCardRecord",
    "SimFaults",
    "SimPrinter",
    "SimPrinterOptions",
    "SimTimings",
    "atomic_write",
]

_FAULTS = tuple(SimFaults.model_fields)


class SimPrinter(CardPrinter):
    """A simulated card printer whose physical state survives the process (see module)."""

    def __init__(
        self,
        state_file: Path,
        *,
        timings: SimTimings | None = None,
        faults: SimFaults | None = None,
        seed: int = 0,
        hopper: int = 100,
        ribbon: int = 1000,
        serial_prefix: str = "SIM",
    ) -> None:
        super().__init__()
        self.state_file = Path(state_file)
        self.timings = timings or SimTimings()
        self.faults = faults or SimFaults()
        self.seed = seed
        self.serial_prefix = serial_prefix
        self._lock = threading.RLock()  # the state; held briefly, never while sleeping
        self._op_lock = threading.Lock()  # one physical command at a time
        self._busy: str | None = None
        self._dirty = False  # chip memory changed since the last write
        #: state file writes so far (for tests and benchmarks)
        self.writes = 0
        self._journal = TrayJournal(self.state_file.with_name(self.state_file.name + ".trays"))
        if self.state_file.exists():
            try:
                self._state = SimState.model_validate_json(self.state_file.read_bytes())
            except ValidationError as exc:
                raise ValueError(f"sim state file {self.state_file} is not valid") from exc
            if self._journal.load(self._state):
                self._save()
        else:
            self._state = SimState(
                printer_serial="SIMPRN" + secrets.token_hex(3).upper(),
                hopper=[],
                ribbon_left=ribbon,
            )
            self._add_blanks(hopper)
            self._save()

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> SimPrinter:
        """Build from the config's options table; ValueError names a bad or unknown key."""
        opts = validate_options(SimPrinterOptions, options, "sim printer")
        return cls(
            opts.state_file,
            timings=opts.timings_ms,
            faults=opts.faults,
            seed=opts.seed,
            hopper=opts.hopper,
            ribbon=opts.ribbon,
            serial_prefix=opts.serial_prefix,
        )

    # -- persistence and helpers -------------------------------------------------------

    def _save(self) -> None:
        atomic_write(self.state_file, self._state.model_dump_json().encode())
        self._dirty = False
        self.writes += 1

    def _to_tray(self, tray: Literal["output", "reject"], card: SimCardRecord) -> None:
        """The card in the path lands in a tray: journal line first, then the state."""
        card.seal_chip()
        self._journal.append(tray, card)
        (self._state.output if tray == "output" else self._state.reject).append(card)
        self._state.in_trays += 1
        self._state.path = None

    def _count(self, name: str) -> None:
        self._state.counters[name] = self._state.counters.get(name, 0) + 1

    def _add_blanks(self, n: int) -> list[str]:
        known = set(self._state.hopper)
        new: list[str] = []
        while len(new) < n:
            serial = self.serial_prefix + secrets.token_hex(5).upper()
            if serial not in known:
                known.add(serial)
                new.append(serial)
        self._state.hopper.extend(new)
        return new

    def _draw(self) -> set[str]:
        """The faults that strike at this physical step (and count the step)."""
        rng = random.Random(f"{self.seed}:{self._state.steps}")
        self._state.steps += 1
        return {name for name in _FAULTS if rng.random() < getattr(self.faults, name)}

    @staticmethod
    def _sleep(ms: float) -> None:
        if ms > 0:
            time.sleep(ms / 1000.0)

    @contextmanager
    def _op(self, what: str) -> Iterator[None]:
        if not self._op_lock.acquire(blocking=False):
            raise DeviceBusy(
                N_("{what}: printer busy with {busy}").format(
                    what=what, busy=self._busy or "a command"
                )
            )
        self._busy = what
        try:
            yield
        finally:
            self._busy = None
            self._op_lock.release()

    def _jammed(self) -> bool:
        """What the path sensor sees: a card stuck in the path (the only source of a jam)."""
        card = self._state.path
        return card is not None and card.position is CardPosition.JAMMED

    def _check_ready(self, what: str) -> None:
        if self._state.cover_open:
            raise CoverOpen(N_("{what}: cover open").format(what=what))
        if self._jammed():
            raise CardJam(N_("{what}: card jammed in the path; reject it first").format(what=what))

    def _card_ready(self, what: str) -> SimCardRecord:
        """The card in the path, which the next movement needs (checks cover and jam)."""
        self._check_ready(what)
        card = self._state.path
        if card is None:
            raise PrinterError(N_("{what}: no card in the path").format(what=what))
        if card.position is CardPosition.JAMMED:
            raise CardJam(N_("{what}: the card in the path is jammed; reject it").format(what=what))
        return card

    def _cover_fault(self, what: str, faults: set[str]) -> None:
        if "cover_open" in faults:
            self._state.cover_open = True
            self._save()
            raise CoverOpen(N_("{what}: cover opened").format(what=what))

    # -- the printer contract ----------------------------------------------------------

    def _open_internal(self) -> PrinterInfo:
        return PrinterInfo(
            model="ektp-station simulator",
            serial=self._state.printer_serial,
            firmware=f"sim-{STATE_VERSION}",
        )

    def _close_internal(self) -> None:
        with self._lock:
            self._save()

    def _status_internal(self) -> PrinterStatus:
        self._sleep(self.timings.status)
        with self._lock:
            st = self._state
            card = CardPosition.NONE if st.path is None else st.path.position
            return PrinterStatus(
                state=derive_state(
                    cover_open=st.cover_open,
                    jammed=self._jammed(),
                    busy=self._busy is not None,
                    ribbon_out=st.ribbon_left <= 0,
                    feeder_empty=not st.hopper,
                ),
                card=card,
                hopper=len(st.hopper),
                ribbon_left=st.ribbon_left,
                detail=self._busy or "",
                card_serial=None if st.path is None else st.path.serial,
            )

    def _feed_internal(self) -> str | None:
        with self._op("feed"):
            with self._lock:
                self._check_ready("feed")
                if self._state.path is not None:
                    raise PrinterError(
                        N_("feed: a card is already in the path; eject or reject it")
                    )
                if not self._state.hopper:
                    raise FeederEmpty(N_("feed: input hopper empty"))
                faults = self._draw()
            self._sleep(self.timings.feed)
            with self._lock:
                st = self._state
                self._cover_fault("feed", faults)
                if "feeder_misfeed" in faults:
                    self._count("misfeeds")
                    self._save()
                    raise FeederEmpty(
                        N_("feed: no card picked (misfeed, {hopper} left)").format(
                            hopper=len(st.hopper)
                        )
                    )
                card = SimCardRecord(serial=st.hopper.pop(0), chip_dead="chip_dead" in faults)
                st.path = card
                self._count("fed")
                if "feed_jam" in faults:
                    card.position = CardPosition.JAMMED
                    self._count("jams")
                    self._save()
                    raise CardJam(N_("feed: card jammed on its way to the contact station"))
                self._save()
                return card.serial

    def _print_internal(self, job: PrintJob) -> None:
        with self._op("print"):
            with self._lock:
                card = self._card_ready("print")
                if self._state.ribbon_left <= 0:
                    raise RibbonOut(N_("print: ribbon finished"))
                faults = self._draw()
                self._cover_fault("print", faults)
                if "ribbon_out" in faults:
                    self._state.ribbon_left = 0
                    self._save()
                    raise RibbonOut(N_("print: ribbon ran out"))
                card.position, card.printed, card.label = CardPosition.PRINT, "started", job.label
                card.front_sha256 = hashlib.sha256(job.front).hexdigest()
                back = None if job.back is None else hashlib.sha256(job.back).hexdigest()
                card.back_sha256 = back
                self._save()
            self._sleep(self.timings.print)
            with self._lock:
                self._state.ribbon_left -= 1
                if "print_fail" in faults:
                    card.printed = "failed"
                    self._count("print_failed")
                    self._save()
                    raise PrintFailed(N_("print: panel transfer failed"))
                card.printed = "done"
                self._count("printed")
                self._save()

    def _eject_internal(self) -> None:
        with self._op("eject"):
            with self._lock:
                self._card_ready("eject")
                faults = self._draw()
                self._cover_fault("eject", faults)
            self._sleep(self.timings.eject)
            with self._lock:
                st = self._state
                card = st.path
                if card is None:  # pragma: no cover - the op lock keeps the card in place
                    raise PrinterError(N_("eject: card vanished"))
                if "eject_jam" in faults:
                    card.position = CardPosition.JAMMED
                    self._count("jams")
                    self._save()
                    raise CardJam(N_("eject: card jammed on its way to the output tray"))
                self._to_tray("output", card)
                self._count("ejected")
                self._save()

    def _reject_internal(self) -> None:
        with self._op("reject"):
            with self._lock:
                if self._state.path is None:
                    return
                if self._state.cover_open:
                    raise CoverOpen(N_("reject: cover open"))
            self._sleep(self.timings.reject)
            with self._lock:
                st = self._state
                if st.path is not None:
                    st.path.position = CardPosition.NONE
                    self._to_tray("reject", st.path)
                self._count("rejected")
                self._save()

    def _reset_internal(self) -> None:
        """A reset moves nothing: a jammed card stays jammed until it is rejected."""
        with self._op("reset"), self._lock:
            self._save()

    # -- for the encoder, technicians and tests ------------------------------------------

    def contact_card(self) -> SimCardRecord | None:
        """A copy of the card parked at the contact station, if any (and not jammed)."""
        with self._lock:
            card = self._state.path
            if card is None or card.position is not CardPosition.CONTACT:
                return None
            return card.model_copy(deep=True)

    def write_chip(self, serial: str, files: dict[int, bytes], *, persist: bool = True) -> None:
        """Store the chip memory of card ``serial`` (it must still be at contact).

        With ``persist=False`` the state file is written at the next :meth:`flush` or
        physical step (the encoder flushes at disconnect): an fsync'd write costs ~1-3 ms,
        too much for every APDU of a 20-APDU script.
        """
        with self._lock:
            card = self._state.path
            if card is None or card.serial != serial or card.position is not CardPosition.CONTACT:
                raise NoCard(
                    N_("card {serial} is no longer at the contact station").format(serial=serial)
                )
            card.chip = {f"{fid:04X}": content.hex() for fid, content in sorted(files.items())}
            self._dirty = True
            if persist:
                self._save()

    def flush(self) -> None:
        """Write pending chip memory to the state file."""
        with self._lock:
            if self._dirty:
                self._save()

    def load_blanks(self, n: int) -> list[str]:
        """Put ``n`` new blanks into the input hopper; their serials."""
        with self._lock:
            new = self._add_blanks(n)
            self._save()
            return new

    def replace_ribbon(self, panels: int = 1000) -> None:
        with self._lock:
            self._state.ribbon_left = panels
            self._save()

    def open_cover(self) -> None:
        with self._lock:
            self._state.cover_open = True
            self._save()

    def close_cover(self) -> None:
        with self._lock:
            self._state.cover_open = False
            self._save()

    def trays(self) -> dict[str, list[str]]:
        """Serials in the output tray, the reject tray and the input hopper."""
        with self._lock:
            st = self._state
            return {
                "output": [c.serial for c in st.output],
                "reject": [c.serial for c in st.reject],
                "hopper": list(st.hopper),
            }

    def tray_cards(self, tray: Literal["output", "reject"]) -> list[SimCardRecord]:
        """Copies of the cards in a tray, with what was printed (digests) and encoded."""
        with self._lock:
            cards = self._state.output if tray == "output" else self._state.reject
            return [c.model_copy(deep=True) for c in cards]

    def card_in_path(self) -> SimCardRecord | None:
        """A copy of the card in the path (any position, jammed too), or None."""
        with self._lock:
            card = self._state.path
            return None if card is None else card.model_copy(deep=True)

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._state.counters)

    def snapshot(self) -> dict[str, Any]:
        """The whole persisted state as JSON-ready data (what the state file holds)."""
        with self._lock:
            data: dict[str, Any] = json.loads(self._state.model_dump_json())
            return data
