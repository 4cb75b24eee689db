"""The project's strict virtual card, plugged into pcscd through vpcd's TCP protocol.

The card model is :class:`drivers.sim.card.SimCard` (or :class:`~drivers.sim.card.SimSam`
for the SAM reader), made stricter by :class:`StrictCard`. :class:`VirtualCard` is the
transport: a TCP client of one vpcd reader port, run in one thread, speaking vpcd's
framing (2-byte big-endian length, then the payload; a 1-byte payload is a control code:
00 power off, 01 power on, 02 reset, 04 "send your ATR"; anything longer is an APDU).

Behaviours a test can switch on while the card is plugged in:

* ``hang()`` — the card keeps the connection but stops answering APDUs (a mute chip);
* ``stop()`` — the card leaves the reader (socket closed, thread joined): "card removed";
* ``remove_after(n)`` — the card leaves by itself on its n-th APDU from now (mid-script);
* ``reader_uid`` — the slot acts as a contactless reader answering ``FF CA 00 00 00``
  with the chip serial (like a PC/SC part 3 reader); otherwise the card answers 6E00;
* ``reset_files()`` — blank the chip memory again; with ``fresh_per_power_on`` every
  power-on gives a new blank (a new serial, files empty), for one-card-per-blank flows.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Protocol

from drivers import ktpel_layout as layout
from drivers.iso7816 import CommandApdu
from drivers.sim.card import SimCard, SimSam

CTRL_POWER_OFF = 0x00
CTRL_POWER_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04
_REMOVED = b"<removed>"
#: Least time between one card leaving a vpcd port and the next arriving (pcscd polls
#: presence every 0.4 s).
SWAP_GAP_S = 0.5
_left_at: dict[int, float] = {}
#: How long a card waits for vpcd's listening socket (pcscd just started).
CONNECT_TIMEOUT_S = 5.0


class CardModel(Protocol):
    """What the transport needs from a card: an ATR on power-on and APDU answers."""

    def power_on(self) -> bytes: ...

    def process(self, raw: bytes) -> bytes: ...


class StrictCard(SimCard):
    """SimCard plus the stricter answers of a real chip.

    * UPDATE BINARY that starts inside the EF but runs past its end → ``6A84``
      (SimCard answers 6700); a case-4 UPDATE BINARY (with Le) → ``6700``.
    * READ BINARY / GET DATA keep SimCard's ``6Cxx`` for a wrong Le, ``6B00`` for an
      offset outside the EF; T=0 mode keeps its ``61xx`` + GET RESPONSE.
    """

    def _update_binary(self, cmd: CommandApdu) -> tuple[bytes, int]:
        if cmd.le is not None:
            return b"", 0x6700
        content, offset, _ = self._current_ef(cmd)
        if content is not None and cmd.data and offset + len(cmd.data) > len(content):
            return b"", 0x6A84
        return super()._update_binary(cmd)

    def reset_files(self) -> None:
        """Blank every EF again (a new, unwritten chip with the same serial)."""
        for content in self._files.values():
            content[:] = bytes(len(content))


def serial_for(n: int) -> bytes:
    """The 8-byte serial of virtual blank number ``n``: ``VC`` + 6 bytes big-endian."""
    return b"VC" + n.to_bytes(6, "big")


class VirtualCard:
    """One virtual card (or SAM) in one vpcd reader slot, served from its own thread.

    ``factory`` builds the card model; it is called once at start and, with
    ``fresh_per_power_on``, again at every power-on (so each connect of the station sees
    a new blank). ``model`` is the card answering now.
    """

    def __init__(
        self,
        port: int,
        factory: Callable[[], CardModel],
        *,
        fresh_per_power_on: bool = False,
        reader_uid: bool = False,
        latency_s: float = 0.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.port = port
        self.host = host
        self.factory = factory
        self.fresh_per_power_on = fresh_per_power_on
        self.reader_uid = reader_uid
        self.latency_s = latency_s  # per APDU, like a chip's EEPROM write time
        self._remove_at: int | None = None
        self.model: CardModel = factory()
        self.apdus = 0
        self.power_ons = 0
        self._hang = threading.Event()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> VirtualCard:
        """Connect to vpcd (retrying while pcscd comes up) and serve in a thread.

        pcscd polls vpcd for presence every 0.4 s: a card that replaces another faster
        than that is never seen inserted. So a start waits :data:`SWAP_GAP_S` after the
        last card left this port.
        """
        gap = _left_at.get(self.port, 0.0) + SWAP_GAP_S - time.monotonic()
        if gap > 0:
            time.sleep(gap)
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._stop.clear()
        self._hang.clear()
        self._thread = threading.Thread(target=self._serve, name=f"vcard-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take the card out of the reader: close the socket and join the thread."""
        self._stop.set()
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):  # vpcd closed its side already
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        _left_at[self.port] = time.monotonic()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                raise RuntimeError(f"virtual card thread on port {self.port} did not stop")
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def hang(self) -> None:
        """From now on, read APDUs but never answer them (the card went mute)."""
        self._hang.set()

    def remove_after(self, n: int) -> None:
        """Leave the reader (close the socket, unanswered) on the ``n``-th APDU from now."""
        self._remove_at = self.apdus + n

    def reset_files(self) -> None:
        """Blank the chip memory (StrictCard/SimCard models only)."""
        with self._lock:
            model = self.model
            if isinstance(model, StrictCard):
                model.reset_files()
            else:
                self.model = self.factory()

    # -- the vpcd protocol ---------------------------------------------------------------

    def _serve(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            while not self._stop.is_set():
                message = self._recv_message(sock)
                if message is None:
                    return
                answer = self._handle(message)
                if answer is _REMOVED:
                    sock.shutdown(socket.SHUT_RDWR)  # the card leaves: vpcd sees EOF
                    _left_at[self.port] = time.monotonic()
                    return
                if answer is not None:
                    sock.sendall(struct.pack(">H", len(answer)) + answer)
        except OSError:
            return  # socket shut down by stop(), or vpcd gone with pcscd

    def _handle(self, message: bytes) -> bytes | None:
        with self._lock:
            if len(message) == 1:
                code = message[0]
                if code == CTRL_POWER_ON:
                    self.power_ons += 1
                    if self.fresh_per_power_on and self.power_ons > 1:
                        self.model = self.factory()
                    self.model.power_on()
                elif code == CTRL_RESET:
                    self.model.power_on()
                elif code == CTRL_ATR:
                    return self._atr()
                return None  # power off / on / reset have no answer
            if self._hang.is_set():
                return None
            self.apdus += 1
            if self._remove_at is not None and self.apdus >= self._remove_at:
                self._remove_at = None
                return _REMOVED
            if self.latency_s:
                time.sleep(self.latency_s)
            if self.reader_uid and message == layout.PCSC_GET_UID_APDU:
                serial: bytes = getattr(self.model, "serial", b"")
                return serial + b"\x90\x00" if serial else b"\x6a\x81"
            return self.model.process(message)

    def _atr(self) -> bytes:
        atr: bytes = getattr(self.model, "atr", b"")
        return atr or self.model.power_on()

    @staticmethod
    def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            if hasattr(socket, "TCP_QUICKACK"):
                # vpcd writes length and payload separately: ACK at once (no 40 ms wait)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _recv_message(self, sock: socket.socket) -> bytes | None:
        header = self._recv_exact(sock, 2)
        if header is None:
            return None
        (length,) = struct.unpack(">H", header)
        return self._recv_exact(sock, length) if length else b""


def strict_card(serial: int = 1, *, t0: bool = False, require_auth: bool = False) -> StrictCard:
    """A blank KTP-el-like chip with serial :func:`serial_for` ``(serial)``."""
    return StrictCard(serial_for(serial), t0=t0, require_auth=require_auth)


def blanks(
    start: int = 1, *, t0: bool = False, require_auth: bool = False
) -> Callable[[], StrictCard]:
    """A factory of fresh blanks numbered from ``start`` (for ``fresh_per_power_on``)."""
    counter = iter(range(start, 1 << 40))
    return lambda: strict_card(next(counter), t0=t0, require_auth=require_auth)


def sam(*, t0: bool = False) -> SimSam:
    """The simulated SAM (T=1 by default, like the ministry's contact SAM)."""
    return SimSam(key=layout.SIM_SAM_KEY, t0=t0)


def main(argv: list[str] | None = None) -> int:
    """Run one strict card as its own process: ``python -m tests.support.vcard --port N``."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--serial", type=int, default=1)
    parser.add_argument("--t0", action="store_true")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    card = VirtualCard(
        args.port, lambda: strict_card(args.serial, t0=args.t0), latency_s=args.latency_ms / 1000
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set() and card.running:
        stop.wait(0.2)
    card.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
