"""The simulator's persistent model: options, timings, faults, the state file format."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from drivers.base import CardPosition

STATE_VERSION = 2


class SimTimings(BaseModel):
    """Milliseconds each step takes (defaults: a real printer, scaled down)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feed: float = Field(300.0, ge=0)
    encode_apdu: float = Field(0.0, ge=0)
    print: float = Field(1500.0, ge=0)
    eject: float = Field(200.0, ge=0)
    reject: float = Field(200.0, ge=0)
    status: float = Field(5.0, ge=0)

    @classmethod
    def instant(cls) -> SimTimings:
        """No waiting at all (unit tests)."""
        return cls(feed=0, encode_apdu=0, print=0, eject=0, reject=0, status=0)


class SimFaults(BaseModel):
    """Probability (0..1) of each fault at each step where it can happen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feed_jam: float = Field(0.0, ge=0, le=1)
    feeder_misfeed: float = Field(0.0, ge=0, le=1)
    print_fail: float = Field(0.0, ge=0, le=1)
    ribbon_out: float = Field(0.0, ge=0, le=1)
    cover_open: float = Field(0.0, ge=0, le=1)
    chip_dead: float = Field(0.0, ge=0, le=1)
    eject_jam: float = Field(0.0, ge=0, le=1)


class SimPrinterOptions(BaseModel):
    """The ``[printer.options]`` table of the station config for driver ``sim``."""

    model_config = ConfigDict(extra="forbid")

    state_file: Path
    hopper: int = Field(100, ge=0)
    ribbon: int = Field(1000, ge=0)
    seed: int = 0
    timings_ms: SimTimings = SimTimings()
    faults: SimFaults = SimFaults()
    serial_prefix: str = Field("SIM", pattern=r"^[A-Z0-9]{1,6}$")


class SimChipOptions(BaseModel):
    """The ``[encoder.options]`` table for driver ``sim``."""

    model_config = ConfigDict(extra="forbid")

    sam_mode: bool = False
    t0: bool = False
    require_auth: bool = False


class SimCardRecord(BaseModel):
    """One blank as the simulator knows it; never raw print data, only digests."""

    serial: str
    position: CardPosition = CardPosition.CONTACT
    chip_dead: bool = False
    #: EF id (hex) → content (hex, trailing zero bytes trimmed), while the card is in the
    #: path; when it leaves for a tray only ``chip_sha256`` is kept (no personal data
    #: accumulates in the state file, and it stays small and fast to rewrite).
    chip: dict[str, str] = Field(default_factory=dict)
    #: EF id (hex) → SHA-256 (hex) of the trimmed content, set when the card leaves.
    chip_sha256: dict[str, str] = Field(default_factory=dict)
    label: str | None = None
    front_sha256: str | None = None
    back_sha256: str | None = None
    printed: Literal["no", "started", "done", "failed"] = "no"

    def seal_chip(self) -> None:
        """Keep only digests of the chip memory (the card leaves the printer)."""
        self.chip_sha256 = {
            fid: hashlib.sha256(bytes.fromhex(content)).hexdigest()
            for fid, content in self.chip.items()
        }
        self.chip = {}

    @property
    def chip_serial(self) -> bytes:
        """The chip's serial: the prefix's ASCII bytes + the 5 bytes of the hex tail."""
        return self.serial[:-10].encode("ascii") + bytes.fromhex(self.serial[-10:])


class SimState(BaseModel):
    """The printer's physical state. The trays are not in the state file: each card that
    lands in a tray is appended to the tray journal (see :class:`TrayJournal`), so the
    state file stays small however many cards were printed; ``in_trays`` counts the
    journal lines this state already accounts for."""

    version: Literal[2] = 2
    printer_serial: str
    hopper: list[str]
    path: SimCardRecord | None = None
    output: list[SimCardRecord] = Field(default_factory=list, exclude=True)
    reject: list[SimCardRecord] = Field(default_factory=list, exclude=True)
    in_trays: int = 0
    ribbon_left: int
    cover_open: bool = False
    # No jam flag: a jam is a card jammed in the path (``path.position``), one fact in one
    # place, so no crash between two writes can leave a jam without a card (the older
    # files' ``jam`` key is ignored).
    steps: int = 0
    counters: dict[str, int] = Field(default_factory=dict)


#: The state file holds chip contents while a card is in the path: owner only, whatever
#: the umask (like every file under the station's state dir).
FILE_MODE = 0o600


def private_open(path: Path, flags: int) -> int:
    """Open (creating) ``path`` readable and writable by its owner only."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # also when the file existed with a wider mode
    return fd


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves the old or the new file, whole.
    The temporary file is the writer's own (process and thread): a technician's tool
    reading the printer while the daemon writes it never renames the other's file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with os.fdopen(private_open(tmp, os.O_WRONLY | os.O_TRUNC), "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class TrayJournal:
    """Append-only journal of the cards that landed in the output or reject tray.

    A move to a tray is: append the card's line and fsync, then write the state file with
    the card gone from the path. A crash between the two leaves a line the state does not
    account for yet; :meth:`load` finishes the move. A torn last line (a crash mid-append)
    is cut off.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, tray: Literal["output", "reject"], card: SimCardRecord) -> None:
        line = json.dumps({"tray": tray, "card": card.model_dump(mode="json")}) + "\n"
        with os.fdopen(private_open(self.path, os.O_WRONLY | os.O_APPEND), "ab") as fh:
            fh.write(line.encode())
            fh.flush()
            os.fsync(fh.fileno())

    def load(self, state: SimState) -> bool:
        """Fill the state's trays from the journal and finish a move a crash interrupted;
        whether one was (the state file must then be written again)."""
        if not self.path.exists():
            return False
        raw = self.path.read_bytes()
        good = 0
        entries = []
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            entries.append(json.loads(line))
            good += len(line)
        if good != len(raw):
            with self.path.open("r+b") as fh:
                fh.truncate(good)
                os.fsync(fh.fileno())
        for entry in entries:
            card = SimCardRecord.model_validate(entry["card"])
            (state.output if entry["tray"] == "output" else state.reject).append(card)
        finished = len(entries) != state.in_trays
        for entry in entries[state.in_trays :]:
            if state.path is not None and state.path.serial == entry["card"]["serial"]:
                state.path = None  # with the chip contents the old state file still held
        state.in_trays = len(entries)
        return finished
