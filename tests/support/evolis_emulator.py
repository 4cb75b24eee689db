"""A fake Evolis printer at the protocol level, and harnesses serving it on a pty or TCP.

:class:`EvolisEmulator` parses the byte stream as the printer does: ``ESC`` starts a
command, fields end at ``;``, and after the header of ``Db``/``Dbc`` it counts the
bitmap bytes (which may contain CR and ESC) before expecting the final CR. It keeps the
mechanics (hopper, card position, output/reject trays, ribbon, cover, modes) and injects
faults (:class:`Fault`), once each, optionally on a named command. Until ``Pem;2`` the
printer manages errors itself: it shows them on its panel and stays silent on the link.

:class:`EmulatorOnPty` (and ``EmulatorOnTcp`` in :mod:`tests.support.evolis_links`) run
it in a thread; ``.options`` is the options table for :class:`drivers.evolis.printer.EvolisPrinter`.
A ``DISCONNECT`` fault drops the link (the pty is re-created behind the same symlink, the
TCP server accepts again).
"""

from __future__ import annotations

import enum
import os
import select
import shutil
import tempfile
import threading
import time
import tty
from dataclasses import dataclass, field
from typing import Any

from drivers.evolis import protocol as proto

GARBAGE = b"\x8f#\xe2?\x00\x13\xfe"
MAX_HEADER = 64


class Fault(enum.StrEnum):
    COVER_OPEN_MID_JOB = "cover_open_mid_job"  # the cover opens after the first panel
    FEEDER_EMPTY = "feeder_empty"  # the hopper is empty from now on
    RIBBON_END = "ribbon_end"  # the ribbon ends at the next panel download
    JAM = "jam"  # the next card movement jams
    NO_REPLY = "no_reply"  # the next command is lost: no reply
    GARBAGE = "garbage"  # the next command is done, its reply garbled
    DISCONNECT = "disconnect"  # the link drops at the next command (modes lost)


@dataclass
class Card:
    number: int
    panels: dict[str, bytes] = field(default_factory=dict)  # decoded panel data
    printed: bool = False


MOVES = frozenset({"Sis", "Sic", "Ss", "Se", "Ser", "Seb"})


class EvolisEmulator:
    """The printer: feed it bytes, get its replies (thread-safe)."""

    def __init__(
        self,
        *,
        hopper: int = 10,
        ribbon: int = 100,
        panel_delay_s: float = 0.0,
        serial: str = "EMU0000001",
        old_firmware: bool = False,
    ) -> None:
        self.hopper = hopper
        self.ribbon = ribbon
        self.panel_delay_s = panel_delay_s
        self.serial = serial
        self.old_firmware = old_firmware
        self.card: Card | None = None
        self.position = "none"  # none | contact | contactless | print | jammed
        self.output: list[Card] = []
        self.rejected: list[Card] = []
        self.cover_open = False
        self.pem, self.pmi = "0", "F"
        self.ribbon_spec = ""
        self.sequence: dict[str, Any] | None = None
        self.counters = {"cards": 0, "panels": 0}
        self.log: list[bytes] = []  # each command, bitmap data replaced by its length
        self._buf = bytearray()
        self._faults: list[tuple[Fault, str | None]] = []
        self._disconnect = False
        self._next_card = 1
        self._lock = threading.RLock()

    # -- for tests -------------------------------------------------------------------

    def inject(self, fault: Fault, on: str | None = None) -> None:
        """Arm ``fault`` once; ``on`` limits it to that command name."""
        with self._lock:
            if fault is Fault.FEEDER_EMPTY:
                self.hopper = 0
            else:
                self._faults.append((fault, on))

    def close_cover(self) -> None:
        with self._lock:
            self.cover_open = False

    def clear_jam(self) -> None:
        """A person pulls the jammed card out into the reject box."""
        with self._lock:
            if self.card is not None:
                self.rejected.append(self.card)
            self.card, self.position = None, "none"

    def take_disconnect(self) -> bool:
        with self._lock:
            hit, self._disconnect = self._disconnect, False
            return hit

    def names(self) -> list[str]:
        """The command names received so far."""
        return [c[1:].split(b";")[0].rstrip(b"\r").decode() for c in self.log]

    # -- the byte stream -------------------------------------------------------------

    def receive(self, data: bytes) -> list[bytes]:
        with self._lock:
            self._buf += data
            replies: list[bytes] = []
            while not self._disconnect and (cmd := self._next_command()) is not None:
                fields, payload, well_formed = cmd
                reply = self._dispatch(fields, payload, well_formed)
                if reply is not None:
                    replies.append(reply)
            if self._disconnect:
                self._buf.clear()
                self.pem, self.pmi, self.sequence = "0", "F", None
            return replies

    def _next_command(self) -> tuple[list[bytes], bytes | None, bool] | None:
        buf = self._buf
        skip = buf.find(bytes([proto.ESC]))
        if skip < 0:
            buf.clear()  # NULs between commands (and noise) are ignored
            return None
        del buf[:skip]
        fields: list[bytes] = []
        start = 1
        for i in range(1, len(buf)):
            if buf[i] == proto.CR:
                fields.append(bytes(buf[start:i]))
                self.log.append(bytes(buf[: i + 1]))
                del buf[: i + 1]
                return fields, None, True
            if buf[i] == ord(";"):
                fields.append(bytes(buf[start:i]))
                start = i + 1
                need = self._data_length(fields)
                if need is not None:
                    end = start + need
                    if len(buf) <= end:
                        return None
                    well_formed = buf[end] == proto.CR
                    self.log.append(bytes(buf[:start]) + b"<%d>\r" % need)
                    payload = bytes(buf[start:end])
                    del buf[: end + 1]
                    return fields, payload, well_formed
            if i > MAX_HEADER:
                del buf[:i]
                return [b"?"], None, False
        return None

    @staticmethod
    def _data_length(fields: list[bytes]) -> int | None:
        try:
            if fields[0] == b"Db" and len(fields) == 3:
                return proto.panel_size(int(fields[2]))
            if fields[0] == b"Dbc" and len(fields) == 4:
                return int(fields[3])
        except ValueError:
            return 0
        return None

    # -- commands --------------------------------------------------------------------

    def _take_fault(self, name: str, *kinds: Fault) -> Fault | None:
        for i, (fault, on) in enumerate(self._faults):
            if fault in kinds and on in (None, name):
                del self._faults[i]
                return fault
        return None

    def _dispatch(self, fields: list[bytes], payload: bytes | None, ok: bool) -> bytes | None:
        name = fields[0].decode("latin-1")
        params = [f.decode("latin-1") for f in fields[1:]]
        link_fault = self._take_fault(name, Fault.DISCONNECT, Fault.NO_REPLY)
        if link_fault is Fault.DISCONNECT:
            self._disconnect = True
            return None
        if link_fault is Fault.NO_REPLY:
            return None
        garbled = self._take_fault(name, Fault.GARBAGE) is not None
        if not ok:
            reply = "ERROR PARAMETRES"
        elif name in MOVES and self.position != "jammed" and self._take_fault(name, Fault.JAM):
            self.position = "jammed"
            reply = "CARD JAM"
        else:
            reply = self._execute(name, params, payload)
        if reply.startswith(proto.ERROR_WORDS) and self.pem != "2":
            return None  # printer-managed errors: shown on the panel, silence on the link
        return GARBAGE if garbled else reply.encode("ascii")

    def _execute(self, name: str, params: list[str], payload: bytes | None) -> str:
        p0 = params[0] if params else ""
        queries = {
            "Rtp": "Evolis Primacy",
            "Rsn": self.serial,
            "Rfv": "1.7.3",
            "Rkn": "KIT-EMU",
            "Rr": "YMCKO",
            "Rcr": "OK" if self.ribbon > 0 else "ERROR RIBBON",
        }
        if name in queries:
            return queries[name]
        if name == "Rrt" and p0 == "count":
            return str(self.ribbon)
        if name == "Rco" and p0 in ("c", "p"):
            return str(self.counters["cards" if p0 == "c" else "panels"])
        if name == "Rlr" and p0 == "p":
            return self._where()
        if name == "Rse" and p0 in ("f", "o", "b"):
            high = {"f": self.hopper > 0, "o": not self.cover_open, "b": True}[p0]
            return "5,00 Volts" if high else "0,00 Volts"
        if name == "Pem" and p0 in ("0", "1", "2"):
            self.pem = p0
            return "OK"
        if name == "Pmi" and p0 in ("F", "B", "M"):
            self.pmi = p0
            return "OK"
        if name == "Srs":
            self.pem, self.pmi, self.sequence = "0", "F", None
            return "OK"
        if name in ("Pr", "Ss", "Sr", "Sv", "Db", "Dbc"):
            return self._printing(name, params, payload)
        if name in MOVES or name == "Scs":
            return self._move(name)
        return "ERROR CDE"

    def _where(self) -> str:
        return {
            "none": "NO CARD" if self.old_firmware else "OK",
            "contact": "SMART CARD",
            "contactless": "CONTACTLESS CARD",
            "print": "CARD",
            "jammed": "ERR CARD",
        }[self.position]

    def _pick(self) -> str | None:
        """A blank from the hopper into the printer; the error reply if none."""
        if self.hopper <= 0:
            return "FEEDER EMPTY"
        self.hopper -= 1
        self.card = Card(self._next_card)
        self._next_card += 1
        self.counters["cards"] += 1
        return None

    def _move(self, name: str) -> str:
        if self.cover_open:
            return "COVER OPEN"
        if self.position == "jammed":
            return "CARD JAM"
        if name in ("Sis", "Sic"):
            if self.card is None and (err := self._pick()):
                return err
            self.position = "contact" if name == "Sis" else "contactless"
            return "OK"
        if name == "Scs" and self.position in ("contact", "contactless"):
            name = "Ser"  # seen in use: the printer rejects a card parked at the chip
        if name == "Ss":
            return self._start()
        if self.card is not None and name in ("Se", "Ser", "Seb"):
            if name == "Se" and self.sequence is not None:
                time.sleep(self.panel_delay_s)  # the last panel prints now
                self.ribbon -= 1
                self.counters["panels"] += len(self.sequence["panels"])
                self.card.printed = True
            (self.output if name == "Se" else self.rejected).append(self.card)
            self.card, self.position, self.sequence = None, "none", None
        return "OK"

    def _start(self) -> str:
        if not self.ribbon_spec:
            return "ERROR PARAMETRES"
        if self.ribbon <= 0:
            return "ERROR RIBBON"
        if self.card is not None and self.pmi == "F":
            self.rejected.append(self.card)  # a new card is taken: the one inside is lost
            self.card = None
        if self.card is None and (err := self._pick()):
            return err
        self.position = "print"
        self.sequence = {"side": None, "panels": []}
        return "OK"

    def _printing(self, name: str, params: list[str], payload: bytes | None) -> str:
        if name == "Pr":
            if not params or not params[0] or set(params[0]) - set(proto.PANEL_ORDER):
                return "ERROR PARAMETRES"
            self.ribbon_spec = params[0]
            return "OK"
        if name == "Ss":
            return self._move(name)
        seq = self.sequence
        if seq is None or self.card is None:
            return "ERROR PARAMETRES"
        if name in ("Sr", "Sv"):
            seq["side"] = name
            return "OK"
        if self.cover_open:
            return "COVER OPEN"
        letter = params[0] if params else ""
        allowed = self.ribbon_spec if seq["side"] == "Sr" else "k"
        if letter not in allowed or payload is None:
            return "ERROR PARAMETRES"
        try:
            data = proto.decompress_mono(payload) if name == "Dbc" else payload
        except ValueError:
            return "ERROR PARAMETRES"
        if seq["panels"]:
            time.sleep(self.panel_delay_s)  # this download starts printing the previous one
            if self._take_fault(name, Fault.COVER_OPEN_MID_JOB):
                self.cover_open, self.sequence = True, None
                return "COVER OPEN"
        if self._take_fault(name, Fault.RIBBON_END) or self.ribbon <= 0:
            self.ribbon, self.sequence = 0, None
            return "ERROR RIBBON"
        side = "" if seq["side"] == "Sr" else "back-"
        self.card.panels[side + letter] = data
        seq["panels"].append(side + letter)
        return "OK"


class _Harness:
    options: dict[str, Any]

    def __init__(self, emulator: EvolisEmulator | None, **overrides: Any) -> None:
        self.emulator = emulator or EvolisEmulator()
        self._stop = threading.Event()
        self._overrides = overrides
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def _base_options(self) -> dict[str, Any]:
        return {
            "reply_gap_s": 0.005,
            "min_print_s": 0,
            "reset_wait_s": 0,
            "timeout_s": 5.0,
            **self._overrides,
        }

    def _run(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving and join the thread."""
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> _Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmulatorOnPty(_Harness):
    """The emulator on the master side of a pseudo-terminal; ``.options`` for serial."""

    def __init__(self, emulator: EvolisEmulator | None = None, **overrides: Any) -> None:
        super().__init__(emulator, **overrides)
        self._dir = tempfile.mkdtemp(prefix="evolis-pty-")
        self.port = os.path.join(self._dir, "ttyEVOLIS")
        self._master, self._slave = -1, -1
        self._plug()
        self.options = {
            "transport": "serial",
            "port": self.port,
            "baudrate": 115200,
            **self._base_options(),
        }
        self._thread.start()

    def _plug(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        link = self.port + ".new"
        os.symlink(os.ttyname(self._slave), link)
        os.replace(link, self.port)

    def _unplug(self, fds: tuple[int, int] | None = None) -> None:
        for fd in fds or (self._master, self._slave):
            os.close(fd)

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.02)
            if not ready:
                continue
            for reply in self.emulator.receive(os.read(self._master, 1 << 16)):
                os.write(self._master, reply)
            if self.emulator.take_disconnect():
                old = (self._master, self._slave)
                self._plug()  # the new device appears under the same path first
                self._unplug(old)

    def stop(self) -> None:
        super().stop()
        self._unplug()
        shutil.rmtree(self._dir, ignore_errors=True)
