"""bench/outbox: 10,000 results waiting in the outbox, acknowledged once the link returns.

The results are written straight into a station database's outbox (as a long outage
leaves them), the station starts with the link down (a fault proxy refusing connections),
then the link comes back: ``seconds`` runs from that moment until the centre has
acknowledged every result, ``requests`` counts the POST /v1/results it took. The centre
runs in its own process, with its fsync'd SQLite.

    python bench/outbox.py [--results 10000] [--outbox-batch 1000]

Last line: {"bench": "outbox", "seconds": …, "requests": …, …}
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.outage import quiet_logs, start_server_process, stop_server_process
from station.config import load_config
from station.daemon import Station
from station.link.protocol import CardResult
from station.store.db import Database
from tests.support.harness import db_counts, station_config, status, wait_for
from tests.support.netfaults import FaultProxy, Mode


def fill_outbox(db: Path, n: int) -> None:
    """``n`` pending printed results, as if printed during an outage."""
    Database(db).close()  # creates and migrates the station database
    now = time.time()
    when = dt.datetime.fromtimestamp(now, dt.UTC)
    rows = []
    for i in range(n):
        result = CardResult(
            result_id=uuid.uuid4().hex,
            record_id=f"PRR-{i + 1:06d}",
            lease_id=uuid.uuid4().hex,
            outcome="printed",
            card_serial=f"04{i:012X}",
            started_at=when,
            finished_at=when,
        )
        rows.append((result.result_id, result.model_dump_json(), now + i * 1e-6))
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.executemany("INSERT INTO outbox(result_id, body, created_at) VALUES (?,?,?)", rows)
    finally:
        conn.close()


def main() -> None:
    quiet_logs()
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", type=int, default=10_000)
    ap.add_argument("--outbox-batch", type=int, default=1000, help="central.outbox_batch")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server, central = start_server_process(root, 0)
        proxy = FaultProxy(central.server.url).start()
        proxy.set_mode(Mode.REFUSE)
        try:
            config = station_config(
                root,
                central,
                url=proxy.url,
                central={
                    "outbox_batch": args.outbox_batch,
                    "timeout_s": 10.0,
                    "retry_max_s": 60.0,
                    "sync_interval_s": 2.0,
                },
            )
            cfg = load_config(config)
            fill_outbox(cfg.db_path, args.results)
            station = Station.build(cfg)
            station.start()
            try:
                wait_for(
                    "the link down",
                    lambda: (status(cfg.db_path).get("link") or {}).get("up") is False,
                )
                proxy.set_mode(Mode.PASS)
                t0 = time.monotonic()
                wait_for(
                    "every result acknowledged",
                    lambda: db_counts(cfg.db_path)["outbox"] == 0,
                    timeout=600,
                    every=0.01,
                )
                seconds = time.monotonic() - t0
            finally:
                station.stop()
        finally:
            proxy.stop()
            stop_server_process(server)
        posts = [x for x in proxy.exchanges if x.mode == Mode.PASS and x.path == "/v1/results"]
        at_centre = sqlite3.connect(f"file:{central.db}?mode=ro", uri=True)
        try:
            received = at_centre.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            at_centre.close()
    first = min(x.at for x in posts)
    figures = {
        "bench": "outbox",
        "results": args.results,
        "outbox_batch": args.outbox_batch,
        "seconds": round(seconds, 3),
        "drain_seconds": round(t0 + seconds - first, 3),
        "requests": len(posts),
        "bytes_up": sum(x.up for x in posts),
        "received_at_centre": received,
    }
    print(
        f"{args.results} results acknowledged {seconds:.2f} s after the link returned, "
        f"in {len(posts)} requests"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
