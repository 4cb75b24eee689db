"""bench/fleet: the centre's /metrics and /fleet with 5,000 stations.

The stations' heartbeats go into a SQLite queue first (QueueDB.heartbeat, the code the
endpoint runs), then `station central serve` (ASGI, one worker) answers ``--scrapes``
GET /metrics and GET /fleet in turn on loopback while ``--beat-rate`` heartbeats a second
keep arriving over HTTP (5,000 stations beating once a minute send 83 a second), so each
answer has fresh heartbeats to take in. The first answer of each (the cold cache) is
left out. Latency is client-side, the whole answer read.

    python bench/fleet.py [--stations 5000] [--scrapes 40] [--beat-rate 80]

Last line: {"bench": "fleet", "stations", "metrics_p99_ms", "fleet_p99_ms",
"metrics_bytes", "fleet_bytes", "station_page_p99_ms", "metrics_p50_ms", "fleet_p50_ms",
"heartbeats_sent"}
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from central.names import REGENCIES
from central.queue_db import QueueDB
from station.link.protocol import Heartbeat
from tests.support.serve import serve_cli

STATES = ("printing", "printing", "printing", "ready", "ready", "paused", "error", "stopped")
CODES = [prov + reg for prov, pairs in REGENCIES.items() for reg, _name in pairs]


def heartbeat(i: int, rng: random.Random) -> Heartbeat:
    return Heartbeat.model_validate(
        {
            "station_id": f"{CODES[i % len(CODES)]}-{i // len(CODES):03d}",
            "version": "0.3.0",
            "printer_state": "ready",
            "blanks": rng.randint(0, 500),
            "buffer": rng.randint(0, 20),
            "outbox": rng.randint(0, 3),
            "cards_today": rng.randint(0, 120),
            "burn_rate_per_day": 40.0,
            "days_left": rng.uniform(0, 15),
            "state": rng.choice(STATES),
            "message_code": "printing",
            "spoiled_today": {"failed print": rng.randint(0, 3), "chip dead/invalid": 1},
            "printed_total": rng.randint(0, 50_000),
            "spoiled_total": {"failed print": rng.randint(0, 300), "chip dead/invalid": 4},
            "disk_free_mb": rng.uniform(200, 50_000),
        }
    )


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 1)


def p99(samples: list[float]) -> float:
    return pct(samples, 0.99)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stations", type=int, default=5000)
    ap.add_argument("--scrapes", type=int, default=40)
    ap.add_argument("--beat-rate", type=float, default=80.0)
    args = ap.parse_args()
    rng = random.Random(15)
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "centre.db"
        db = QueueDB(db_path)
        for i in range(args.stations):
            db.heartbeat(heartbeat(i, rng))
        db.close()
        argv = ["--db", str(db_path), "--port", "0", "--key-dir", str(Path(tmp) / "keys")]
        with serve_cli(argv) as (_proc, url):
            stop = threading.Event()
            sent = [0]

            def beats() -> None:
                with httpx.Client(base_url=url, timeout=30.0) as http:
                    while not stop.is_set():
                        hb = heartbeat(rng.randrange(args.stations), rng)
                        http.post("/v1/heartbeat", content=hb.model_dump_json(),
                                  headers={"content-type": "application/json"})  # fmt: skip
                        sent[0] += 1
                        stop.wait(1.0 / args.beat_rate)

            times: dict[str, list[float]] = {"metrics": [], "fleet": [], "station": []}
            size: dict[str, int] = {}
            beater = threading.Thread(target=beats, name="bench-beats")
            beater.start()
            try:
                with httpx.Client(base_url=url, timeout=60.0) as http:
                    for n in range(args.scrapes + 1):
                        for name, path in (
                            ("metrics", "/metrics"),
                            ("fleet", "/fleet"),
                            ("station", f"/fleet/{CODES[0]}-000"),
                        ):
                            t0 = time.perf_counter()
                            resp = http.get(path)
                            took = time.perf_counter() - t0
                            resp.raise_for_status()
                            size[name] = len(resp.content)
                            if n:  # the first fills the cache
                                times[name].append(took)
            finally:
                stop.set()
                beater.join()
    out: dict[str, Any] = {
        "bench": "fleet",
        "stations": args.stations,
        "metrics_p99_ms": p99(times["metrics"]),
        "fleet_p99_ms": p99(times["fleet"]),
        "metrics_bytes": size["metrics"],
        "fleet_bytes": size["fleet"],
        "station_page_p99_ms": p99(times["station"]),
        "metrics_p50_ms": pct(times["metrics"], 0.5),
        "fleet_p50_ms": pct(times["fleet"], 0.5),
        "heartbeats_sent": sent[0],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
