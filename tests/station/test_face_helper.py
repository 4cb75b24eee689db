"""The face helper process: same faces as the daemon would draw, off its CPU and lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.central.seed import make_record
from station.face_helper import FaceHelper
from station.prefetch import prepare_plain
from station.records import RecordError

ROOT = Path(__file__).resolve().parents[2]


def plain(index: int, **changes: object) -> bytes:
    record = {**make_record(index), **changes}
    return json.dumps({"record": record, "key_id": "k", "signature": "AA=="}).encode()


@pytest.fixture
def helper() -> Iterator[FaceHelper]:
    h = FaceHelper(timeout_s=20)
    h.start()
    yield h
    h.stop()


def test_the_helper_draws_the_face_the_daemon_would(helper: FaceHelper) -> None:
    """A face from the helper is byte for byte the face rendered in-process."""
    helper.send(plain(7))
    prepared = helper.receive()
    here = prepare_plain(plain(7))
    assert prepared.job.front == here.job.front
    assert prepared.record == here.record


def test_a_refused_record_names_its_reason_and_the_helper_goes_on(helper: FaceHelper) -> None:
    """A record with an empty chip script is refused with the field named; the next one
    is prepared by the same process."""
    helper.send(plain(1, chip_script=[]))
    with pytest.raises(RecordError, match="chip_script"):
        helper.receive()
    pid = helper.pid
    helper.send(plain(2))
    assert helper.receive().record.record_id == make_record(2)["record_id"]
    assert helper.pid == pid


def test_the_helper_runs_at_idle_priority(helper: FaceHelper) -> None:
    """The helper never competes with the printer worker for a core (SCHED_IDLE)."""
    helper.send(plain(3))
    helper.receive()  # it has answered: its set-up is done
    assert helper.pid is not None
    assert os.sched_getscheduler(helper.pid) == os.SCHED_IDLE


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status  # exited, waiting for init to reap it


def test_the_helper_exits_when_the_daemon_is_killed() -> None:
    """SIGKILL of the daemon leaves no helper behind: it sees its stdin close and exits."""
    code = ("import time\nfrom station.face_helper import FaceHelper\n"
            "h = FaceHelper(); h.start(); print(h.pid, flush=True); time.sleep(60)\n")
    daemon = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              text=True, cwd=ROOT)
    try:
        assert daemon.stdout is not None
        pid = int(daemon.stdout.readline())
        assert not _gone(pid)
        daemon.kill()
        daemon.wait()
        deadline = time.monotonic() + 10
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(pid), "the face helper outlived the killed daemon"
    finally:
        daemon.kill()
        daemon.wait()
        if daemon.stdout is not None:
            daemon.stdout.close()
