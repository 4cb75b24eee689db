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

from central.seed import make_record
from station.faces.helper import FaceHelper, helper_command
from station.faces.prepare import prepare_plain
from station.records import RecordError

ROOT = Path(__file__).resolve().parents[3]


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
    code = (
        "import time\nfrom station.faces.helper import FaceHelper\n"
        "h = FaceHelper(); h.start(); print(h.pid, flush=True); time.sleep(60)\n"
    )
    daemon = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
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


def test_a_station_folder_in_the_working_directory_does_not_shadow_the_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started from a directory that holds a ``station/`` folder of its own, the helper
    still runs the daemon's code and draws the face (it used to import the folder and die)."""
    shadow = tmp_path / "station"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise SystemExit('the wrong station package')\n")
    (shadow / "face_helper.py").write_text("raise SystemExit('the wrong face helper')\n")
    monkeypatch.chdir(tmp_path)
    h = FaceHelper(timeout_s=20)
    h.start()
    try:
        h.send(plain(4))
        assert h.receive().record.record_id == make_record(4)["record_id"]
    finally:
        h.stop()


def test_the_helper_exits_quietly_when_the_daemon_goes_mid_answer() -> None:
    """The daemon killed while a face is being drawn: the helper finds nobody to answer
    and exits with status 0 and nothing on stderr (it used to log a BrokenPipeError
    traceback after most kills)."""
    argv, env = helper_command()
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    data = plain(5)
    proc.stdin.write(len(data).to_bytes(4, "big") + data)
    proc.stdin.flush()
    proc.stdout.close()  # the daemon's end of the answer pipe is gone …
    proc.stdin.close()  # … and so is its end of the requests
    assert proc.wait(timeout=30) == 0
    assert proc.stderr is not None
    with proc.stderr:
        assert proc.stderr.read().decode() == ""
