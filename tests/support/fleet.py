"""Several station daemons on one queue: their nodes, the kill-and-restart chaos loop and
the checks that no record ends with two good cards."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.sim.printer import SimPrinter
from station.cli.main import main
from station.config import StationConfig, load_config
from station.link.protocol import ServerSummary
from tests.support.harness import (
    Central,
    Centre,
    db_counts,
    result_ids,
    start_daemon,
    station_config,
    wait_for,
)

STATIONS = 4
RECORDS = int(os.environ.get("STATION_TEST_MANY_RECORDS", "100"))
LEASE_TTL_S = 4.0
LEASE_MARGIN_S = 1.0
CHAOS_S = 40.0  # at most; chaos ends earlier once most records are printed
HOPPER = RECORDS + 40


@dataclass
class Node:
    """One station: its config, printer state file, log and daemon process (if up)."""

    name: str
    root: Path
    config: Path
    cfg: StationConfig
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    down_until: float = 0.0

    @property
    def printer_state(self) -> Path:
        return self.root / "printer.json"

    def start(self) -> None:
        self.proc = start_daemon(self.config, self.log)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.proc = None
        return code


def cli_json(config: Path, *args: str) -> object:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--config", str(config), *args]) == 0
    return json.loads(out.getvalue())


def resolve_as_technician(node: Node) -> int:
    """Look in THIS station's output tray for each attempt that needs inspection: a card
    for the record there is good, otherwise (none, or printed elsewhere) it is spoiled."""
    pending = cli_json(node.config, "inspect", "--json")
    assert isinstance(pending, list)
    here = {card.label for card in SimPrinter(node.printer_state).tray_cards("output")}
    for item in pending:
        verdict = "--good" if item["record_id"] in here else "--spoiled"
        with contextlib.redirect_stdout(io.StringIO()):
            assert (
                main(["--config", str(node.config), "resolve", str(item["attempt_id"]), verdict])
                == 0
            )
    return len(pending)


def make_node(tmp_path: Path, central: Centre, i: int) -> Node:
    root = tmp_path / f"s{i}"
    root.mkdir()
    config = station_config(
        root,
        central,
        station_id=f"s{i}",
        central={
            "renew_every_s": 1.0,
            "heartbeat_every_s": 2.0,
            "sync_interval_s": 0.1,
            "retry_max_s": 0.5,
            "timeout_s": 2.0,
            "buffer_target": 6,
            "lease_batch": 6,
        },
        pipeline={"lease_margin_s": LEASE_MARGIN_S, "max_attempts": 10},
        printer={
            "options": {
                "hopper": HOPPER,
                "seed": i,
                "timings_ms": {
                    "feed": 50,
                    "encode_apdu": 0,
                    "print": 450,
                    "eject": 50,
                    "reject": 10,
                    "status": 0,
                },
            }
        },
    )
    with contextlib.redirect_stdout(io.StringIO()):
        assert (
            main(
                ["--config", str(config), "blanks", "receive", str(HOPPER), "--batch", f"MANY-{i}"]
            )
            == 0
        )
    return Node(f"s{i}", root, config, load_config(config), root / "daemon.log")


def leased_again(db: Path, *, by_another: bool) -> int:
    """Records leased more than once (a lease expired or was dropped, and the record was
    leased afresh); with ``by_another``, only those another station took over."""
    having = "COUNT(DISTINCT station_id) > 1" if by_another else "COUNT(*) > 1"
    conn = sqlite3.connect(db)
    try:
        return len(
            conn.execute(
                f"SELECT record_id FROM leases GROUP BY record_id HAVING {having}"
            ).fetchall()
        )
    finally:
        conn.close()


def diagnosis(central: Central, nodes: list[Node]) -> str:
    """What each station and the centre say, for a failure message (no personal data)."""
    lines = [f"centre: {central.server.summary().model_dump_json()}"]
    for node in nodes:
        snap = cli_json(node.config, "status", "--json")
        assert isinstance(snap, dict)
        state, link = snap.get("state") or {}, snap.get("link") or {}
        lines.append(
            f"{node.name}: up={node.proc is not None} counts={snap['counts']} "
            f"state={state.get('category')}:{state.get('message')} "
            f"link={link.get('up')}:{link.get('detail')}"
        )
    conn = sqlite3.connect(central.db)
    try:
        for (rid,) in conn.execute(
            "SELECT record_id FROM results WHERE outcome='printed' "
            "GROUP BY record_id HAVING COUNT(*) > 1"
        ):
            leases = conn.execute(
                "SELECT station_id, granted_ts, expires_ts, close_reason "
                "FROM leases WHERE record_id=? ORDER BY granted_ts",
                (rid,),
            )
            results = conn.execute(
                "SELECT station_id, outcome, received_ts FROM results "
                "WHERE record_id=? ORDER BY seq",
                (rid,),
            )
            lines.append(f"{rid}: leases={leases.fetchall()} results={results.fetchall()}")
            for node in nodes:
                lines += [f"  {node.name}: {row}" for row in station_history(node, rid)]
    finally:
        conn.close()
    return "\n".join(lines)


def station_history(node: Node, record_id: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(node.cfg.db_path)
    try:
        return conn.execute(
            "SELECT at, event, attempt_id, detail FROM audit WHERE record_id=? ORDER BY audit_id",
            (record_id,),
        ).fetchall()
    finally:
        conn.close()


def settled(central: Central, nodes: list[Node]) -> bool:
    for node in nodes:
        resolve_as_technician(node)
    summary = central.server.summary()
    counts = [db_counts(n.cfg.db_path) for n in nodes]
    return summary.printed + summary.failed == RECORDS and all(
        c["outbox"] == 0 and c["inspection"] == 0 for c in counts
    )


@dataclass
class Chaos:
    """What a chaos run did: station kills (long ones outlive their leases), attempts a
    technician resolved, and the centre's own kills."""

    kills: int = 0
    long_kills: int = 0
    resolved: int = 0
    centre_kills: int = 0


def run_chaos(
    central: Any,
    nodes: list[Node],
    rng: random.Random,
    kill_centre: Callable[[], None] | None = None,
) -> Chaos:
    """Kill and restart stations at random (every third kill outlives its leases) until
    most records are printed, ``kill_centre`` (if given) every fourth round, then restart
    everyone and wait until every record is printed and every outbox is empty."""
    done = Chaos()
    for node in nodes:
        node.start()
    began = time.monotonic()
    rounds = 0
    while time.monotonic() - began < CHAOS_S and central.server.summary().printed < RECORDS * 0.85:
        time.sleep(rng.uniform(0.6, 1.8))
        rounds += 1
        if kill_centre is not None and rounds % 4 == 2:
            kill_centre()
            done.centre_kills += 1
        now = time.monotonic()
        for node in nodes:
            if node.proc is None and now >= node.down_until:
                done.resolved += resolve_as_technician(node)
                node.start()
        victim = rng.choice([n for n in nodes if n.proc is not None] or nodes)
        if victim.proc is None:
            continue
        victim.kill()
        done.kills += 1
        # Every third kill keeps the station down past its leases (plus the server's
        # lease ttl): another station takes those records over.
        long = done.kills % 3 == 1
        done.long_kills += long
        victim.down_until = now + (LEASE_TTL_S + 2.0 if long else rng.uniform(0.1, 0.6))
    for node in nodes:
        if node.proc is None:
            done.resolved += resolve_as_technician(node)
            node.start()
    wait_for(
        "every record printed, every outbox and inspection empty",
        lambda: settled(central, nodes),
        timeout=120,
        every=0.5,
    )
    return done


def assert_one_good_card_each(summary: ServerSummary, nodes: list[Node]) -> None:
    """No record has two good cards or two printed results; every record is printed; the
    centre counted each result the stations sent exactly once; no NIK in a log."""
    trays = Counter(
        card.label for node in nodes for card in SimPrinter(node.printer_state).tray_cards("output")
    )
    ids = [rid for node in nodes for rid in result_ids(node.cfg.db_path)]
    assert summary.printed_twice == []
    assert [label for label, n in trays.items() if n > 1] == []  # no two good cards
    assert summary.printed == RECORDS == len(trays)  # every record printed
    assert summary.results == len(set(ids)) == len(ids)
    logs = "".join(node.log.read_text() for node in nodes)
    assert not re.search(r"(?<!\d)\d{16}(?!\d)", logs), "a NIK reached a log"
