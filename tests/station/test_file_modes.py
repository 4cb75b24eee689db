"""Everything the station writes under its state dir is its owner's alone, whatever the
umask of whoever started it (022 under sudo and in most shells)."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from station.store.db import connect
from tests.support.harness import Central, db_counts, station_config, wait_for

ROOT = Path(__file__).resolve().parents[2]


def umask_022() -> None:
    os.umask(0o022)


def station(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "station.cli.main", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        preexec_fn=umask_022,
        cwd=ROOT,
    )


def loose(root: Path) -> list[str]:
    """Paths under ``root`` that the group or others may read, write or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        if stat.S_IMODE(path.lstat().st_mode) & 0o077:
            found.append(f"{path.relative_to(root.parent)} {stat.S_IMODE(path.lstat().st_mode):o}")
    return found


def test_daemon_and_cli_under_umask_022_write_nothing_others_can_read(
    tmp_path: Path, central: Central
) -> None:
    """The daemon and the technician's verbs, started with umask 022, leave the database,
    its WAL and shared-memory files, the keys, the printer state and the berita acara
    mode 0600 in a 0700 state dir."""
    central.seed(6)
    state = tmp_path / "station"
    config = station_config(
        tmp_path,
        central,
        printer={
            "options": {"state_file": state / "sim-printer.json", "faults": {"print_fail": 0.5}}
        },
    )
    station(config, "blanks", "receive", "20", "--batch", "T-1")
    station(config, "batch", "key")
    log = (tmp_path / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "station.cli.main", "--config", str(config), "run"],
        stdout=log,
        stderr=log,
        preexec_fn=umask_022,
        cwd=ROOT,
    )
    try:
        wait_for(
            "6 records settled",
            lambda: (s := central.server.summary()).printed + s.failed == 6,
            timeout=90,
        )
        assert daemon.poll() is None
        station(config, "status")
        files = {p.name for p in state.iterdir()}
        assert {
            "station.db",
            "station.db-wal",
            "station.db-shm",
            "data.key",
            "station.key",
            "sim-printer.json",
        } <= files, files
        assert loose(state) == []
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        log.close()
    assert db_counts(state / "station.db")["spoiled"] >= 1
    station(config, "spoiled", "destroy", "--witness", "Siti Rahma", "--witness", "Budi")
    assert any(p.suffix in (".txt", ".md", ".html", ".pdf") for p in state.rglob("*")), sorted(
        p.name for p in state.rglob("*")
    )
    assert loose(state) == []


def test_database_made_under_umask_022_is_made_private(tmp_path: Path) -> None:
    """A database file another program left world-readable is made 0600 when the
    station opens it, with its WAL and shared-memory files."""
    old = os.umask(0o022)
    try:
        db = tmp_path / "station.db"
        plain = sqlite3.connect(db)
        plain.execute("PRAGMA journal_mode=WAL")
        plain.execute("CREATE TABLE t(x)")
        plain.commit()
        assert stat.S_IMODE(db.stat().st_mode) == 0o644
        conn = connect(db)
        conn.execute("INSERT INTO t VALUES (1)")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
        conn.close()
        plain.close()
    finally:
        os.umask(old)
    assert modes == {"station.db": 0o600, "station.db-wal": 0o600, "station.db-shm": 0o600}
