"""The chip encoder over PC/SC, on pyscard's low-level ``smartcard.scard`` API."""

from __future__ import annotations

import re
import time
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator
from smartcard import scard

from drivers.base import CardPrinter, ChipChannel, validate_options
from drivers.errors import (
    ChipDead,
    DeviceBusy,
    DeviceError,
    DeviceOffline,
    DeviceTimeout,
    NoCard,
)
from drivers.iso7816 import CommandApdu, transceive
from drivers.ktpel_layout import PCSC_GET_UID_APDU
from drivers.pcsc.session import MASK, OK, SCARD_ERRORS, UNPOWER_CARD, CallTimeout, Session

_E_TIMEOUT = 0x8010000A
_E_SHARING_VIOLATION = 0x8010000B
_E_NO_READERS = 0x8010002E
#: pcscd or the reader is gone (or our watchdog cut the context): drop the context.
_SERVICE_GONE = frozenset(
    {
        0x8010001D,  # SCARD_E_NO_SERVICE
        0x8010001E,  # SCARD_E_SERVICE_STOPPED
        0x80100017,  # SCARD_E_READER_UNAVAILABLE
        0x80100009,  # SCARD_E_UNKNOWN_READER
        0x80100003,  # SCARD_E_INVALID_HANDLE (a handle of a pcscd that restarted)
        0x80100013,  # SCARD_F_COMM_ERROR (the socket to pcscd closed)
        _E_NO_READERS,
    }
)
#: A card is there but unusable.
_CARD_BAD = frozenset(
    {
        0x80100066,  # SCARD_W_UNRESPONSIVE_CARD
        0x80100065,  # SCARD_W_UNSUPPORTED_CARD
        0x8010000F,  # SCARD_E_PROTO_MISMATCH
    }
)
_STATE_PRESENT = 0x20
_STATE_MUTE = 0x200
_PROTOCOLS = {"T0": 0x1, "T1": 0x2, "any": 0x3}
_RESET_CARD = 0x1
_SHARE_SHARED = 0x2
#: How long a failed exchange waits for pcscd to report the card gone (vpcd polls 0.4 s).
REMOVAL_GRACE_S = 0.6
#: What a call into the pyscard extension can raise (SWIG argument/conversion errors).


class PcscOptions(BaseModel):
    """The ``[chip.options]`` table for driver ``pcsc``."""

    model_config = ConfigDict(extra="forbid")

    #: Regular expression (``re.search``) for the encoder's reader name.
    reader: str = Field(min_length=1)
    #: Regular expression for the SAM's reader, if the scripts need a SAM.
    sam_reader: str | None = None
    protocol: Literal["T0", "T1", "any"] = "any"
    #: Longest wait for one APDU's answer (a hung card → DeviceTimeout).
    transmit_timeout_s: float = Field(5.0, gt=0)
    #: Pause between looks for a reader while connect() waits.
    poll_s: float = Field(0.05, gt=0)
    #: Ask the reader for the UID (``FF CA 00 00 00``); off for contact readers that
    #: pass CLA FF on to a card that cannot take it (the serial is then GET DATA).
    reader_uid: bool = True
    #: How deadlines are enforced (see the module doc): "auto" or always "thread".
    deadline: Literal["auto", "thread"] = "auto"

    @field_validator("reader", "sam_reader")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return value


def _describe(hresult: int) -> str:
    return f"0x{hresult:08X} {str(scard.SCardGetErrorMessage(hresult)).strip()}"


class _Wait(NamedTuple):
    """No card yet: what connect() raises at its deadline, and the states to watch."""

    error: type[DeviceError]
    text: str
    states: tuple[Any, ...] = ()


_NO_SERVICE = "no PC/SC service (is pcscd running?)"


class PcscChipChannel(ChipChannel):
    """The encoder (or, from :meth:`sam_channel`, the SAM) as a PC/SC reader."""

    offline_errors = (OSError, *SCARD_ERRORS)

    def __init__(self, options: PcscOptions, *, role: str = "card") -> None:
        super().__init__()
        self.options = options
        self.role = role
        self._pattern = re.compile(options.reader)
        self._exclude = re.compile(options.sam_reader) if options.sam_reader else None
        self._session: Session | None = None
        self._sam: PcscChipChannel | None = None

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, printer: CardPrinter | None = None
    ) -> PcscChipChannel:
        """Build from the config table; ``printer`` is unused (the encoder is separate)."""
        return cls(validate_options(PcscOptions, options, "pcsc encoder"))

    def sam_channel(self) -> PcscChipChannel | None:
        """The channel on the SAM reader (``sam_reader``), or None if none is configured.

        Always the same instance. It connects by itself at its first APDU, and this
        channel's :meth:`disconnect` disconnects it too: one SAM session per card.
        """
        if self.options.sam_reader is None or self.role != "card":
            return None
        if self._sam is None:
            opts = self.options.model_copy(
                update={"reader": self.options.sam_reader, "sam_reader": None}
            )
            self._sam = PcscChipChannel(opts, role="sam")
        return self._sam

    @property
    def reader(self) -> str | None:
        """The name of the reader connected now."""
        return self._session.reader if self._session and self._session.hcard else None

    def reset(self, *, cold: bool = False) -> bytes:
        """Warm (or, with ``cold``, power-cycle) reset of the card; returns the new ATR."""
        atr = self._call("reset", lambda: self._reset(cold))
        self._trace("<", f"ATR {atr.hex()}")
        return atr

    def _close_internal(self) -> None:
        """Drop the connection and the context, the SAM's too (safe when there are none)."""
        self._drop(wait_s=self.options.transmit_timeout_s)
        if self._sam is not None:
            self._sam.close()

    # -- ChipChannel ---------------------------------------------------------------------

    def _connect_internal(self, timeout: float) -> bytes:
        self._drop()
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            found = self._find_card(deadline)
            if isinstance(found, bytes):
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._drop()
                raise found.error(f"{self.role}: {found.text} after {timeout:g} s")
            if self._session is not None and found.states:  # wakes when a card arrives
                self._on(
                    self._session,
                    deadline + 1.0,
                    scard.SCardGetStatusChange,
                    self._session.context,
                    int(min(remaining, 1.0) * 1000),
                    [(name, state) for name, state, _ in found.states],
                )
            else:
                time.sleep(min(self.options.poll_s, remaining))

    def _transmit_internal(self, apdu: bytes) -> bytes:
        session = self._session
        if session is None and self.role == "sam":
            self._trace("-", "SAM connects on first use")
            self._connect_internal(self.options.transmit_timeout_s)
            session = self._session
        if session is None or session.hcard is None:
            raise NoCard(f"{self.role}: transmit without a connected card")
        try:
            hresult, response = session.call(
                self.options.transmit_timeout_s,
                scard.SCardTransmit,
                session.hcard,
                session.pci,
                list(apdu),
            )
        except CallTimeout:
            self._drop()
            raise DeviceTimeout(
                f"{self.role}: no answer to INS {apdu[1]:02X} within "
                f"{self.options.transmit_timeout_s:g} s (card hung)"
            ) from None
        if hresult == OK and len(response) >= 2:
            return bytes(response)
        raise self._exchange_failed(session, hresult & MASK, len(response))

    def _disconnect_internal(self) -> None:
        self._close_internal()

    def _uid_internal(self) -> str | None:
        if not self.options.reader_uid:
            return None
        response = transceive(self._transmit_internal, CommandApdu.parse(PCSC_GET_UID_APDU))
        return response.data.hex().upper() if response.ok and response.data else None

    # -- helpers -----------------------------------------------------------------------

    def _open(self, deadline: float) -> Session | None:
        self._session = Session.open(
            f"pcsc-{self.role}", self.options, max(deadline - time.monotonic(), 0.0) + 1.0
        )
        return self._session

    def _on(self, session: Session, deadline: float, fn: Any, *args: Any) -> Any:
        """A PC/SC call on ``session`` before ``deadline``, else DeviceTimeout."""
        try:
            return session.call(deadline - time.monotonic(), fn, *args)
        except CallTimeout:
            self._drop()
            raise DeviceTimeout(
                f"{self.role}: PC/SC call {fn.__name__} blocked (a hung card holds the reader?)"
            ) from None

    def _readers(self, session: Session, deadline: float) -> list[str] | None:
        hresult, names = self._on(
            session, deadline + 1.0, scard.SCardListReaders, session.context, []
        )
        if hresult & MASK == _E_NO_READERS:
            return []
        if hresult & MASK != OK:
            return None
        exclude = self._exclude if self.role == "card" else None
        return [
            str(n)
            for n in names
            if self._pattern.search(str(n)) and not (exclude and exclude.search(str(n)))
        ]

    def _find_card(self, deadline: float) -> bytes | _Wait:
        """Connect to the first matching reader with a card: its ATR, or why not yet."""
        session = self._session or self._open(deadline)
        readers = None if session is None else self._readers(session, deadline)
        if session is None or readers is None:
            self._drop()
            return _Wait(DeviceOffline, _NO_SERVICE)
        if not readers:
            return _Wait(DeviceOffline, f"no reader matches {self.options.reader!r}")
        states = tuple(
            self._on(
                session,
                deadline,
                scard.SCardGetStatusChange,
                session.context,
                0,
                [(r, 0) for r in readers],
            )[1]
        )
        wait = _Wait(NoCard, f"no card in {', '.join(readers)}", states)
        for name, state, _ in states:
            if not state & _STATE_PRESENT:
                continue
            hresult, hcard, protocol = self._on(
                session,
                deadline + 1.0,
                scard.SCardConnect,
                session.context,
                name,
                _SHARE_SHARED,
                _PROTOCOLS[self.options.protocol],
            )
            hresult &= MASK
            if hresult == OK:
                session.reader, session.hcard = name, hcard
                session.pci = scard.SCARD_PCI_T0 if protocol == 0x1 else scard.SCARD_PCI_T1
                return self._atr(session, deadline)
            if hresult in _CARD_BAD or state & _STATE_MUTE:
                self._drop()
                raise ChipDead(f"{self.role} in {name!r}: {_describe(hresult)}")
            if hresult in _SERVICE_GONE:
                self._drop()
                return _Wait(DeviceOffline, f"{name!r} gone ({_describe(hresult)})")
            if hresult == _E_SHARING_VIOLATION:
                wait = _Wait(DeviceBusy, f"{name!r} in exclusive use elsewhere", states)
        return wait  # no card yet, or one briefly unpowered: wait on

    def _atr(self, session: Session, deadline: float) -> bytes:
        status = self._on(session, deadline + 1.0, scard.SCardStatus, session.hcard)
        if status[0] & MASK != OK:
            raise self._exchange_failed(session, status[0] & MASK, -1)
        return bytes(status[4])

    def _reset(self, cold: bool) -> bytes:
        session = self._session
        if session is None or session.hcard is None:
            raise NoCard(f"{self.role}: reset without a connected card")
        deadline = time.monotonic() + self.options.transmit_timeout_s
        hresult, protocol = self._on(
            session,
            deadline,
            scard.SCardReconnect,
            session.hcard,
            _SHARE_SHARED,
            _PROTOCOLS[self.options.protocol],
            UNPOWER_CARD if cold else _RESET_CARD,
        )
        if hresult & MASK != OK:
            raise self._exchange_failed(session, hresult & MASK, -1)
        session.pci = scard.SCARD_PCI_T0 if protocol == 0x1 else scard.SCARD_PCI_T1
        return self._atr(session, deadline)

    def _exchange_failed(self, session: Session, hresult: int, got: int) -> Exception:
        """Classify a failed exchange by the reader's state, then drop the session.

        pcscd notices a removed card at its next presence poll (vpcd: every 0.4 s), so a
        card still "present" gets up to :data:`REMOVAL_GRACE_S` to be seen leaving.
        """
        where = f"{self.role} in {session.reader!r}"
        state: int | None = None
        if hresult not in _SERVICE_GONE:
            try:
                state = self._settled_state(session)
            except CallTimeout:
                self._drop()
                return DeviceTimeout(f"{where}: reader blocked after a failed exchange")
        self._drop()
        what = _describe(hresult) if hresult != OK else f"{got} bytes, no status word"
        if state is None:
            return DeviceOffline(f"{where}: PC/SC service or reader gone ({what})")
        if not state & _STATE_PRESENT:
            return NoCard(f"{where}: card removed during the exchange ({what})")
        return ChipDead(f"{where}: card present but the exchange failed ({what})")

    @staticmethod
    def _settled_state(session: Session) -> int | None:
        """The reader's event state once a removal had time to show (None: pcscd gone)."""
        ctx, reader = session.context, session.reader
        hresult, states = session.call(1.0, scard.SCardGetStatusChange, ctx, 0, [(reader, 0)])
        if hresult & MASK != OK:
            return None
        state = int(states[0][1])
        if state & _STATE_PRESENT:
            hresult, states = session.call(
                REMOVAL_GRACE_S + 1.0,
                scard.SCardGetStatusChange,
                ctx,
                int(REMOVAL_GRACE_S * 1000),
                [(reader, state)],
            )
            if hresult & MASK == OK:
                state = int(states[0][1])
            elif hresult & MASK != _E_TIMEOUT:
                return None
        return state

    def _drop(self, *, wait_s: float = 1.0) -> None:
        """Disconnect (unpowering the card) and release the context (spoilt: abandon)."""
        session, self._session = self._session, None
        if session is not None:
            session.close(wait_s)
