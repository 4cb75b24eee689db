"""Start and stop a real pcscd with its own vpcd reader configuration, by PID.

pcscd serves one socket per machine (/run/pcscd/pcscd.comm; pcsc-lite 1.9 ignores
PCSCLITE_CSOCK_NAME for the daemon), so only one :class:`Pcscd` can run at a time. What a
suite can choose is the reader configuration: ``pcscd -c DIR`` reads DIR instead of
/etc/reader.conf.d, and our vpcd entry picks its own CHANNELID (= the TCP port of the
first slot; the second slot listens on port + 1) and its own reader name, so it does not
clash with a system vpcd on 35963/35964.

Readiness is checked only through PC/SC (listing the readers with a fresh context),
never by connecting to vpcd's ports: vpcd would take such a probe for a card.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.vcard import CardModel, VirtualCard, blanks, sam

#: Where Debian's vsmartcard-vpcd installs the reader driver.
VPCD_DRIVERS = (
    Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so"),
    Path("/usr/lib64/pcsc/drivers/serial/libifdvpcd.so"),
)
PID_FILE = Path("/run/pcscd/pcscd.pid")
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
#: First vpcd channel id (= TCP port) tried; the pair (port, port + 1) must be free.
FIRST_PORT = 0x9C40


class PcscdUnavailable(RuntimeError):
    """This machine cannot run the PC/SC tests (the message says what is missing)."""


def find_pcscd() -> str | None:
    return shutil.which("pcscd") or next(
        (p for p in ("/usr/sbin/pcscd", "/sbin/pcscd") if os.access(p, os.X_OK)), None
    )


def find_vpcd() -> Path | None:
    return next((p for p in VPCD_DRIVERS if p.exists()), None)


def running_pcscd() -> int | None:
    """PID of a pcscd already running on this machine (from its PID file), if any."""
    try:
        pid = int(PID_FILE.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # stale file left by a kill -9: a new pcscd starts anyway
    except PermissionError:
        return pid
    return pid


def _port_pair_free(port: int) -> bool:
    """Whether ports ``port`` and ``port + 1`` can be bound (checked before vpcd exists)."""
    for p in (port, port + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as vpcd does
            try:
                s.bind(("0.0.0.0", p))
            except OSError:
                return False
    return True


def list_readers() -> list[str] | None:
    """The reader names pcscd offers now, with a fresh context (None: pcscd not there)."""
    from smartcard import scard

    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return None
    try:
        hresult, names = scard.SCardListReaders(context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            return None
        return [str(n) for n in names]
    finally:
        scard.SCardReleaseContext(context)


class Pcscd:
    """One pcscd in the foreground with a private vpcd configuration under ``workdir``.

    ``readers`` are the two vpcd slots' names, ``ports`` their TCP ports. ``restart()``
    stops and starts it again with the same readers (cards plugged in must be restarted
    too: vpcd closes their sockets when pcscd stops).
    """

    def __init__(self, workdir: Path, *, name: str = "EKTP Test PCD") -> None:
        binary, driver = find_pcscd(), find_vpcd()
        if binary is None:
            raise PcscdUnavailable("pcscd is not installed (apt-get install pcscd)")
        if driver is None:
            raise PcscdUnavailable("vpcd is not installed (apt-get install vsmartcard-vpcd)")
        self.binary = binary
        self.driver = driver
        self.workdir = workdir
        self.name = name
        self.confdir = workdir / "reader.conf.d"
        self.log_path = workdir / "pcscd.log"
        self.port = self._choose_port()
        self.ports = (self.port, self.port + 1)
        self.readers = (f"{name} 00 00", f"{name} 00 01")
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @staticmethod
    def _choose_port() -> int:
        for port in range(FIRST_PORT, FIRST_PORT + 200, 2):
            if _port_pair_free(port):
                return port
        raise PcscdUnavailable(f"no free TCP port pair from {FIRST_PORT} for vpcd")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> Pcscd:
        """Start pcscd and wait until it lists our two readers."""
        other = running_pcscd()
        if other is not None:
            raise PcscdUnavailable(
                f"another pcscd (pid {other}) is running: stop it to run the PC/SC tests "
                "(systemctl stop pcscd.socket pcscd)"
            )
        self.confdir.mkdir(parents=True, exist_ok=True)
        (self.confdir / "vpcd").write_text(
            f'FRIENDLYNAME "{self.name}"\n'
            f"DEVICENAME   /dev/null:0x{self.port:04X}\n"
            f"LIBPATH      {self.driver}\n"
            f"CHANNELID    0x{self.port:04X}\n"
        )
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "--foreground", "--info", "-c", str(self.confdir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise PcscdUnavailable(f"pcscd exited with {code} at start: {self.log_tail()}")
            names = list_readers()
            if names is not None and all(r in names for r in self.readers):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise PcscdUnavailable(
                    f"pcscd not ready after {READY_TIMEOUT_S} s: {self.log_tail()}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM our pcscd (SIGKILL if it lingers) and reap it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL our pcscd (a crash: it leaves its socket and PID file behind)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])


# -- one pcscd per process, shared by every test that needs one ---------------------------

_shared: Pcscd | None = None


def shared_pcscd(workdir: Path) -> Pcscd:
    """The process's pcscd (started in ``workdir`` if none runs yet; restarted if it died).

    pcscd is one per machine, so every suite of this process shares one; it is stopped by
    :func:`stop_shared_pcscd` (the PC/SC conftest's session teardown) or at exit.
    """
    global _shared
    if _shared is None:
        _shared = Pcscd(workdir)
        atexit.register(stop_shared_pcscd)
    if _shared.proc is None or _shared.proc.poll() is not None:
        _shared.proc = None
        _shared.start()
    return _shared


def stop_shared_pcscd() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


@dataclass
class PcscEnv:
    """A running pcscd, the virtual card in slot 0, optionally the SAM in slot 1.

    ``options`` is the ``[chip.options]`` table for driver ``pcsc`` (reader patterns for
    exactly these slots), usable as ``PcscChipChannel.from_options(env.options)``.
    """

    pcscd: Pcscd
    card: VirtualCard
    sam: VirtualCard | None = None

    @property
    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "reader": f"^{re.escape(self.pcscd.readers[0])}$",
            "transmit_timeout_s": 2.0,
            "poll_s": 0.02,
        }
        if self.sam is not None:
            opts["sam_reader"] = f"^{re.escape(self.pcscd.readers[1])}$"
        return opts


@contextmanager
def pcsc_environment(
    workdir: Path,
    factory: Callable[[], CardModel] | None = None,
    *,
    fresh_per_power_on: bool = True,
    with_sam: bool = False,
) -> Iterator[PcscEnv]:
    """pcscd + a virtual card (a new blank at every power-on by default) [+ the SAM].

    The cards are stopped (threads joined) on exit; pcscd stays up for the next user of
    :func:`shared_pcscd`.
    """
    daemon = shared_pcscd(workdir)
    card = VirtualCard(
        daemon.ports[0], factory or blanks(), fresh_per_power_on=fresh_per_power_on
    ).start()
    sam_card: VirtualCard | None = None
    try:
        if with_sam:
            sam_card = VirtualCard(daemon.ports[1], sam).start()
        yield PcscEnv(daemon, card, sam_card)
    finally:
        card.stop()
        if sam_card is not None:
            sam_card.stop()


def wait_card(reader: str, *, present: bool = True, timeout: float = 5.0) -> None:
    """Wait until pcscd sees a card in ``reader`` (or, ``present=False``, sees none)."""
    from smartcard import scard

    want = 0x20 if present else 0x10  # SCARD_STATE_PRESENT / SCARD_STATE_EMPTY
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise PcscdUnavailable(f"no PC/SC service: 0x{hresult & 0xFFFFFFFF:08X}")
    try:
        deadline = time.monotonic() + timeout
        states = [(reader, scard.SCARD_STATE_UNAWARE)]
        while True:
            hresult, now = scard.SCardGetStatusChange(context, 0, states)
            if hresult == scard.SCARD_S_SUCCESS and now[0][1] & want:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{reader}: card {'present' if present else 'gone'} not seen within {timeout} s"
                )
            if hresult == scard.SCARD_S_SUCCESS:
                states = [(reader, now[0][1])]
                scard.SCardGetStatusChange(context, int(min(remaining, 0.5) * 1000), states)
            else:
                time.sleep(0.02)
    finally:
        scard.SCardReleaseContext(context)
