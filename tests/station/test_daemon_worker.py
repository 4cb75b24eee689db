"""The printer worker nothing stops: unexpected exceptions, poison records, a dead or
stuck worker, and a status and heartbeat that say so."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from central.seed import load_or_create_key, signed_records
from drivers.sim.printer import SimPrinter
from station import faults
from station.cli.main import main
from station.config import load_config
from station.faces.prefetch import FacePrefetcher
from station.faces.prepare import Prepared
from station.pipeline import Pipeline
from station.records import PrintReadyRecord, sign_record
from station.store import attempts, buffer, states, status
from tests.support.harness import Central, receive, running_station, station_config, wait_for


def add_signed(central: Central, start_index: int, n: int = 1, change: Any = None) -> list[str]:
    """``n`` records signed by the centre (``change(record)`` edits each before signing)."""
    key_id, key = load_or_create_key(central.key_dir)
    out = []
    for signed in signed_records(n, key, seed=7, start_index=start_index, key_id=key_id):
        if change is not None:
            record = json.loads(json.dumps(signed.record))
            change(record)
            signed = sign_record(record, key, key_id)
        out.append(signed)
    central.server.add_records(out)
    return [s.record_id() for s in out]


def results(central: Central, record_id: str) -> list[tuple[str, str | None]]:
    return [(r.outcome, r.reason) for r in central.server.results_for(record_id)]


def all_closed(central: Central, n: int) -> bool:
    s = central.server.summary()
    return bool(s.printed + s.failed >= n)


def test_unexpected_exceptions_end_one_attempt_and_good_records_print(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception no device names, while a record is prepared or while its chip is
    written, ends that record's attempt (the fed card to the reject tray, at most two
    blanks when it repeats) and the worker prints every good record behind it."""
    unprepared, unencodable = add_signed(central, 500, 2)
    central.seed(5)
    real_get = FacePrefetcher.get

    def get(self: FacePrefetcher, buffered: buffer.BufferedRecord) -> Prepared:
        if buffered.record_id == unprepared:
            raise RuntimeError("a decoder bug")
        return real_get(self, buffered)

    monkeypatch.setattr(FacePrefetcher, "get", get)
    break_encoding(monkeypatch, unencodable)
    config = station_config(tmp_path, central, pipeline={"max_attempts": 5})
    receive(config, 20)
    with running_station(config) as station:
        wait_for("every record closed at the centre", lambda: all_closed(central, 7))
        assert station.worker.is_alive()
        assert station.worker_problem() is None
    assert central.server.summary().printed == 5
    assert results(central, unprepared) == [
        ("failed", "the record could not be prepared for printing (RuntimeError)")
    ]
    outcomes = results(central, unencodable)
    assert [o for o, _ in outcomes] == ["spoiled", "spoiled", "failed"]
    assert (outcomes[-1][1] or "").startswith("record-caused (the same on two blanks): ")
    printer = SimPrinter(tmp_path / "printer.json")
    assert len(printer.tray_cards("reject")) == 2
    assert len(printer.tray_cards("output")) == 5


def test_a_chip_script_that_cannot_succeed_burns_at_most_two_blanks(
    tmp_path: Path, central: Central, capsys: pytest.CaptureFixture[str]
) -> None:
    """A script the card refuses at the same step with the same status word on a second
    blank ends failed with the reason after two blanks, though max_attempts allows five;
    one failing its own checks is refused before any blank; the report charges the two
    to the record."""

    last_step: dict[str, int] = {}

    def refused_step(record: dict[str, Any]) -> None:
        last_step["refused"] = len(record["chip_script"])
        record["chip_script"].append({"apdu": "00A4020C02BEEF"})  # no such file: 6A82

    def unrunnable(record: dict[str, Any]) -> None:
        last_step["broken"] = len(record["chip_script"])
        record["chip_script"].append({"apdu": "00D6000008{never_captured}"})

    [refused] = add_signed(central, 600, change=refused_step)
    [broken] = add_signed(central, 601, change=unrunnable)
    central.seed(3)
    config = station_config(tmp_path, central, pipeline={"max_attempts": 5})
    receive(config, 20)
    with running_station(config):
        wait_for("every record closed at the centre", lambda: all_closed(central, 5))
    assert central.server.summary().printed == 3
    out = results(central, refused)
    assert [o for o, _ in out] == ["spoiled", "spoiled", "failed"]
    assert out[-1][1] == (
        "record-caused (the same on two blanks): failed encode: "
        f"step {last_step['refused']} (INS A4): SW 6A82 file or application "
        "not found"
    )
    assert results(central, broken) == [
        (
            "failed",
            f"chip script: step {last_step['broken']}: placeholder {{never_captured}} "
            "was not captured before",
        )
    ]
    assert len(SimPrinter(tmp_path / "printer.json").tray_cards("reject")) == 2
    capsys.readouterr()
    assert main(["--config", str(config), "report", "daily", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (
        report["spoiled_by_record"],
        report["spoiled_by_blank"],
        report["spoiled_by_device"],
    ) == (2, 0, 0)
    assert main(["--config", str(config), "report", "daily", "--csv"]) == 0
    [row] = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert (row["spoiled_by_record"], row["spoiled_by_blank"]) == ("2", "0")
    assert main(["--config", str(config), "report", "daily"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"spoiled, caused by the record +2\n", text), text
    assert re.search(r"spoiled, caused by the blank +0\n", text), text


def break_encoding(monkeypatch: pytest.MonkeyPatch, record_id: str) -> None:
    """Encoding ``record_id`` raises a non-device exception once the chip is connected
    (a bug in the script runner), every time; other records encode as usual."""
    real_encode = Pipeline._encode

    def encode(self: Pipeline, record: PrintReadyRecord) -> str:
        if record.record_id == record_id:
            self.chip.connect(self.deps.chip_timeout_s)
            raise KeyError("a script runner bug")
        return real_encode(self, record)

    monkeypatch.setattr(Pipeline, "_encode", encode)


def _hand_over(
    db: Path,
    record_id: str,
    *,
    boot: str | None = None,
    state: states.AttemptState = states.AttemptState.STARTED,
    fatal: bool = True,
) -> None:
    """Leave ``record_id``'s attempt open at ``state``, as a daemon that died with it in
    hand does: of a fatal signal (its traceback in crash.log), or else of a kill -9."""
    if fatal:
        (db.parent / faults.CRASH_LOG).write_text("Fatal Python error: Segmentation fault\n")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        attempts.transition(conn, attempts.begin_attempt(conn, record_id), state)
        if boot is not None:
            status.set_status(conn, boot_id=boot)
    finally:
        conn.close()


def _buffered(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [
            r[0]
            for r in conn.execute(
                "SELECT record_id FROM records WHERE status='queued' ORDER BY enrolled_at"
            )
        ]
    finally:
        conn.close()


def buffer_only(config: Path, root: Path, n: int) -> None:
    """Blanks received and ``n`` records buffered, none started: the cover is open."""
    receive(config, 10)
    SimPrinter(root / "printer.json").open_cover()
    db = load_config(config).db_path
    with running_station(config):
        wait_for(f"{n} records buffered", lambda: len(_buffered(db)) == n)


def test_a_record_in_hand_at_two_crashes_in_a_row_is_quarantined(
    tmp_path: Path, central: Central
) -> None:
    """A record whose attempt was open at two crashes in a row of the daemon (same boot)
    is reported failed as poison and never started again; the good records print."""
    central.seed(3)
    config = station_config(tmp_path, central)
    db = load_config(config).db_path
    buffer_only(config, tmp_path, 3)
    poison = _buffered(db)[0]  # the first by policy: what a restarted daemon takes again
    _hand_over(db, poison)
    with running_station(config):
        pass
    assert results(central, poison) == []
    _hand_over(db, poison)
    SimPrinter(tmp_path / "printer.json").close_cover()
    with running_station(config) as station:
        wait_for("every record closed at the centre", lambda: all_closed(central, 3))
        assert station.worker.is_alive()
    out = results(central, poison)
    assert [o for o, _ in out] == ["failed"]
    assert out[0][1] == (
        "poison: the station stopped 2 times in a row with this record in hand; not printed again"
    )
    assert central.server.summary().printed == 2
    labels = {c.label for c in SimPrinter(tmp_path / "printer.json").tray_cards("output")}
    assert poison not in labels


def test_crashes_at_different_steps_are_not_poison(tmp_path: Path, central: Central) -> None:
    """A record in hand at two crashes in a row, but at different steps of its card (as
    random kills fall), is not quarantined: it ends printed."""
    central.seed(1)
    config = station_config(tmp_path, central)
    db = load_config(config).db_path
    buffer_only(config, tmp_path, 1)
    [rid] = _buffered(db)
    _hand_over(db, rid, state=states.AttemptState.STARTED)
    with running_station(config):
        pass
    _hand_over(db, rid, state=states.AttemptState.VERIFIED)
    SimPrinter(tmp_path / "printer.json").close_cover()
    with running_station(config):
        wait_for("the record printed", lambda: central.server.summary().printed == 1)
    assert not any((reason or "").startswith("poison") for _, reason in results(central, rid))


def test_a_daemon_killed_again_during_start_up_counts_the_crash_once(
    tmp_path: Path, central: Central
) -> None:
    """A record in hand at one crash, with the next daemon killed during its start-up
    (after counting, before recovery settled the attempt), is not poison: it prints."""
    central.seed(1)
    config = station_config(tmp_path, central)
    db = load_config(config).db_path
    buffer_only(config, tmp_path, 1)
    [rid] = _buffered(db)
    _hand_over(db, rid)
    conn = sqlite3.connect(db, isolation_level=None)
    try:  # what the killed start-up did before it died
        faults.count_crashes(conn, crashed=True)
    finally:
        conn.close()
    SimPrinter(tmp_path / "printer.json").close_cover()
    with running_station(config):
        wait_for("the record printed", lambda: central.server.summary().printed == 1)
    assert not any((reason or "").startswith("poison") for _, reason in results(central, rid))


def test_kills_without_a_fatal_signal_are_not_poison(tmp_path: Path, central: Central) -> None:
    """A record in hand at two kill -9s in a row at the same step (an operator, the OOM
    killer's victim elsewhere, a test) is not poison: nothing crashed, and it prints."""
    central.seed(1)
    config = station_config(tmp_path, central)
    db = load_config(config).db_path
    buffer_only(config, tmp_path, 1)
    [rid] = _buffered(db)
    for _ in range(2):
        _hand_over(db, rid, fatal=False)
        with running_station(config):
            pass
    SimPrinter(tmp_path / "printer.json").close_cover()
    with running_station(config):
        wait_for("the record printed", lambda: central.server.summary().printed == 1)
    assert not any((reason or "").startswith("poison") for _, reason in results(central, rid))


@pytest.mark.parametrize(
    ("sig", "crashed"), [(signal.SIGSEGV, True), (signal.SIGABRT, True), (signal.SIGKILL, False)]
)
def test_only_a_fatal_signal_leaves_a_crash_log(
    tmp_path: Path, sig: signal.Signals, crashed: bool
) -> None:
    """A process with the crash log armed that dies of SIGSEGV or SIGABRT (the systemd
    watchdog's signal) leaves its traceback for the next start; a SIGKILL leaves none."""
    code = (
        "import os, sys; from pathlib import Path; from station import faults; "
        f"faults.arm_crash_log(Path(sys.argv[1])); os.kill(os.getpid(), {int(sig)})"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], check=False, capture_output=True, timeout=60
    )
    assert proc.returncode == -sig
    assert faults.take_crash_log(tmp_path) is crashed
    assert faults.take_crash_log(tmp_path) is False  # taken once
    if crashed:
        last = (tmp_path / "crash.log.last").read_text()
        assert "Fatal Python error" in last
        assert (tmp_path / "crash.log.last").stat().st_mode & 0o077 == 0


def test_crashes_across_a_power_cut_are_not_counted(tmp_path: Path, central: Central) -> None:
    """A record in hand when the daemon died on another boot (a power cut) is not
    counted against it: two such restarts leave it to be printed."""
    central.seed(1)
    config = station_config(tmp_path, central)
    db = load_config(config).db_path
    buffer_only(config, tmp_path, 1)
    [rid] = _buffered(db)
    for _ in range(2):
        _hand_over(db, rid, boot="a-boot-before-the-power-cut")
        with running_station(config):
            pass
    SimPrinter(tmp_path / "printer.json").close_cover()
    with running_station(config):
        wait_for("the record printed", lambda: central.server.summary().printed == 1)


@pytest.fixture
def dead_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The printer worker dies at its first card boundary (what no record can cause)."""

    def broken(self: Pipeline, *args: object, **kwargs: object) -> None:
        raise RuntimeError("the worker's own bug")

    monkeypatch.setattr(Pipeline, "card_boundary", broken)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_shows_error_in_status_and_heartbeat(
    tmp_path: Path, central: Central, dead_worker: None
) -> None:
    """With the printer worker dead, station status says ERROR with an action and the
    centre's heartbeat says error, not printing."""
    central.seed(2)
    config = station_config(tmp_path, central, central={"heartbeat_every_s": 0.1})
    receive(config, 5)
    with running_station(config) as station:
        wait_for("the worker to die", lambda: not station.worker.is_alive())
        wait_for(
            "an error heartbeat",
            lambda: (
                (hb := central.server.db.last_heartbeat("t-01")) is not None
                and hb.printer_state == "error: the printer worker stopped"
            ),
        )
        state = _status(config)
        text = _cli(config, "status").stdout
        assert station.summary().startswith("error: the printer worker stopped: ")
    assert (state["category"], state["message"]) == ("error", "the printer worker stopped")
    assert "ERROR — the printer worker stopped" in text
    assert "to do:   none: the daemon exits and systemd starts it again" in text


def test_a_stuck_worker_shows_error_and_the_heartbeat_says_so(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker stuck in one device step past its limit makes the status ERROR with an
    action and the heartbeat an error, though the last state it wrote was printing."""
    release = threading.Event()
    real_print = SimPrinter.print_card

    def hang(self: SimPrinter, job: Any) -> None:
        release.wait(30)
        real_print(self, job)

    monkeypatch.setattr(SimPrinter, "print_card", hang)
    central.seed(1)
    config = station_config(tmp_path, central, central={"heartbeat_every_s": 0.1})
    receive(config, 5)
    try:
        with running_station(config) as station:
            station.stuck_after_s = 0.5
            wait_for(
                "a card in print",
                lambda: (station.board.get("state") or {}).get("category") == "printing",
            )
            wait_for(
                "a stuck heartbeat",
                lambda: (
                    (hb := central.server.db.last_heartbeat("t-01")) is not None
                    and hb.printer_state.startswith("error: the printer worker is stuck")
                ),
            )
            assert station.check_health() is not None  # what the main thread does each tick
            state = _status(config)
            release.set()
    finally:
        release.set()
    assert state["category"] == "error"
    assert state["message"].startswith("the printer worker is stuck (no progress for ")
    assert state["action"].startswith("check the printer and the encoder")


def _daemon(config: Path, code: str) -> subprocess.Popen[str]:
    """``station run`` in a child process, after ``code`` (a fault to inject)."""
    script = (
        f"import sys\n{code}\nfrom station.cli.main import main\n"
        f"sys.exit(main(['--config', {str(config)!r}, 'run']))\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A ``station`` verb in a child process, as a technician runs it."""
    return subprocess.run(
        [sys.executable, "-m", "station.cli.main", "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=True,
    )


def _status(config: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(_cli(config, "status", "--json").stdout)["state"]
    return state


def test_station_run_exits_non_zero_at_once_when_the_worker_dies(
    tmp_path: Path, central: Central
) -> None:
    """When the worker dies (here: the disk fails under the printing journal), station
    run exits 70 within seconds instead of living on without printing."""
    central.seed(1)
    config = station_config(tmp_path, central)
    receive(config, 5)
    proc = _daemon(
        config,
        "import errno, station.store.db\n"
        "def broken(fd):\n    raise OSError(errno.EIO, 'Input/output error')\n"
        "station.store.db.os.fdatasync = broken",
    )
    try:
        started = time.monotonic()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 70, proc.stdout.read() if proc.stdout else ""
    assert time.monotonic() - started < 30
    state = _status(config)
    assert state["category"] == "error"
    assert state["message"].startswith("the printer worker stopped; the daemon (pid ")


def test_status_of_a_killed_daemon_is_an_error(tmp_path: Path, central: Central) -> None:
    """A daemon killed mid-work leaves PRINTING or READY in its table; station status
    shows ERROR, the daemon not running, with what to do."""
    central.seed(1)
    config = station_config(tmp_path, central)
    proc = _daemon(config, "")
    try:
        wait_for("the daemon up", lambda: _status(config).get("category") == "paused", timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = _status(config)
    assert state["category"] == "error"
    assert state["message"] == (
        f"the daemon (pid {proc.pid}) is not running: it ended without stopping"
    )
    assert state["action"].startswith("start it: systemctl start ektp-station")


def test_the_heartbeat_carries_the_fleet_fields(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After printing two cards and spoiling two blanks on a record whose chip cannot be
    written, the centre's last heartbeat tells state, printed and spoiled counts by class,
    disk free and version."""
    (unencodable,) = add_signed(central, 600, 1)
    central.seed(2)
    break_encoding(monkeypatch, unencodable)
    config = station_config(tmp_path, central, central={"heartbeat_every_s": 0.1})
    receive(config, 5)
    with running_station(config):
        wait_for(
            "the fleet heartbeat",
            lambda: (
                (hb := central.server.db.last_heartbeat("t-01")) is not None
                and hb.printed_total == 2
                and sum((hb.spoiled_total or {}).values()) == 2
            ),
        )
    hb = central.server.db.last_heartbeat("t-01")
    assert hb is not None
    assert hb.state in ("ready", "printing")
    assert hb.cards_today == 2
    assert hb.spoiled_today == hb.spoiled_total
    assert set(hb.spoiled_total or {}) <= set(states.SPOIL_CLASSES)
    assert hb.disk_free_mb is not None
    assert hb.disk_free_mb > 0
    assert hb.version == "0.1.0"
