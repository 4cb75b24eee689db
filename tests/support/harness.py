"""Helpers for tests that run a whole station: config files, a seeded centre, waiting."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import pytest

from central.seed import PUB_FILE, load_or_create_key, seed
from central.server import CentralServer
from drivers.sim.printer import SimPrinter
from station.cli.main import main
from station.cli.status import status_snapshot
from station.config import load_config
from station.daemon import Station
from station.store import figures

INLINE_TABLES = ("trusted_keys", "timings_ms", "faults")
FAST_TIMINGS = {"feed": 0, "encode_apdu": 0, "print": 0, "eject": 0, "reject": 0, "status": 0}


def toml_dumps(data: dict[str, Any], prefix: str = "") -> str:
    """Just enough TOML for station configs: scalars, lists, inline and nested tables."""

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, Path):
            return json.dumps(str(v))
        return json.dumps(v)

    def section(k: str, v: Any) -> bool:
        return isinstance(v, dict) and k not in INLINE_TABLES

    out = "".join(f"{k} = {value(v)}\n" for k, v in data.items() if not section(k, v))
    for k, v in data.items():
        if section(k, v):
            out += f"\n[{prefix}{k}]\n" + toml_dumps(v, f"{prefix}{k}.")
    return out


@dataclass
class Central:
    server: CentralServer
    db: Path
    key_dir: Path

    @property
    def pub(self) -> Path:
        return self.key_dir / PUB_FILE

    def seed(self, n: int, *, seed_value: int = 0) -> None:
        seed(self.db, n, seed=seed_value, key_dir=self.key_dir)


class _Url(Protocol):
    @property
    def url(self) -> str: ...


class Centre(Protocol):
    """What a station's config needs of a centre: its URL and its records' public key."""

    @property
    def server(self) -> _Url: ...

    @property
    def pub(self) -> Path: ...


def start_central(root: Path, *, lease_ttl_s: float = 600.0, port: int = 0) -> Central:
    db = root / "central" / "queue.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    key_dir = root / "central" / "keys"
    load_or_create_key(key_dir)
    server = CentralServer(db, port=port, lease_ttl_s=lease_ttl_s).start()
    return Central(server, db, key_dir)


@contextmanager
def running_central(root: Path, **kwargs: Any) -> Iterator[Central]:
    """A reference queue server for the length of a ``with`` block (fixtures use it)."""
    c = start_central(root, **kwargs)
    try:
        yield c
    finally:
        c.server.stop()


def station_config(
    root: Path, centre: Centre, /, *, url: str | None = None, **overrides: Any
) -> Path:
    """Write a station config under ``root`` for the simulated printer; returns its path."""
    state = root / "station"
    cfg: dict[str, Any] = {
        "station_id": "t-01",
        "state_dir": state,
        "log_level": "info",
        "central": {
            "url": url or centre.server.url,
            "trusted_keys": {"central-1": centre.pub},
            "sync_interval_s": 0.05,
            "retry_max_s": 0.5,
            "timeout_s": 2.0,
            "buffer_target": 20,
            "lease_batch": 20,
        },
        "printer": {
            "driver": "sim",
            "options": {
                "state_file": root / "printer.json",
                "hopper": 100,
                "seed": 1,
                "timings_ms": dict(FAST_TIMINGS),
            },
        },
        "chip": {"driver": "sim", "connect_timeout_s": 0.2},
        "pipeline": {"device_retry_s": 0.05},
    }
    for key, val in overrides.items():
        if key in ("printer", "chip") and val.get("driver", "sim") != "sim":
            cfg[key] = val  # another driver: none of the simulator's options apply
        elif isinstance(val, dict) and isinstance(cfg.get(key), dict):
            _merge(cfg[key], val)
        else:
            cfg[key] = val
    path = root / "station.toml"
    path.write_text(toml_dumps(cfg))
    return path


@contextmanager
def running_station(config: Path) -> Iterator[Station]:
    """The daemon's threads on ``config``, started, and stopped when the block ends."""
    station = Station.build(load_config(config))
    station.start()
    try:
        yield station
    finally:
        station.stop()


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


def wait_for(
    what: str, check: Callable[[], bool], timeout: float = 60.0, every: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def db_counts(db: Path) -> dict[str, int]:
    """The station's counts (ledger, buffer, outbox) read from its database file."""
    conn = sqlite3.connect(db)
    try:
        return figures.counts(conn)
    finally:
        conn.close()


def receive(config: Path, count: int) -> None:
    """Record a delivery of blanks as a technician does."""
    assert main(["--config", str(config), "blanks", "receive", str(count), "--batch", "T-1"]) == 0


def personal_values(central: Central) -> list[bytes]:
    """The NIKs and names of every seeded record, as bytes to look for."""
    conn = sqlite3.connect(central.db)
    try:
        people = [
            json.loads(r[0])["record"]["person"]
            for r in conn.execute("SELECT signed_json FROM records")
        ]
    finally:
        conn.close()
    return [p[k].encode() for p in people for k in ("nik", "name")]


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``station run`` on ``config`` as its own process, its output appended to ``log``."""
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "station.cli.main", "--config", str(config), "run"],
            stdout=fh,
            stderr=fh,
        )


def status(db: Path) -> dict[str, Any]:
    """What ``station status --json`` shows, read from the station's database file."""
    conn = sqlite3.connect(db)
    try:
        return status_snapshot(conn)
    finally:
        conn.close()


def release_reasons(central: Central) -> list[str]:
    """The reasons the centre recorded for every lease a station released early."""
    conn = sqlite3.connect(central.db)
    try:
        return [
            r[0]
            for r in conn.execute(
                "SELECT close_reason FROM leases WHERE close_reason LIKE 'released:%'"
            )
        ]
    finally:
        conn.close()


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr), each stripped."""
    capsys.readouterr()
    code = main(["--config", str(config), *args])
    out = capsys.readouterr()
    return code, out.out.strip(), out.err.strip()


def tray_labels(root: Path, tray: Literal["output", "reject"] = "output") -> Counter[str | None]:
    """How many cards of each record (the label printed on them) lie in a tray of the
    simulated printer a config under ``root`` drives."""
    return Counter(card.label for card in SimPrinter(root / "printer.json").tray_cards(tray))


def result_ids(db: Path) -> list[str]:
    """The result ids in a station's outbox (acknowledged or not), from its database file."""
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT result_id FROM outbox")]
    finally:
        conn.close()
