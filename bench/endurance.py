"""bench/endurance: the station after a year of a busy office is as quick as on day one.

Builds a station database holding a year of history on the real schema (the migrations of
station/store/db.py): 100,000 closed attempts with their records (payloads purged), results
acknowledged and audit rows, 1,000,000 ledger rows; then 10,000 records buffered through
the station's own lease path from the reference server (signatures, grants, sealing).
Runs the station on it, and on an empty database, in the same run, over the simulated
printer with short timings, and measures each card's overhead (its cycle minus the time
inside the device calls, as bench/utilization.py does), the start-up to the first card,
and the database's size after the purges.

    python bench/endurance.py [--cards 300] [--card-ms 100]

Last line: {"bench": "endurance", "p99_ratio": …, "startup_s": …, "db_mb": …, …}
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.outage import start_server_process, stop_server_process
from bench.utilization import instrument, overheads_ms, timings
from station import logs
from station.boot import boot_id
from station.config import load_config
from station.crypto import bind_data_key, load_data_key
from station.daemon import Station
from station.store.db import connect, migrate, transaction

YEAR_S = 365 * 86400
ATTEMPTS = 100_000
LEDGER_ROWS = 1_000_000
BUFFERED = 10_000
LAST_ENROLMENT = "9999-12-31T00:00:00+00:00"  # the background records sort after the rest
WARMUP = 10  # first cards of each run left out of the percentiles (reported as max)
SPOILED_EVERY = 33  # ~3 % of attempts spoil a blank (jam, failed encode, failed print)


def phase(what: str, since: float) -> float:
    """Say on stderr how long a step took; returns now."""
    now = time.perf_counter()
    print(f"endurance: {what} in {now - since:.1f} s", file=sys.stderr)
    return now


def wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"endurance: timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


def write_config(root: Path, url: str, pub: Path, cards: int, card_ms: float, at_rest: int) -> Path:
    state = root / "station"
    t = timings(card_ms)
    path = root / "station.toml"
    path.write_text(f"""station_id = "t-01"
state_dir = "{state}"
log_level = "warning"
[central]
url = "{url}"
trusted_keys = {{ "central-1" = "{pub}" }}
buffer_target = {min(at_rest, 10_000)}
buffer_hours = 100000.0
max_records_at_rest = {at_rest}
lease_batch = 1000
sync_interval_s = 0.5
timeout_s = 60.0
[printer.options]
state_file = "{root / "printer.json"}"
hopper = {cards + 10}
seed = 1
timings_ms = {{ {", ".join(f"{k} = {v}" for k, v in t.items())} }}
[chip]
connect_timeout_s = 1.0
[pipeline]
device_retry_s = 0.05
""")
    return path


# -- a year of history ----------------------------------------------------------------


def _history_rows(rng: random.Random, now: float) -> Iterator[tuple[str, Any]]:
    """(table, row) for a year of attempts: record, attempt, ledger, outbox, audit."""
    start = now - YEAR_S
    for i in range(ATTEMPTS):
        at = start + (YEAR_S - 86400) * i / ATTEMPTS
        rid = f"H-{i:07d}"
        kind = "reprint" if rng.random() < 0.2 else "first"
        enrolled = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(at - 86400 * 30))
        yield (
            "records",
            (
                rid,
                f"L-{i}",
                at + 3600,
                0.0,
                "old-boot",
                kind,
                0,
                enrolled,
                at - 600,
                at + 30,
                os.urandom(16).hex(),
            ),
        )
        serial = f"{rng.getrandbits(64):016X}"
        aid = 2 * i + 1
        if i % SPOILED_EVERY == 0:
            yield (
                "attempts",
                (
                    aid,
                    rid,
                    "rejected",
                    serial,
                    "print: panel transfer failed",
                    at - 60,
                    at - 30,
                    kind,
                ),
            )
            yield "ledger", ("spoiled", 1, aid, serial, None, None, "failed print", at - 30)
        yield "attempts", (aid + 1, rid, "done", serial, None, at, at + 30, kind)
        yield "ledger", ("used", 1, aid + 1, serial, None, None, None, at + 30)
        body = json.dumps(
            {
                "result_id": f"R-{i}",
                "record_id": rid,
                "lease_id": f"L-{i}",
                "outcome": "printed",
                "blank_serial": serial,
            }
        )
        yield "outbox", (f"R-{i}", body, at + 30, at + 90)
        yield "audit", (at + 30, "card_printed", aid + 1, rid, None)


def build_history(cfg_path: Path) -> dict[str, int]:
    """Fill the station database of ``cfg_path`` with a year of a busy office."""
    cfg = load_config(cfg_path)
    conn = connect(cfg.db_path)
    migrate(conn)
    transaction(conn, lambda c: bind_data_key(c, cfg.key_path))
    # Bulk loading only: no journal, no fsync (the station's own pragmas apply after).
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    rng = random.Random(2026)
    now = time.time()
    sql = {
        "records": "INSERT INTO records(record_id, lease_id, lease_deadline, lease_mono, "
        "boot_id, kind, urgent, enrolled_at, status, attempts, payload, "
        "received_at, closed_at, nik_hash) VALUES (?,?,?,?,?,?,?,?,'done',1,NULL,"
        "?,?,?)",
        "attempts": "INSERT INTO attempts(attempt_id, record_id, state, blank_serial, reason, "
        "started_at, updated_at, kind) VALUES (?,?,?,?,?,?,?,?)",
        "ledger": "INSERT INTO ledger(kind, count, attempt_id, serial, batch, reason, class, "
        "at) VALUES (?,?,?,?,?,?,?,?)",
        "outbox": "INSERT INTO outbox(result_id, body, created_at, acked_at) VALUES (?,?,?,?)",
        "audit": "INSERT INTO audit(at, event, attempt_id, record_id, detail) VALUES (?,?,?,?,?)",
    }
    rows: dict[str, list[Any]] = {k: [] for k in sql}
    counted = dict.fromkeys(sql, 0)

    def flush(c: sqlite3.Connection) -> None:
        for table, batch in rows.items():
            if batch:
                c.executemany(sql[table], batch)
                counted[table] += len(batch)
                batch.clear()

    def fill(c: sqlite3.Connection) -> None:
        for table, row in _history_rows(rng, now):
            rows[table].append(row)
            if len(rows[table]) >= 20_000:
                flush(c)
        flush(c)
        # Deliveries of blanks over the year (enough for what follows), and the rest of
        # the ledger's rows: physical counts corrected one blank at a time, in pairs.
        spoiled = (ATTEMPTS + SPOILED_EVERY - 1) // SPOILED_EVERY
        received = ATTEMPTS + spoiled + BUFFERED + 5_000
        deliveries = 50
        for d in range(deliveries):
            rows["ledger"].append(
                (
                    "received",
                    received // deliveries + (d == 0) * (received % deliveries),
                    None,
                    None,
                    f"BAST-{d:03d}",
                    None,
                    None,
                    now - YEAR_S + d * YEAR_S / deliveries,
                )
            )
        pairs = (LEDGER_ROWS - counted["ledger"] - len(rows["ledger"]) + 1) // 2
        for p in range(pairs):
            at = now - YEAR_S + YEAR_S * p / pairs
            rows["ledger"].append(("adjusted", -1, None, None, None, "count: one short", None, at))
            rows["ledger"].append(
                ("adjusted", 1, None, None, None, "count: found it", None, at + 60)
            )
            if len(rows["ledger"]) >= 20_000:
                flush(c)
        flush(c)

    transaction(conn, fill)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return counted


def buffer_background(cfg_path: Path, queue_db: Path, n: int) -> None:
    """``n`` more records buffered and leased to the station, written straight into both
    databases (the lease path checks ~17 ms a record: 10,000 would take minutes). They are
    reprints enrolled last, so the cards measured are printed before any of them; their
    leases are real at the centre, so the station's renewals keep them."""
    cfg = load_config(cfg_path)
    key = load_data_key(cfg.key_path)
    now, mono, boot = time.time(), time.monotonic(), boot_id()
    q = sqlite3.connect(queue_db, timeout=30)
    signed = q.execute("SELECT signed_json FROM records LIMIT 1").fetchone()[0]
    rows, leases, station = [], [], []
    for i in range(n):
        rid, lid = f"B-{i:07d}", f"BL-{i:07d}"
        rows.append((rid, 1, 0, now + 86400, signed, lid, cfg.station_id, now + 3600, now))
        leases.append((lid, rid, cfg.station_id, now, now + 3600))
        station.append(
            (
                rid,
                lid,
                now + 3600,
                mono + 3600,
                boot,
                "reprint",
                LAST_ENROLMENT,
                key.seal(signed.encode(), rid.encode()),
                now,
                os.urandom(16).hex(),
            )
        )
    with q:
        q.executemany(
            "INSERT INTO records(record_id, kind_rank, urgent, enrolled_ts, "
            "signed_json, lease_id, lease_station, lease_expires, added_ts) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            rows,
        )
        q.executemany(
            "INSERT INTO leases(lease_id, record_id, station_id, granted_ts, "
            "expires_ts) VALUES (?,?,?,?,?)",
            leases,
        )
    q.close()
    conn = connect(cfg.db_path)
    transaction(
        conn,
        lambda c: c.executemany(
            "INSERT INTO records(record_id, lease_id, lease_deadline, lease_mono, boot_id, kind, "
            "urgent, enrolled_at, status, attempts, payload, received_at, nik_hash) "
            "VALUES (?,?,?,?,?,?,0,?,'queued',0,?,?,?)",
            station,
        ),
    )
    conn.close()


# -- one station run --------------------------------------------------------------------


@dataclass
class Run:
    overheads_ms: list[float]
    startup_s: float  # Station.build() called to the first card started
    buffered_at_start: int
    db_mb: float  # station.db after the run, checkpointed, purged pages given back

    @property
    def steady_ms(self) -> list[float]:
        """The cards after the first :data:`WARMUP` (the start-up's first sync rounds and
        the first face, rendered on the spot, land there in both runs alike)."""
        return self.overheads_ms[WARMUP:]

    @property
    def p99(self) -> float:
        s = sorted(self.steady_ms)
        return s[min(len(s) - 1, int(len(s) * 0.99))]


def station_run(
    root: Path, cards: int, card_ms: float, *, history: bool
) -> tuple[Run, dict[str, int]]:
    t = time.perf_counter()
    server, central = start_server_process(root, cards)
    t = phase(f"{cards} records seeded at the reference server", t)
    counted: dict[str, int] = {}
    try:
        config = write_config(
            root, central.server.url, central.pub, cards, card_ms, cards + BUFFERED
        )
        if history:
            counted = build_history(config)
            t = phase("a year of history written", t)
        cfg = load_config(config)
        logs.setup(cfg.log_level, cfg.log_format)
        if not history:
            conn = connect(cfg.db_path)
            migrate(conn)
            transaction(
                conn,
                lambda c: c.execute(
                    "INSERT INTO ledger(kind, count, batch, at) VALUES ('received', ?, 'B', ?)",
                    (cards + 10, time.time()),
                ),
            )
            conn.close()
        # The buffer is filled through the station's own lease path before the clock runs,
        # so both runs print from a full buffer and lease nothing meanwhile.
        filler = Station.build(cfg)
        try:
            while filler.sync.fill_buffer():
                pass
        finally:
            filler.sync.stop()
            filler.client.close()
            filler.db.close()
        t = phase(f"{cards} records leased and buffered", t)
        if history:
            buffer_background(config, central.db, BUFFERED)
            t = phase(f"{BUFFERED} more buffered", t)
        started = time.perf_counter()
        station = Station.build(cfg)
        marks = instrument(station)
        station.start()
        try:
            wait(
                "every card",
                lambda: (
                    len(marks.cycles) >= cards
                    and any(e[0] > marks.cycles[cards - 1][0] for e in marks.ends)
                ),
                cards * card_ms / 1000 * 4 + 60,
            )
            in_buffer = station.db.run(
                lambda c: c.execute(
                    "SELECT COUNT(*) FROM records WHERE status='queued'"
                ).fetchone()[0]
            )
        finally:
            station.stop()
    finally:
        stop_server_process(server)
    points = marks.per_card(cards)
    conn = sqlite3.connect(cfg.db_path)
    conn.execute("PRAGMA incremental_vacuum")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = sum(p.stat().st_size for p in cfg.state_dir.glob("station.db*"))
    return Run(
        overheads_ms(points), points[0][0] - started, in_buffer + cards, size / (1 << 20)
    ), counted


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cards", type=int, default=300)
    ap.add_argument("--card-ms", type=float, default=100)
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "empty").mkdir()
        (root / "year").mkdir()
        empty, _ = station_run(root / "empty", args.cards, args.card_ms, history=False)
        year, counted = station_run(root / "year", args.cards, args.card_ms, history=True)
    figures = {
        "bench": "endurance",
        "cards": args.cards,
        "card_ms": args.card_ms,
        "history_attempts": counted.get("attempts", 0),
        "history_ledger_rows": counted.get("ledger", 0),
        "buffered": year.buffered_at_start,
        "p99_empty_ms": round(empty.p99, 3),
        "p99_year_ms": round(year.p99, 3),
        "p50_empty_ms": round(statistics.median(empty.steady_ms), 3),
        "p50_year_ms": round(statistics.median(year.steady_ms), 3),
        "max_empty_ms": round(max(empty.overheads_ms), 3),
        "max_year_ms": round(max(year.overheads_ms), 3),
        "warmup_cards": WARMUP,
        "p99_ratio": round(year.p99 / empty.p99, 3),
        "startup_empty_s": round(empty.startup_s, 3),
        "startup_s": round(year.startup_s, 3),
        "db_mb": round(year.db_mb, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(
        f"a year of history ({figures['history_attempts']} attempts, "
        f"{figures['history_ledger_rows']} ledger rows, {figures['buffered']} buffered): "
        f"p99 overhead {figures['p99_year_ms']} ms vs {figures['p99_empty_ms']} ms empty; "
        f"start-up {figures['startup_s']} s; database {figures['db_mb']} MB"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
