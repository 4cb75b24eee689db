"""A full disk: no card starts below the reserve, nothing dies, the status says so, and
printing resumes by itself once there is room, with nothing lost."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from drivers.sim.printer import SimPrinter
from station.config import load_config
from station.daemon import Station
from station.disk import MB, DiskGuard
from tests.support.harness import (
    Central,
    db_counts,
    receive,
    running_central,
    station_config,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
RESERVE_MB = 3
RECORDS = 30


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB filesystem of its own (tmpfs) to fill up."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path, name: str, leave_mb: float) -> Path:
    """Write a file on ``disk`` until only ``leave_mb`` is free (0: until ENOSPC)."""
    path = disk / name
    guard = DiskGuard(disk, 0)
    chunk = b"\0" * (64 << 10)
    with path.open("ab", buffering=0) as fh:
        try:
            while guard.free_mb() * MB - len(chunk) > leave_mb * MB:
                fh.write(chunk)
            if leave_mb == 0:
                while True:
                    fh.write(b"\0" * 4096)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return path


def status(config: Path, *flags: str) -> str:
    """What ``station status`` prints (the text with its lines joined: it wraps at 80)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "station.cli.main",
            "--lang",
            "en",
            "--config",
            str(config),
            "status",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout if flags else " ".join(proc.stdout.split())


def test_disk_full_holds_printing_and_it_resumes_by_itself(
    tmp_path: Path, central: Central, small_disk: Path
) -> None:
    """Below the reserve no card starts and status says ERROR disk full with the action;
    with the disk full to the last byte the worker and sync threads live on and status
    still prints; once the files are removed printing resumes by itself and every record
    is printed once, every result reported, the ledger matching the trays."""
    central.seed(RECORDS)
    timings = {"feed": 0, "encode_apdu": 0, "print": 150, "eject": 0, "reject": 0, "status": 0}
    config = station_config(
        tmp_path,
        central,
        state_dir=small_disk / "station",
        storage={"reserve_mb": RESERVE_MB},
        printer={"options": {"timings_ms": timings}},
    )
    receive(config, RECORDS + 10)
    station = Station.build(load_config(config))
    station.start()
    try:
        wait_for("5 printed", lambda: central.server.summary().printed >= 5, timeout=60)
        filler = fill(small_disk, "filler", leave_mb=RESERVE_MB - 1)
        wait_for(
            "disk full on the board",
            lambda: "disk full" in str((station.board.get("state") or {}).get("message")),
            timeout=30,
        )
        held = db_counts(load_config(config).db_path)
        state = json.loads(status(config, "--json"))["state"]
        assert (state["category"], state["message"], state["action"]) == (
            "error",
            f"disk full: less than {RESERVE_MB} MB free on the filesystem of "
            f"{small_disk / 'station'}; no card is started",
            "free space on that disk (old "
            "files, logs, backups); printing resumes by itself, nothing is lost",
        )
        assert status(config).startswith("station: ERROR — disk full: less than 3 MB free")
        station.stop_event.wait(1.0)
        assert db_counts(load_config(config).db_path)["used"] == held["used"], (
            "a card started below the reserve"
        )

        more = fill(small_disk, "filler2", leave_mb=0)
        station.stop_event.wait(1.0)
        assert station.worker.is_alive()
        assert station.sync._thread.is_alive()
        assert status(config).startswith("station: ERROR — disk full")
        inspect = subprocess.run(
            [
                sys.executable,
                "-m",
                "station.cli.main",
                "--lang",
                "en",
                "--config",
                str(config),
                "inspect",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert (inspect.returncode, inspect.stdout.strip()) == (0, "[]"), inspect.stderr

        filler.unlink()
        more.unlink()
        wait_for(
            "every record printed", lambda: central.server.summary().printed == RECORDS, timeout=60
        )
        wait_for(
            "every result acknowledged",
            lambda: db_counts(load_config(config).db_path)["outbox"] == 0,
            timeout=30,
        )
        assert station.worker.is_alive()
    finally:
        station.stop()
    summary = central.server.summary()
    assert summary.printed_twice == []
    counts = db_counts(load_config(config).db_path)
    printer = SimPrinter(tmp_path / "printer.json")
    assert counts["used"] == len(printer.tray_cards("output")) == RECORDS
    assert counts["spoiled"] == len(printer.tray_cards("reject"))


def test_writes_failing_on_a_full_disk_kill_no_thread(
    tmp_path: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes that find the disk full to the last byte (the guard told the disk has room,
    as when another program fills it between two checks): the records the centre offers
    cannot be stored, yet the sync thread and the printer worker live on, status still
    prints, and once there is room the records are leased again and printed."""
    with running_central(tmp_path, lease_ttl_s=6.0) as central, capture_logs() as logs:
        config = station_config(
            tmp_path,
            central,
            state_dir=small_disk / "station",
            storage={"reserve_mb": 0},
            pipeline={"lease_margin_s": 1.0},
            central={"renew_every_s": 1.0},
        )
        receive(config, 20)
        station = Station.build(load_config(config))
        station.start()
        try:
            wait_for(
                "ready",
                lambda: (station.board.get("state") or {}).get("category") == "ready",
                timeout=30,
            )
            monkeypatch.setattr(station.disk, "free_mb", lambda: float("inf"))
            filler = fill(small_disk, "filler", leave_mb=0)
            central.seed(10)
            wait_for(
                "a lease the station could not store",
                lambda: any(e["event"] == "sync_round_failed" for e in logs),
                timeout=30,
            )
            station.stop_event.wait(1.0)
            assert station.worker.is_alive()
            assert station.sync._thread.is_alive()
            assert status(config).startswith("station: ERROR — disk full")
            filler.unlink()
            wait_for("10 printed", lambda: central.server.summary().printed == 10, timeout=120)
            assert station.worker.is_alive()
            assert station.sync._thread.is_alive()
        finally:
            station.stop()
        assert central.server.summary().printed_twice == []
