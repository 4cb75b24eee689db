"""The face helper: a child process (``python -m station.faces.helper``) that parses and
renders records for :mod:`station.faces.prefetch`, off the daemon's interpreter lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from station.records import RecordError

_LEN = struct.Struct(">I")


class HelperGone(Exception):
    """The helper process died, hung or answered nonsense (the caller renders itself)."""


def _read_exactly(stream: IO[bytes], n: int) -> bytes | None:
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def _read_frame(stream: IO[bytes]) -> bytes | None:
    head = _read_exactly(stream, _LEN.size)
    return None if head is None else _read_exactly(stream, _LEN.unpack(head)[0])


def _write_frame(stream: IO[bytes], data: bytes) -> None:
    stream.write(_LEN.pack(len(data)) + data)
    stream.flush()


#: Pipe capacity asked for: a record (~60 KB) or a face (~0.5 MB) fits, so neither side
#: blocks on a write while the other is busy (Linux default: 64 KB).
PIPE_BYTES = 1 << 20


def _widen(pipe: IO[bytes] | None) -> None:
    if pipe is not None and hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: keep 64 KB
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def helper_command() -> tuple[list[str], dict[str, str]]:
    """How the helper is started: this interpreter with ``-P`` (the working directory is
    not put on the module path, so a ``station/`` folder there cannot stand in for the
    package), and the directory this package was loaded from first on PYTHONPATH, so the
    helper runs the daemon's own code however the daemon was started."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return [sys.executable, "-P", "-m", "station.faces.helper"], env


class FaceHelper:
    """The parent's handle on one helper process (one outstanding request at most)."""

    def __init__(self, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        # A thread of ours waits on the helper's stdout all the time, and reads and
        # unpickles each answer as it comes (while the printer works): the printer worker
        # finds it ready and never has to wake a thread itself (~0.3 ms each time here).
        self._reader: threading.Thread | None = None
        self._answers: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._asked = 0  # requests sent whose answers are not taken yet

    @property
    def pid(self) -> int | None:
        """The helper's process id while it runs."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start the process (it imports Pillow meanwhile; the first answer waits for it)."""
        if self._proc is not None and self._proc.poll() is None:
            return
        self.stop()
        argv, env = helper_command()
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True
        )
        for pipe in (proc.stdin, proc.stdout):
            _widen(pipe)
        self._proc, self._answers, self._asked = proc, queue.SimpleQueue(), 0
        self._reader = threading.Thread(
            target=self._read_answers, args=(proc, self._answers), name="face-reader", daemon=True
        )
        self._reader.start()

    @staticmethod
    def _read_answers(
        proc: subprocess.Popen[bytes], answers: queue.SimpleQueue[tuple[str, Any]]
    ) -> None:
        while proc.stdout is not None and (frame := _read_frame(proc.stdout)) is not None:
            # Our own child, over a pipe only we hold: the pickle is trusted.
            answers.put(pickle.loads(frame))
        answers.put(("gone", "the helper closed its output"))

    def send(self, plain: bytes) -> None:
        """Ask for one record; unclaimed earlier answers are taken and dropped first."""
        while self._asked:
            with contextlib.suppress(RecordError):
                self.receive()
        self.start()
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise HelperGone("not started")
        try:
            _write_frame(proc.stdin, plain)
        except OSError as exc:
            self.stop()
            raise HelperGone(f"write failed: {exc}") from exc
        self._asked += 1

    def receive(self) -> Any:
        """The answer to the oldest request: Prepared, or RecordError raised."""
        if not self._asked:
            raise HelperGone("nothing asked")
        self._asked -= 1
        try:
            status, value = self._answers.get(timeout=self.timeout_s)
        except queue.Empty:
            self.stop()
            raise HelperGone(f"no answer in {self.timeout_s:g} s") from None
        if status == "gone":
            self.stop()
            raise HelperGone(value)
        if status == "refused":
            raise RecordError(value)
        return value

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        self._asked = 0
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()  # the helper's signal to exit
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.join()  # the helper is gone: its output ends, the reader returns
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The child's loop: answer frames until stdin closes."""
    from station.faces.prepare import prepare_plain  # Pillow and the layout, child side only

    while (frame := _read_frame(inp)) is not None:
        try:
            answer: tuple[str, object] = ("ok", prepare_plain(frame))
        except RecordError as exc:
            answer = ("refused", exc.reason)
        _write_frame(out, pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))


def _yield_to_the_daemon() -> None:
    """SCHED_IDLE: this process only runs on a core nothing else wants, and its wake-up
    never preempts the printer worker (nice 19 alone still does, for ~2 ms)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def main() -> None:
    _yield_to_the_daemon()
    os.sched_setaffinity(0, range(os.cpu_count() or 1))  # not the daemon's core only
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except (BrokenPipeError, ConnectionResetError):
        # The daemon went away (killed) while this answer was on its way: nobody is left
        # to answer, so exit quietly; stdout to /dev/null so the exit's flush is quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    main()
