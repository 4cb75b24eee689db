"""PC/SC contexts with deadlines, for drivers.pcsc.channel."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

from smartcard import scard

MASK = 0xFFFFFFFF
OK = 0
UNPOWER_CARD = 0x2

SCARD_ERRORS: tuple[type[BaseException], ...] = (
    scard.error,
    TypeError,
    ValueError,
    OverflowError,
)


class SessionOptions(Protocol):
    """What a session needs of the driver's options."""

    @property
    def deadline(self) -> Literal["auto", "thread"]: ...

    @property
    def transmit_timeout_s(self) -> float: ...


class CallTimeout(Exception):
    """A PC/SC call did not finish before its deadline (the context is spoilt)."""


# -- deadline guards -------------------------------------------------------------------


def _socket_fds() -> set[int]:
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                fds.add(int(name))
    return fds


def _pcscd_socket(before: set[int]) -> int | None:
    """The one new UNIX socket connected to a path (pcsc-lite's), else None."""
    found = []
    for fd in _socket_fds() - before:
        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
            if sock.family == socket.AF_UNIX and sock.getpeername():
                found.append(fd)
    return found[0] if len(found) == 1 else None


class Watchdog:
    """Calls run in the caller's thread; a ticking thread cuts the context at deadlines."""

    def __init__(self, fd: int, name: str, tick: float) -> None:
        self._fd = fd
        self._inode = os.fstat(fd).st_ino  # never cut a socket that reused the number
        self._tick = tick
        self._lock = threading.Lock()
        self._armed: float | None = None  # the running call's deadline
        self._fired = False
        self.timed_out = False  # a call hit its deadline: the context is spoilt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            with self._lock:
                if self._armed is not None and time.monotonic() > self._armed:
                    self._fired, self._armed = True, None
                    self._cut()

    def _cut(self) -> None:
        """Shut the context's socket down: the blocked pcsc-lite call returns at once."""
        with contextlib.suppress(OSError):
            if os.fstat(self._fd).st_ino == self._inode:
                with socket.socket(fileno=os.dup(self._fd)) as sock:
                    sock.shutdown(socket.SHUT_RDWR)

    def call(self, timeout: float, fn: Callable[..., Any], *args: Any) -> Any:
        if not self._fired:
            self._armed = time.monotonic() + timeout
            try:
                value = fn(*args)
            finally:
                with self._lock:
                    self._armed = None
            if not self._fired:
                return value
        self.timed_out = True
        raise CallTimeout

    def close(self, cleanup: Callable[[], None], wait_s: float) -> None:
        self._fired = False  # a cut context fails fast: cleanup still frees its memory
        with contextlib.suppress(CallTimeout, *SCARD_ERRORS):
            self.call(max(wait_s, 0.5), cleanup)
        self._stop.set()
        self._thread.join()


class Worker:
    """Every call of one context on this thread; a timed-out worker is abandoned."""

    def __init__(self, name: str) -> None:
        self._request = threading.Lock()
        self._request.acquire()
        self._done = threading.Lock()
        self._done.acquire()
        self._fn: Callable[..., Any] | None = None
        self._args: tuple[Any, ...] = ()
        self._value: Any = None
        self._error: BaseException | None = None
        self._cleanup: Callable[[], None] | None = None
        self.timed_out = False  # a call hit its deadline: this worker is abandoned
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (fn := self._fn_or_stop()) is not None:
            try:
                self._value, self._error = fn(*self._args), None
            except SCARD_ERRORS as exc:
                self._value, self._error = None, exc
            self._done.release()
        if self._cleanup is not None:
            with contextlib.suppress(*SCARD_ERRORS):  # best effort: pcscd may be gone
                self._cleanup()

    def _fn_or_stop(self) -> Callable[..., Any] | None:
        self._request.acquire()
        return self._fn

    def call(self, timeout: float, fn: Callable[..., Any], *args: Any) -> Any:
        self._fn, self._args = fn, args
        self._request.release()
        if not self._done.acquire(timeout=max(timeout, 0.001)):
            self._fn = None  # no new call: this worker now only cleans up and exits
            self.timed_out = True
            raise CallTimeout
        if self._error is not None:
            raise self._error
        return self._value

    def close(self, cleanup: Callable[[], None], wait_s: float) -> None:
        """Run ``cleanup`` after the current call (if any) and end the thread."""
        self._cleanup, self._fn = cleanup, None
        if self._request.locked():  # else the worker has yet to take the last call
            self._request.release()
        if wait_s > 0:
            self._thread.join(wait_s)


Guard = Watchdog | Worker
_open_lock = threading.Lock()  # one context created at a time: its socket is the new one


class Session:
    """A PC/SC context with its guard and, once connected, the card handle."""

    def __init__(self, guard: Guard, context: int) -> None:
        self.guard = guard
        self.context = context
        self.reader = ""
        self.hcard: int | None = None
        self.pci: Any = None
        #: Run one PC/SC call before a timeout, else CallTimeout (the context is spoilt).
        self.call: Callable[..., Any] = guard.call

    @classmethod
    def open(cls, name: str, options: SessionOptions, timeout: float) -> Session | None:
        """A new context (None if pcscd does not answer or is not there)."""
        if options.deadline == "auto" and os.path.isdir("/proc/self/fd"):
            with _open_lock:
                before = _socket_fds()
                hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
                fd = _pcscd_socket(before) if hresult & MASK == OK else None
            if hresult & MASK != OK:
                return None
            if fd is not None:
                tick = min(0.05, options.transmit_timeout_s / 10)
                return cls(Watchdog(fd, f"{name}-watchdog", tick), context)
            scard.SCardReleaseContext(context)  # socket not identified: use a worker
        worker = Worker(f"{name}-worker")
        try:
            hresult, context = worker.call(
                timeout, scard.SCardEstablishContext, scard.SCARD_SCOPE_USER
            )
        except CallTimeout:
            worker.close(lambda: None, 0.0)
            return None
        if hresult & MASK != OK:
            worker.close(lambda: None, 1.0)
            return None
        return cls(worker, context)

    def close(self, wait_s: float) -> None:
        ctx, hcard = self.context, self.hcard
        self.hcard = None

        def cleanup() -> None:
            if hcard is not None:
                scard.SCardDisconnect(hcard, UNPOWER_CARD)
            scard.SCardReleaseContext(ctx)

        self.guard.close(cleanup, 0.0 if self.guard.timed_out else wait_s)
