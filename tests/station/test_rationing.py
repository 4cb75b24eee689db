"""Rationing in a running station: quota, reserve, order, releases the centre sees, the
feeder cross-check, and a reload that changes the rules without a restart."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from central.seed import load_or_create_key, make_record
from drivers.sim.printer import SimPrinter
from station.config import load_config
from station.daemon import Station
from station.records import parse_record, sign_record
from tests.support.harness import (
    Central,
    db_counts,
    receive,
    release_reasons,
    station_config,
    wait_for,
)


def policy_order(central: Central) -> list[str]:
    conn = sqlite3.connect(central.db)
    try:
        records = [
            parse_record(json.loads(r[0])["record"])
            for r in conn.execute("SELECT signed_json FROM records")
        ]
    finally:
        conn.close()
    records.sort(key=lambda r: (r.urgent is None, r.kind == "reprint", r.enrolled_at))
    return [r.record_id for r in records]


def printed_labels(tmp_path: Path) -> list[str]:
    labels = [c.label for c in SimPrinter(tmp_path / "printer.json").tray_cards("output")]
    assert None not in labels, "a card in the output tray with nothing printed on it"
    return [str(label) for label in labels]


def test_quota_stops_printing_and_releases_leases_with_reason(
    tmp_path: Path, central: Central
) -> None:
    """A quota of 6 a day set while 20 records are buffered: six cards come out in policy
    order, the station pauses with the reason, and the other leases go back to the centre
    as 'quota'."""
    central.seed(20)
    config = station_config(tmp_path, central, printer={"options": {"timings_ms": {"print": 100}}})
    receive(config, 50)
    station = Station.build(load_config(config))
    station.start()
    try:
        wait_for(
            "20 records leased",
            lambda: (
                db_counts(load_config(config).db_path)["buffered"]
                + central.server.summary().printed
                >= 19
            ),
        )
        config.write_text(config.read_text() + "\n[rationing]\ndaily_quota = 6\n")
        assert station.reload(config)
        wait_for("6 printed", lambda: central.server.summary().printed == 6)
        wait_for(
            "the quota pause",
            lambda: "daily quota reached" in (station.board.get("state") or {}).get("message", ""),
        )
        wait_for("leases released", lambda: len(release_reasons(central)) == 14)
    finally:
        station.stop()
    assert set(release_reasons(central)) == {"released:quota"}
    assert central.server.summary().printed == 6
    assert central.server.summary().ready == 14
    assert printed_labels(tmp_path) == policy_order(central)[:6]


def test_reserve_is_kept_for_urgent_records(tmp_path: Path, central: Central) -> None:
    """With 8 blanks and a reserve of 5: three cards print, ordinary leases go back as
    'no_blanks', and urgent records that arrive later print from the reserve."""
    central.seed(20, seed_value=4)
    config = station_config(tmp_path, central, rationing={"urgent_reserve": 5})
    receive(config, 8)
    station = Station.build(load_config(config))
    station.start()
    try:
        wait_for(
            "the reserve pause",
            lambda: "only urgent records" in (station.board.get("state") or {}).get("message", ""),
        )
        wait_for(
            "ordinary leases released", lambda: "released:no_blanks" in release_reasons(central)
        )
        first = printed_labels(tmp_path)
        _, key = load_or_create_key(central.key_dir)
        urgent = []
        for index in (900, 901):
            record = dict(make_record(index, seed=4), urgent="medical")
            urgent.append(sign_record(record, key, "central-1"))
        central.server.add_records(urgent)
        wait_for("the urgent records printed", lambda: len(printed_labels(tmp_path)) == 5)
    finally:
        station.stop()
    assert len(first) == 3
    assert first == policy_order(central)[:3] or any(parse_urgent(central, r) for r in first)
    assert printed_labels(tmp_path)[3:] == sorted(s.record_id() for s in urgent)


def parse_urgent(central: Central, record_id: str) -> bool:
    conn = sqlite3.connect(central.db)
    try:
        row = conn.execute("SELECT urgent FROM records WHERE record_id=?", (record_id,)).fetchone()
    finally:
        conn.close()
    return bool(row[0])


def test_feeder_empty_against_the_ledger_warns(tmp_path: Path, central: Central) -> None:
    """The printer's hopper runs empty while the ledger still has blanks: a warning says so."""
    central.seed(10)
    config = station_config(tmp_path, central, printer={"options": {"hopper": 3}})
    receive(config, 10)
    station = Station.build(load_config(config))
    station.start()
    try:
        wait_for("the mismatch warning", lambda: station.board.get("warning") is not None)
        warning = station.board.get("warning")
        wait_for("3 results at the centre", lambda: central.server.summary().printed == 3)
    finally:
        station.stop()
    assert warning == (
        "the printer's hopper is empty but the ledger has 7 blanks in stock: "
        "load them, or count the stock (station blanks count N)"
    )
    assert central.server.summary().printed == 3


def test_reload_changes_the_quota_without_restart(tmp_path: Path, central: Central) -> None:
    """`station reload` (SIGHUP) applies a new quota to the running daemon."""
    central.seed(12)
    config = station_config(tmp_path, central, rationing={"daily_quota": 2})
    receive(config, 20)
    with (tmp_path / "daemon.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "station.cli.main", "--config", str(config), "run"],
            stderr=log,
            stdout=log,
        )
    try:
        wait_for("2 printed", lambda: central.server.summary().printed == 2)
        text = config.read_text().replace("daily_quota = 2", "daily_quota = 5")
        config.write_text(text)
        reload = subprocess.run(
            [sys.executable, "-m", "station.cli.main", "--config", str(config), "reload"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert reload.returncode == 0, reload.stderr
        assert reload.stdout.startswith(f"reload requested (pid {proc.pid})")
        wait_for("5 printed", lambda: central.server.summary().printed == 5)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert central.server.summary().printed == 5
    assert '"event": "config_reloaded"' in (tmp_path / "daemon.log").read_text()
