"""bench/outage: printing through a link that is down half the time.

Two runs of the same length over the same simulated printer: one with the link always up,
one where a fault proxy (tests/support/netfaults.py) between station and centre takes the
link down in random windows, 50 % of the time in all (connections refused or black-holed).
output_ratio = cards printed with outages / cards printed without. Then the link comes
back for good and every result must reach the centre: lost_results counts results the
station wrote that the centre never got (must be 0). The centre runs in its own process;
the station keeps its default timeouts and backoff, and the buffer target holds the
records leased ahead (what "while leased records remain" means).

    python bench/outage.py [--seconds 60] [--card-ms 200] [--max-window 6] [--seed 1]

Last line: {"bench": "outage", "output_ratio": …, "lost_results": …, …}
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from central.seed import seed
from drivers.sim.printer import SimPrinter
from station.cli.main import main as cli
from station.config import load_config
from station.daemon import Station
from tests.support.harness import Central, db_counts, station_config, wait_for
from tests.support.netfaults import FaultProxy, Mode


def timings(card_ms: float) -> dict[str, float]:
    return {
        "feed": card_ms * 0.2,
        "encode_apdu": 0,
        "print": card_ms * 0.7,
        "eject": card_ms * 0.1,
        "reject": 0,
        "status": 0,
    }


def quiet_logs() -> None:
    """Warnings and errors only: the station's per-card lines would drown the figures."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


class _UrlOnly:
    def __init__(self, url: str) -> None:
        self.url = url


def start_server_process(
    root: Path, records: int, *, lease_ttl_s: float = 600.0
) -> tuple[subprocess.Popen[str], Central]:
    """The reference server in its own process (the centre is another machine)."""
    db, keys = root / "central" / "queue.db", root / "central" / "keys"
    db.parent.mkdir(parents=True)
    if records:
        seed(db, records, seed=0, key_dir=keys)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "station.cli.main",
            "central",
            "serve",
            "--db",
            str(db),
            "--port",
            "0",
            "--key-dir",
            str(keys),
            "--lease-ttl",
            str(lease_ttl_s),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().split()[-1]
    return proc, Central(_UrlOnly(url), db, keys)  # type: ignore[arg-type]


def stop_server_process(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()


def server_result_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {r[0] for r in conn.execute("SELECT result_id FROM results")}
    finally:
        conn.close()


def server_printed_records(db: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            r[0] for r in conn.execute("SELECT record_id FROM results WHERE outcome = 'printed'")
        }
    finally:
        conn.close()


def station_result_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT result_id FROM outbox")}
    finally:
        conn.close()


def schedule(rng: random.Random, seconds: float, max_window: float) -> list[tuple[float, bool]]:
    """Alternating (duration, link_up) windows, starting up, down exactly half the time."""
    windows: list[tuple[float, bool]] = []
    up = down = 0.0
    link_up = True
    while up + down < seconds:
        length = rng.uniform(1.0, max_window)
        windows.append((length, link_up))
        if link_up:
            up += length
        else:
            down += length
        link_up = not link_up
    scale_down = (seconds / 2) / down if down else 0.0
    scale_up = (seconds / 2) / up
    return [(d * (scale_up if is_up else scale_down), is_up) for d, is_up in windows]


def run(root: Path, args: argparse.Namespace, *, outage: bool) -> dict[str, Any]:
    rng = random.Random(args.seed)
    records = int(args.seconds * 1000 / args.card_ms * 1.3) + 100
    server, central = start_server_process(root, records)
    proxy = FaultProxy(central.server.url).start()
    try:
        config = station_config(
            root,
            central,
            url=proxy.url,
            # The station's defaults for timeouts and backoff; the buffer holds 100 records.
            central={
                "timeout_s": 10.0,
                "retry_max_s": 60.0,
                "sync_interval_s": 2.0,
                "buffer_target": 100,
                "lease_batch": 50,
            },
            printer={"options": {"hopper": records + 5, "timings_ms": timings(args.card_ms)}},
        )
        cli(["--config", str(config), "blanks", "receive", str(records + 5), "--batch", "B"])
        cfg = load_config(config)
        station = Station.build(cfg)
        tray = root / "printer.json"
        station.start()
        try:
            t0 = time.monotonic()
            down_s = 0.0
            if outage:
                for length, link_up in schedule(rng, args.seconds, args.max_window):
                    proxy.set_mode(
                        Mode.PASS if link_up else rng.choice([Mode.REFUSE, Mode.BLACKHOLE])
                    )
                    began = time.monotonic()
                    end = min(began + length, t0 + args.seconds)
                    time.sleep(max(0.0, end - began))
                    down_s += 0 if link_up else time.monotonic() - began
            time.sleep(max(0.0, t0 + args.seconds - time.monotonic()))
            cards = len(SimPrinter(tray).tray_cards("output"))
            # The link is back for good; the printer stops after the card in hand (its
            # result written), the sync thread goes on until every result is acknowledged.
            proxy.set_mode(Mode.PASS)
            station.stop_event.set()
            station.worker.join()
            wait_for(
                "the outbox drained",
                lambda: db_counts(cfg.db_path)["outbox"] == 0,
                timeout=300,
                every=0.2,
            )
        finally:
            station.stop()
        written = station_result_ids(cfg.db_path)
        at_centre = server_result_ids(central.db)
        in_tray = {c.label for c in SimPrinter(tray).tray_cards("output")}
        printed_at_centre = server_printed_records(central.db)
    finally:
        proxy.stop()
        stop_server_process(server)
    # Lost: a result the station wrote that never arrived, or a card with no printed result.
    lost = len(written - at_centre) + len(in_tray - printed_at_centre)
    return {
        "cards": cards,
        "lost_results": lost,
        "down_s": round(down_s, 1),
        "faulted_connections": sum(proxy.count(m) for m in (Mode.REFUSE, Mode.BLACKHOLE)),
    }


def main() -> None:
    quiet_logs()
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--card-ms", type=float, default=200.0)
    ap.add_argument("--max-window", type=float, default=6.0, help="longest up/down window, s")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "steady").mkdir()
        (root / "outage").mkdir()
        steady = run(root / "steady", args, outage=False)
        broken = run(root / "outage", args, outage=True)
    figures = {
        "bench": "outage",
        "seconds": args.seconds,
        "card_ms": args.card_ms,
        "down_fraction": round(broken["down_s"] / args.seconds, 3),
        "cards_no_outage": steady["cards"],
        "cards_outage": broken["cards"],
        "output_ratio": round(broken["cards"] / steady["cards"], 4),
        "lost_results": steady["lost_results"] + broken["lost_results"],
        "faulted_connections": broken["faulted_connections"],
    }
    print(
        f"{steady['cards']} cards with the link up, {broken['cards']} with it down "
        f"{figures['down_fraction']:.0%} of {args.seconds:.0f} s; "
        f"lost results: {figures['lost_results']}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
