"""The device contracts: one abstract class per role, with template methods."""

from __future__ import annotations

import enum
import importlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar, overload

from pydantic import BaseModel, ValidationError

from drivers.errors import DeviceError

FRAME_HISTORY = 32


class PrinterState(enum.StrEnum):
    READY = "ready"
    BUSY = "busy"
    FEEDER_EMPTY = "feeder_empty"
    RIBBON_OUT = "ribbon_out"
    JAM = "jam"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"


class CardPosition(enum.StrEnum):
    """Where the card being worked on is, as far as the printer knows."""

    NONE = "none"  # no card in the path
    CONTACT = "contact"  # parked at the chip contact/encoder station
    PRINT = "print"  # under the print head
    JAMMED = "jammed"


def derive_state(
    *, cover_open: bool, jammed: bool, ribbon_out: bool, feeder_empty: bool, busy: bool = False
) -> PrinterState:
    """The one state a printer reports when several things are wrong at once, in the
    order a technician must deal with them: cover, jam, (busy), ribbon, feeder."""
    if cover_open:
        return PrinterState.COVER_OPEN
    if jammed:
        return PrinterState.JAM
    if busy:
        return PrinterState.BUSY
    if ribbon_out:
        return PrinterState.RIBBON_OUT
    if feeder_empty:
        return PrinterState.FEEDER_EMPTY
    return PrinterState.READY


@dataclass(frozen=True)
class PrinterStatus:
    state: PrinterState
    card: CardPosition = CardPosition.NONE
    #: Blanks the printer sees in its hopper, when it can count them (None: unknown).
    hopper: int | None = None
    ribbon_left: int | None = None
    detail: str = ""
    #: The serial of the card in the path, when the printer knows it without the chip
    #: (the simulator does; most printers do not: None).
    card_serial: str | None = None


@dataclass(frozen=True)
class PrinterInfo:
    model: str
    serial: str
    firmware: str


@dataclass(frozen=True)
class PrintJob:
    """What to print on one card. ``label`` is a non-personal tag (the record id)."""

    label: str
    front: bytes
    back: bytes | None = None


class FrameLog:
    """The last N frames exchanged with a device, for the failure dump (Klipper-style).

    Frames are kept raw and formatted only when a dump is taken: recording one costs a
    deque append (thread-safe in CPython), which matters at thousands of APDUs a second.
    APDU frames keep the header and lengths only, never the data (personal fields).
    """

    def __init__(self, size: int = FRAME_HISTORY) -> None:
        self._frames: deque[tuple[str, str | bytes, int]] = deque(maxlen=size)

    def add(self, direction: str, text: str) -> None:
        self._frames.append((direction, text, -1))

    def command(self, apdu: bytes) -> None:
        self._frames.append((">", apdu[:4], len(apdu)))

    def response(self, response: bytes) -> None:
        self._frames.append(("<", response[-2:], len(response)))

    def snapshot(self) -> tuple[str, ...]:
        while True:
            try:
                raw = tuple(self._frames)
                break
            except RuntimeError:  # appended to while copied: copy again
                continue
        return tuple(self._format(*frame) for frame in raw)

    @staticmethod
    def _format(direction: str, what: str | bytes, length: int) -> str:
        if isinstance(what, str):
            return f"{direction} {what}"
        if direction == ">":
            return f"> APDU {what.hex()} Lc={max(length - 5, 0)}"
        return f"< SW {what.hex()} len={length - 2}"


_T = TypeVar("_T")


class _Device(ABC):
    """Shared plumbing: frame tracing, error mapping and ``with`` for every role."""

    #: Backend exception types that mean "device gone"; subclasses widen this.
    offline_errors: tuple[type[BaseException], ...] = (OSError,)

    def __init__(self) -> None:
        self.frames = FrameLog()
        #: What the template methods catch and map: the tree, and "device gone" errors.
        self._catch: tuple[type[BaseException], ...] = (DeviceError, *self.offline_errors)

    def _trace(self, direction: str, text: str) -> None:
        self.frames.add(direction, text)

    def close(self) -> None:
        """Release the device; a second call does nothing harmful."""
        self._call("close", self._close_internal)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @abstractmethod
    def _close_internal(self) -> None:
        """Release links and flush pending state; must be safe to call twice."""

    def _mapped_error(self, what: str, exc: BaseException) -> BaseException:
        """The exception to raise for ``exc`` in step ``what``: device errors get the
        frame dump; a backend's "device gone" errors become DeviceOffline (chained)."""
        from drivers.errors import DeviceOffline

        if isinstance(exc, DeviceError):
            if not exc.frames:
                exc.frames = self.frames.snapshot()
            return exc
        if isinstance(exc, self.offline_errors):
            err = DeviceOffline(
                f"{what}: device unreachable ({type(exc).__name__})", frames=self.frames.snapshot()
            )
            err.__cause__ = exc
            return err
        return exc

    @contextmanager
    def _mapped(self, what: str) -> Iterator[None]:
        """Map backend errors of step ``what`` into the tree, with the frame dump."""
        try:
            yield
        except self._catch as exc:
            mapped = self._mapped_error(what, exc)
            if mapped is exc:
                raise
            raise mapped from exc

    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        self._trace(">", what)
        with self._mapped(what):
            result = fn()
        self._trace("<", f"{what} ok")
        return result


class CardPrinter(_Device):
    """A card printer with an input hopper, a chip contact station and two trays."""

    #: Whether :meth:`print_card` itself ends by sending the card out (Evolis: ``Se``
    #: closes the print sequence). False: the printed card waits in the path for
    #: :meth:`eject` or :meth:`reject`.
    ejects_with_print: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def from_options(cls, options: dict[str, Any]) -> CardPrinter:
        """Build from the config's ``[printer.options]``; ValueError names a bad key."""

    def open(self) -> PrinterInfo:
        return self._call("open", self._open_internal)

    def status(self) -> PrinterStatus:
        return self._call("status", self._status_internal)

    def feed(self) -> str | None:
        """Take a blank from the hopper to the contact station; its serial if known."""
        return self._call("feed", self._feed_internal)

    def print_card(self, job: PrintJob) -> None:
        """Move the card from the contact station under the head and print its panels."""
        self._call(f"print {job.label}", lambda: self._print_internal(job))

    def eject(self) -> None:
        """Send the card in the path to the output tray (a good card)."""
        self._call("eject", self._eject_internal)

    def reject(self) -> None:
        """Send the card in the path, if any, to the reject tray."""
        self._call("reject", self._reject_internal)

    def reset(self) -> None:
        self._call("reset", self._reset_internal)

    @abstractmethod
    def _open_internal(self) -> PrinterInfo: ...

    @abstractmethod
    def _status_internal(self) -> PrinterStatus: ...

    @abstractmethod
    def _feed_internal(self) -> str | None: ...

    @abstractmethod
    def _print_internal(self, job: PrintJob) -> None: ...

    @abstractmethod
    def _eject_internal(self) -> None: ...

    @abstractmethod
    def _reject_internal(self) -> None: ...

    @abstractmethod
    def _reset_internal(self) -> None: ...


class ChipChannel(_Device):
    """An ISO 7816 channel to the chip of the card parked at the contact station."""

    @classmethod
    @abstractmethod
    def from_options(
        cls, options: dict[str, Any], *, printer: CardPrinter | None = None
    ) -> ChipChannel:
        """Build from the config's ``[chip.options]``; ValueError names a bad key.

        ``printer`` is the printer whose contact station holds the card: an encoder built
        into the printer needs it, one that reaches the card by itself (PC/SC) ignores it.
        """

    def connect(self, timeout: float = 5.0) -> bytes:
        """Power the card and return its ATR; waits up to ``timeout`` for a card."""
        atr = self._call("connect", lambda: self._connect_internal(timeout))
        self._trace("<", f"ATR {atr.hex()}")
        return atr

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU, return the response (data + SW1 SW2)."""
        # Inline (not _mapped): this is the hot path of personalisation, ~40 APDUs a card.
        self.frames.command(apdu)
        try:
            response = self._transmit_internal(apdu)
        except self._catch as exc:
            mapped = self._mapped_error("transmit", exc)
            if mapped is exc:
                raise
            raise mapped from exc
        self.frames.response(response)
        return response

    def disconnect(self) -> None:
        self._call("disconnect", self._disconnect_internal)

    def uid(self) -> str | None:
        """The chip's serial/UID as the reader reports it, when it can (else None)."""
        return self._call("uid", self._uid_internal)

    def sam_channel(self) -> ChipChannel | None:
        """The channel to the security module (SAM) for script steps that need it."""
        return None

    @abstractmethod
    def _connect_internal(self, timeout: float) -> bytes: ...

    @abstractmethod
    def _transmit_internal(self, apdu: bytes) -> bytes: ...

    @abstractmethod
    def _disconnect_internal(self) -> None: ...

    def _uid_internal(self) -> str | None:
        return None

    def _close_internal(self) -> None:
        """Closing a channel disconnects it (safe when not connected)."""
        self._disconnect_internal()


class PrinterRegistry(dict[str, str]):
    """Printer backends: name → "module:Class" of a :class:`CardPrinter`."""


class ChipRegistry(dict[str, str]):
    """Chip encoder backends: name → "module:Class" of a :class:`ChipChannel`."""


#: name → "module:Class", imported only when chosen in the configuration.
PRINTER_DRIVERS = PrinterRegistry(
    sim="drivers.sim.printer:SimPrinter",
    evolis="drivers.evolis.printer:EvolisPrinter",
)
CHIP_DRIVERS = ChipRegistry(
    sim="drivers.sim.encoder:SimChipChannel",
    pcsc="drivers.pcsc.channel:PcscChipChannel",
)


@overload
def load_driver(registry: PrinterRegistry, name: str) -> type[CardPrinter]: ...
@overload
def load_driver(registry: ChipRegistry, name: str) -> type[ChipChannel]: ...
def load_driver(
    registry: PrinterRegistry | ChipRegistry, name: str
) -> type[CardPrinter] | type[ChipChannel]:
    """Import the class registered under ``name`` (ValueError names the known ones)."""
    try:
        target = registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise ValueError(f"unknown driver {name!r} (known: {known})") from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"driver {name!r} cannot be loaded: {exc} (is its extra installed?)"
        ) from exc
    cls = getattr(module, class_name, None)
    role: type[CardPrinter] | type[ChipChannel]
    role = CardPrinter if isinstance(registry, PrinterRegistry) else ChipChannel
    if not (isinstance(cls, type) and issubclass(cls, role)):
        raise TypeError(f"driver {name!r}: {target} is not a {role.__name__}")
    return cls


_M = TypeVar("_M", bound=BaseModel)


def validate_options(model: type[_M], options: dict[str, Any], what: str) -> _M:
    """Validate a driver's options table (the config's ``[printer.options]`` or
    ``[chip.options]``); the ValueError names each bad or unknown key."""
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(options)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(f"{what} options: {problems}") from exc
