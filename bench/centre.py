"""bench/centre: the centre under a national day's load, on each storage engine.

Simulated stations speak the real protocol (bench/_http.py: light keep-alive
connections on asyncio) to `station central serve
--workers N` on loopback, first on SQLite, then on PostgreSQL (a throwaway cluster):

1. the mix, open loop at ``--rate`` requests/s from ``--stations`` stations for
   ``--seconds``: heartbeats, lease batches, renewals of what a station holds, printed
   results for it (time compressed: a national day's proportions, not its length);
2. saturation: ``--clients`` stations leasing batches of 50 as fast as the centre answers.

Then every lease and result is checked against the centre: ``double_leases`` (a record
granted to two stations; no lease expires during the run) and ``lost_results`` (acked by
the centre but not counted) must be 0. Records are copies of a few seeded ones under new
ids (the centre does not check their signatures; stations are not involved).

    python bench/centre.py [--stations 5000] [--rate 200] [--seconds 20] [--workers 4]
                           [--load-procs 1]

One JSON line per engine, then the last line: {"bench": "centre", "engines": [{"engine",
"stations", "requests_per_s", "p99_ms": {endpoint: ms}, "leases_per_s", "double_leases",
"lost_results", "errors", "centre_cpu_ms_per_request" (centre and PostgreSQL),
"load_cpu_ms_per_request", "load_avg"}, ...]}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._http import Connection, HttpError
from central.engines import open_queue
from central.seed import load_or_create_key, signed_records
from station.records import SignedRecord
from tests.support.postgres import running_cluster
from tests.support.serve import SERVE

NOW = "2025-06-01T00:00:00+00:00"


def records(n: int, key_dir: Path, first: int = 0) -> list[SignedRecord]:
    """``n`` records: copies of 50 signed ones under new ids (after the ``first``)."""
    key_id, key = load_or_create_key(key_dir)
    base = list(signed_records(50, key, 0, key_id=key_id))
    out = []
    for i in range(n):
        src = base[i % len(base)]
        out.append(
            src.model_copy(
                update={"record": {**src.record, "record_id": f"PRR-{first + i + 1:07d}"}}
            )
        )
    return out


def start_centre(
    db: str, key_dir: Path, workers: int, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [
        "central",
        "serve",
        "--db",
        db,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--key-dir",
        str(key_dir),
        "--lease-ttl",
        "3600",
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, *argv], stdout=out, stderr=out, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/v1/summary", timeout=5.0)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"the centre did not start: {log.read_text()[-2000:]}")


class Load:
    def __init__(self, stations: list[str]) -> None:
        self.stations = stations
        self.held: dict[str, list[tuple[str, str]]] = defaultdict(list)  # station → leases
        self.grants: dict[str, set[str]] = defaultdict(set)  # record → stations
        self.acked: set[str] = set()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors = 0

    def merge(self, other: Load) -> None:
        """Take in what another process's share of the stations saw."""
        for endpoint, values in other.latency.items():
            self.latency[endpoint] += values
        for rid, stations in other.grants.items():
            self.grants[rid] |= stations
        self.acked |= other.acked
        self.errors += other.errors

    async def call(
        self,
        http: Connection,
        endpoint: str,
        body: dict[str, Any],
        since: float | None = None,
    ) -> Any:
        """POST ``body``; its latency counts from ``since`` (when it was due) if given."""
        t = time.perf_counter() if since is None else since
        try:
            status, answer = await http.post(endpoint, body)
        except HttpError:  # a timeout counts as an error, at its full latency
            self.latency[endpoint].append((time.perf_counter() - t) * 1000)
            self.errors += 1
            return None
        self.latency[endpoint].append((time.perf_counter() - t) * 1000)
        if status != 200:
            self.errors += 1
            return None
        return answer

    async def lease(
        self, http: Connection, station: str, n: int, since: float | None = None
    ) -> int:
        answer = await self.call(http, "/v1/leases", {"station_id": station, "max": n}, since)
        for r in (answer or {}).get("records", []):
            rid = r["signed"]["record"]["record_id"]
            self.grants[rid].add(station)
            self.held[station].append((rid, r["lease_id"]))
        return len((answer or {}).get("records", []))

    async def one(self, http: Connection, rng: random.Random, due: float) -> None:
        station = rng.choice(self.stations)
        roll = rng.random()
        held = self.held[station]
        if roll < 0.6:
            await self.call(
                http,
                "/v1/heartbeat",
                {
                    "station_id": station,
                    "version": "bench",
                    "printer_state": "ready",
                    "blanks": 500,
                    "buffer": len(held),
                    "outbox": 0,
                },
                due,
            )
        elif roll < 0.75 or not held:
            await self.lease(http, station, 10, due)
        elif roll < 0.9:
            await self.call(
                http,
                "/v1/leases/renew",
                {"station_id": station, "lease_ids": [lid for _, lid in held]},
                due,
            )
        else:
            done, self.held[station] = held[:5], held[5:]
            results = [
                {
                    "result_id": uuid.uuid4().hex,
                    "record_id": rid,
                    "lease_id": lid,
                    "outcome": "printed",
                    "started_at": NOW,
                    "finished_at": NOW,
                }
                for rid, lid in done
            ]
            answer = await self.call(
                http, "/v1/results", {"station_id": station, "results": results}, due
            )
            self.acked |= set((answer or {}).get("acked", []))


async def mix(url: str, load: Load, rate: float, seconds: float, connections: int = 32) -> float:
    """Open loop: a request falls due every 1/``rate`` s and waits for the first free one
    of ``connections`` keep-alive connections (each its own: a shared pool's bookkeeping
    grew with the requests waiting, and the load generator, not the centre, was what the
    figures measured). A request's latency counts from when it fell due, so time queued
    here is not hidden."""
    rng = random.Random(load.stations[0])
    due_q: asyncio.Queue[float | None] = asyncio.Queue()

    async def connection() -> None:
        http = Connection(url)
        while (due := await due_q.get()) is not None:
            await load.one(http, rng, due)
        http.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    began = time.perf_counter()
    n = 0
    while (elapsed := time.perf_counter() - began) < seconds:
        while n < int(elapsed * rate):
            due_q.put_nowait(began + n / rate)
            n += 1
        await asyncio.sleep(max(0.0, began + n / rate - time.perf_counter()))
    for _ in workers:
        due_q.put_nowait(None)
    await asyncio.gather(*workers)
    return n / (time.perf_counter() - began)


def mix_share(url: str, stations: list[str], rate: float, seconds: float) -> tuple[Load, float]:
    """One load process: its share of the stations at its share of the rate."""
    load = Load(stations)
    rps = asyncio.run(mix(url, load, rate, seconds))
    return load, rps


async def saturate(url: str, load: Load, clients: int, seconds: float) -> float:
    leased = 0
    began = time.perf_counter()

    async def station(i: int) -> None:
        nonlocal leased
        http = Connection(url)
        while time.perf_counter() - began < seconds:
            got = await load.lease(http, f"sat-{i:03d}", 50)
            if not got:
                break
            leased += got
        http.close()

    await asyncio.gather(*(station(i) for i in range(clients)))
    return leased / (time.perf_counter() - began)


def tree_cpu_s(roots: list[int]) -> float:
    """CPU seconds (user + system) used so far by ``roots`` and all their descendants."""
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        pid = int(stat.parent.name)
        parent[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        total += used.get(pid, 0.0)
        todo += [child for child, ppid in parent.items() if ppid == pid]
    return total


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1) if ordered else 0.0


def run_engine(
    engine: str, db: str, work: Path, args: argparse.Namespace, postmaster: int | None
) -> dict[str, Any]:
    key_dir = work / "keys"
    queue = open_queue(db)
    queue.add_records(records(args.records, key_dir))
    queue.close()
    proc, url = start_centre(db, key_dir, args.workers, work / f"centre-{engine}.log")
    try:
        # Load processes (--load-procs): with httpx one process topped out near 100
        # requests/s; with bench/_http.py one carries the mix at ~1.9 ms of CPU a request.
        names = [f"st-{i:05d}" for i in range(args.stations)]
        n = args.load_procs
        servers = [proc.pid] + ([postmaster] if postmaster else [])
        centre_cpu, load_cpu = tree_cpu_s(servers), children_cpu_s()
        with ProcessPoolExecutor(n) as pool:
            shares = list(
                pool.map(
                    mix_share,
                    [url] * n,
                    [names[i::n] for i in range(n)],
                    [args.rate / n] * n,
                    [args.seconds] * n,
                )
            )
        load = Load(names)
        for share, _rps in shares:
            load.merge(share)
        rps = sum(r for _share, r in shares)
        load_avg = os.getloadavg()[0]
        served = sum(len(v) for v in load.latency.values())
        centre_cpu, load_cpu = tree_cpu_s(servers) - centre_cpu, children_cpu_s() - load_cpu
        mix_p99 = {ep: p99(v) for ep, v in sorted(load.latency.items())}
        # The mix may have leased the whole queue: saturation gets records of its own.
        queue = open_queue(db)
        queue.add_records(records(args.saturate_records, key_dir, first=args.records))
        queue.close()
        leases_per_s = asyncio.run(saturate(url, load, args.clients, args.saturate_s))
        summary = httpx.get(url + "/v1/summary", timeout=30.0).json()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    return {
        "engine": engine,
        "stations": args.stations,
        "workers": args.workers,
        "requests_per_s": round(rps, 1),
        "p99_ms": mix_p99,
        "leases_per_s": round(leases_per_s, 1),
        "double_leases": sum(1 for s in load.grants.values() if len(s) > 1),
        "lost_results": len(load.acked) - int(summary["results"]),
        "errors": load.errors,
        # What a request costs whatever else the machine runs (2 cores: 2,000 ms of CPU
        # a second), and how loaded the machine was (1-minute load average).
        "centre_cpu_ms_per_request": round(centre_cpu * 1000 / max(served, 1), 2),
        "load_cpu_ms_per_request": round(load_cpu * 1000 / max(served, 1), 2),
        "load_avg": round(load_avg, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stations", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=200.0, help="requests/s of the mix")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--load-procs", type=int, default=1, help="load generator processes")
    ap.add_argument("--clients", type=int, default=8, help="stations leasing at saturation")
    ap.add_argument("--saturate-s", type=float, default=5.0)
    ap.add_argument("--records", type=int, default=12000)
    ap.add_argument(
        "--saturate-records", type=int, default=20000, help="records added for saturation"
    )
    ap.add_argument("--engines", default="sqlite,postgresql")
    args = ap.parse_args()
    out = []
    with ExitStack() as stack:
        for engine in args.engines.split(","):
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-centre-")))
            postmaster = None
            if engine == "postgresql":
                cluster = stack.enter_context(running_cluster())
                db, postmaster = cluster.new_database(), cluster.pid
            else:
                db = str(work / "queue.db")
            result = run_engine(engine, db, work, args, postmaster)
            print(json.dumps(result), flush=True)
            out.append(result)
    print(json.dumps({"bench": "centre", "engines": out}))


if __name__ == "__main__":
    main()
