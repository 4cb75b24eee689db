"""The Evolis card printer driver (Primacy, Zenius … not Avansia), over USB, serial or TCP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.base import (
    CardPosition,
    CardPrinter,
    FrameLog,
    PrinterInfo,
    PrinterStatus,
    PrintJob,
    derive_state,
    validate_options,
)
from drivers.errors import CardJam, DeviceTimeout, PrinterError, PrintFailed
from drivers.evolis import protocol as proto
from drivers.evolis.transports import (
    EVOLIS_VENDOR_ID,
    SerialTransport,
    TcpTransport,
    Transport,
    UsbTransport,
)

__all__ = ["EvolisOptions", "EvolisPrinter"]


class EvolisOptions(BaseModel):
    """The ``[printer.options]`` table for driver ``evolis``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transport: Literal["usb", "serial", "tcp"] = "usb"
    usb_vendor_id: int = Field(EVOLIS_VENDOR_ID, ge=0, le=0xFFFF)
    usb_product_id: int | None = Field(None, ge=0, le=0xFFFF)
    port: str | None = None  # serial device, e.g. /dev/ttyUSB0
    baudrate: int = Field(115200, ge=2400, le=115200)
    parity: Literal["N", "O", "E"] = "N"
    stopbits: Literal[1, 2] = 1
    flow: Literal["none", "xonxoff", "rtscts"] = "none"
    host: str | None = None
    tcp_port: int | None = Field(None, ge=1, le=65535)
    ribbon: Literal["ymcko", "ymck", "ko", "k"] = "ymcko"
    colour_bits: Literal[32, 64, 128] = 32
    compress: bool = True
    encoder: Literal["contact", "contactless"] = "contact"
    timeout_s: float = Field(30.0, gt=0)
    eject_timeout_s: float = Field(60.0, gt=0)
    print_timeout_s: float = Field(300.0, gt=0)
    reply_gap_s: float = Field(0.05, ge=0)
    min_print_s: float = Field(5.0, ge=0)
    reset_wait_s: float = Field(5.0, ge=0)

    @model_validator(mode="after")
    def _transport_settings(self) -> EvolisOptions:
        if self.transport == "serial" and not self.port:
            raise ValueError("port: required for transport 'serial'")
        if self.transport == "tcp" and (not self.host or self.tcp_port is None):
            raise ValueError("host, tcp_port: required for transport 'tcp'")
        return self


def transport_factory(opts: EvolisOptions, usb_backend: Any = None) -> Callable[[], Transport]:
    """A function opening a new link to the printer as ``opts`` describe it."""
    if opts.transport == "serial":
        port = opts.port or ""
        return lambda: SerialTransport(
            port,
            baudrate=opts.baudrate,
            parity=opts.parity,
            stopbits=opts.stopbits,
            flow=opts.flow,
        )
    if opts.transport == "tcp":
        host, tcp_port = opts.host or "", opts.tcp_port or 0
        return lambda: TcpTransport(host, tcp_port, connect_timeout=opts.timeout_s)
    return lambda: UsbTransport(
        vendor_id=opts.usb_vendor_id, product_id=opts.usb_product_id, backend=usb_backend
    )


class EvolisPrinter(CardPrinter):
    """An Evolis printer driven with its escape commands (see the module docstring)."""

    ejects_with_print = True

    def __init__(self, connect: Callable[[], Transport], options: EvolisOptions) -> None:
        super().__init__()
        self.options = options
        self._connect = connect
        self._link: Transport | None = None
        self._lock = threading.RLock()
        #: the command-level exchange (bitmap data elided), for diagnostics
        self.wire = FrameLog(64)
        #: how many times a link was (re)established
        self.connects = 0
        self._stale = False  # a reply may still be on its way: drain before the next

    @classmethod
    def from_options(cls, options: dict[str, Any], *, usb_backend: Any = None) -> EvolisPrinter:
        """Build from the config's options table; ValueError names a bad or unknown key."""
        opts = validate_options(EvolisOptions, options, "evolis printer")
        return cls(transport_factory(opts, usb_backend), opts)

    # -- the exchange ------------------------------------------------------------------

    def _ensure_link(self) -> Transport:
        if self._link is None:
            self._link = self._connect()
            self.connects += 1
            self._send_modes()
        return self._link

    def _drop_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            try:
                link.close()
            except OSError as exc:
                self.wire.add("!", f"close failed: {type(exc).__name__}")

    def _send_modes(self) -> None:
        self._ok("Pem", "2")
        self._ok("Pmi", "F")

    def _ask(self, name: str, *params: str | bytes, timeout: float | None = None) -> str:
        """Send one command and return its reply text (raises on silence or link loss)."""
        limit = self.options.timeout_s if timeout is None else timeout
        return self._exchange(proto.command(name, *params), limit)

    def _exchange(self, cmd: bytes, limit: float) -> str:
        what = proto.describe(cmd)
        with self._lock:
            link = self._ensure_link()
            self.wire.add(">", what)
            try:
                if self._stale:
                    link.drain()
                    self._stale = False
                link.write(cmd, limit)
                raw = self._read_reply(link, limit)
            except OSError:
                self.wire.add("!", f"{what}: link lost")
                self._drop_link()
                raise
            if not raw:
                self.wire.add("!", f"{what}: no reply in {limit:g}s")
                self._stale = True
                raise DeviceTimeout(f"{what}: no reply from the printer in {limit:g} s")
            reply = proto.decode_reply(raw)
            self.wire.add("<", reply if proto.is_intelligible(reply) else f"<{len(raw)} bytes>")
            return reply

    def _read_reply(self, link: Transport, timeout: float) -> bytes:
        data = link.read(timeout)
        if data and not link.message_oriented:
            while more := link.read(self.options.reply_gap_s):
                data += more
        if data and not proto.is_intelligible(proto.decode_reply(data)):
            self._stale = True
        return data

    def _ok(self, name: str, *params: str | bytes, timeout: float | None = None) -> None:
        reply = self._ask(name, *params, timeout=timeout)
        proto.check_reply(reply, name if not params else f"{name};{params[0]!s}")

    def _query(self, name: str, *params: str) -> str:
        reply = self._ask(name, *params)
        return proto.check_reply(reply, ";".join((name, *params)), expect_ok=False)

    def _position(self) -> CardPosition:
        reply = self._ask("Rlr", "p")
        if reply not in proto.POSITIONS:
            proto.check_reply(reply, "Rlr;p", expect_ok=False)
        return proto.parse_position(reply)

    def _sensor(self, which: str) -> bool:
        """Whether sensor ``which`` reads high (cover closed, cards in the feeder)."""
        return proto.parse_volts(self._query("Rse", which)) >= proto.VOLTS_THRESHOLD

    # -- the printer contract ----------------------------------------------------------

    def _open_internal(self) -> PrinterInfo:
        with self._lock:
            if self._link is not None:  # re-open: resend the modes on a fresh link
                self._drop_link()
            return PrinterInfo(
                model=self._query("Rtp"), serial=self._query("Rsn"), firmware=self._query("Rfv")
            )

    def _close_internal(self) -> None:
        with self._lock:
            self._drop_link()

    def _status_internal(self) -> PrinterStatus:
        with self._lock:
            card = self._position()
            cover_closed = self._sensor("o")
            cards_in_feeder = self._sensor("f")
            ribbon_end = self._ask("Rcr") != proto.OK
            ribbon_left = self._ribbon_left()
        return PrinterStatus(
            state=derive_state(
                cover_open=not cover_closed,
                jammed=card is CardPosition.JAMMED,
                ribbon_out=ribbon_end or ribbon_left == 0,
                feeder_empty=not cards_in_feeder,
            ),
            card=card,
            hopper=None if cards_in_feeder else 0,
            ribbon_left=ribbon_left,
        )

    def _ribbon_left(self) -> int | None:
        reply = self._ask("Rrt", "count")
        return int(reply) if reply.isdigit() else None

    def _feed_internal(self) -> str | None:
        with self._lock:
            where = self._position()
            if where is not CardPosition.NONE:
                raise PrinterError(f"feed: a card is already in the printer ({where}); reject it")
            self._ok(
                "Sic" if self.options.encoder == "contactless" else "Sis",
                timeout=self.options.eject_timeout_s,
            )
        return None

    def _print_internal(self, job: PrintJob) -> None:
        opts = self.options
        try:
            commands = [self._panels_cmds(job.front)]
            if job.back is not None:
                commands.append(self._panels_cmds(job.back, ribbon="k"))
        except ValueError as exc:
            raise PrintFailed(f"print: job {job.label} cannot be printed: {exc}") from exc
        with self._lock:
            where = self._position()
            if where is CardPosition.NONE:
                raise PrinterError("print: no card in the printer; feed one first")
            if where is CardPosition.JAMMED:
                raise CardJam("print: the card in the printer is jammed; reject it")
            start = time.monotonic()
            deadline = start + opts.print_timeout_s
            self._ok("Pmi", "B")
            self._ok("Pr", opts.ribbon)
            self._ok("Ss")
            for side, downloads in zip(("Sr", "Sv"), commands, strict=False):
                self._ok(side)
                for letter, cmd in downloads:
                    self._download(letter, cmd, deadline)
            self._ok("Se", timeout=self._left(deadline, opts.eject_timeout_s))
            took = time.monotonic() - start
            self._ok("Pmi", "F")
        if took < opts.min_print_s:
            raise PrintFailed(
                f"print: finished in {took:.1f} s, implausibly fast (< {opts.min_print_s:g} s);"
                " pull the card from the output tray"
            )

    def _panels_cmds(self, face: bytes, ribbon: str | None = None) -> list[tuple[str, bytes]]:
        opts = self.options
        panels = proto.face_panels(face, ribbon or opts.ribbon, opts.colour_bits)
        return [
            (
                letter,
                proto.download(letter, data, colour_bits=opts.colour_bits, compress=opts.compress),
            )
            for letter, data in panels.items()
        ]

    def _left(self, deadline: float, limit: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeviceTimeout(f"print: not finished in {self.options.print_timeout_s:g} s")
        return min(left, limit)

    def _download(self, letter: str, cmd: bytes, deadline: float) -> None:
        reply = self._exchange(cmd, self._left(deadline, self.options.timeout_s))
        proto.check_reply(reply, f"print panel {letter}")

    def _eject_internal(self) -> None:
        with self._lock:
            where = self._position()
            if where is CardPosition.NONE:
                return  # Se at the end of the print already put it in the output tray
            if where is CardPosition.JAMMED:
                raise CardJam("eject: the card is jammed; open the printer")
            self._ok("Se", timeout=self.options.eject_timeout_s)

    def _reject_internal(self) -> None:
        with self._lock:
            if self._position() is CardPosition.NONE:
                return
            self._ok("Ser", timeout=self.options.eject_timeout_s)

    def _reset_internal(self) -> None:
        with self._lock:
            self._ok("Srs", timeout=self.options.eject_timeout_s)
            time.sleep(self.options.reset_wait_s)
            self._send_modes()

    # -- for station doctor ------------------------------------------------------------

    def diagnostics(self) -> dict[str, str]:
        """Supplies and counters as the printer reports them (unknown ones left out)."""
        asks = {
            "head kit": ("Rkn",),
            "ribbon type": ("Rr",),
            "ribbon left": ("Rrt", "count"),
            "cards inserted": ("Rco", "c"),
            "panels printed": ("Rco", "p"),
        }
        out: dict[str, str] = {}
        with self._lock:
            for label, (name, *params) in asks.items():
                reply = self._ask(name, *params)
                if proto.is_intelligible(reply) and proto.error_for(reply) is None:
                    out[label] = reply
        return out
