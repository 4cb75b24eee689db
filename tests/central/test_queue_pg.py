"""The queue on PostgreSQL: concurrent leases from several connections never hand one
record out twice (FOR UPDATE SKIP LOCKED), concurrent duplicate results count once and
are all acknowledged, migrations are versioned, and `station central serve --db
postgresql://… --workers 2` serves the queue from two processes."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from central.asgi_server import AsgiServer
from central.queue_db import SchemaError
from central.queue_pg import PG_MIGRATIONS, PgQueueDB
from central.seed import load_or_create_key, signed_records
from station.link import protocol as p
from tests.support.postgres import PgCluster
from tests.support.queue import KEY, NOW
from tests.support.serve import serve_cli


@pytest.fixture
def queue(pg: PgCluster) -> Iterator[PgQueueDB]:
    db = PgQueueDB(pg.new_database(), lease_hold_s=0.0, pool_size=8)
    try:
        yield db
    finally:
        db.close()


def run_threads(n: int, work: object) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            work(i)  # type: ignore[operator]
        except (psycopg.Error, AssertionError, OSError) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_leases_never_hand_a_record_twice(queue: PgQueueDB, tmp_path: Path) -> None:
    """Eight stations leasing 120 records at once over pooled connections each get
    distinct records, and together all of them."""
    queue.add_records(signed_records(120, KEY, seed=3, now=NOW))
    key = load_or_create_key(tmp_path / "keys")
    got: dict[int, list[str]] = {}

    def station(i: int) -> None:
        mine: list[str] = []
        while batch := queue.lease(p.LeaseRequest(station_id=f"s{i}", max=4), 600.0, key).records:
            mine += [r.signed.record_id() for r in batch]
        got[i] = mine

    assert run_threads(8, station) == []
    every = [rid for ids in got.values() for rid in ids]
    assert len(every) == len(set(every)) == 120
    assert queue.summary().leased == 120


def test_a_result_sent_twice_at_once_counts_once(queue: PgQueueDB, tmp_path: Path) -> None:
    """The same printed result delivered by four connections at once is stored once; the
    record is printed once and never in printed_twice."""
    queue.add_records(signed_records(1, KEY, seed=3, now=NOW))
    [leased] = queue.lease(
        p.LeaseRequest(station_id="s1", max=1), 600.0, load_or_create_key(tmp_path / "keys")
    ).records
    res = p.CardResult(
        result_id=uuid.uuid4().hex,
        record_id=leased.signed.record_id(),
        lease_id=leased.lease_id,
        outcome="printed",
        started_at=NOW,
        finished_at=NOW,
    )
    acked: list[list[str]] = []

    def send(_i: int) -> None:
        acked.append(queue.results(p.ResultsRequest(station_id="s1", results=[res])).acked)

    assert run_threads(4, send) == []
    assert acked == [[res.result_id]] * 4
    summary = queue.summary()
    assert (summary.results, summary.printed, summary.printed_twice) == (1, 1, [])
    assert summary.duplicate_results == 3


def _waiting_backends(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def _wait_for_backends(dsn: str, n: int) -> None:
    deadline = time.monotonic() + 20
    while _waiting_backends(dsn) < n:
        assert time.monotonic() < deadline, f"never {n} requests waiting on a lock"
        time.sleep(0.02)


def test_the_same_results_posted_twice_at_once_are_both_acknowledged(
    pg: PgCluster, tmp_path: Path
) -> None:
    """Two posts of the same three results racing (the second inserting while the first
    has inserted and not committed) both answer 200 with all three acknowledged, never
    503; each is stored once and the second post counts three duplicates."""
    dsn = pg.new_database()
    with AsgiServer(dsn, key_dir=tmp_path / "keys", lease_hold_s=0.0) as server:
        server.db.add_records(signed_records(3, KEY, seed=3, now=NOW))
        with httpx.Client(base_url=server.url, timeout=30.0) as http:
            leased = http.post("/v1/leases", json={"station_id": "s1", "max": 3}).json()
        body: dict[str, Any] = {
            "station_id": "s1",
            "results": [
                {
                    "result_id": uuid.uuid4().hex,
                    "record_id": r["signed"]["record"]["record_id"],
                    "lease_id": r["lease_id"],
                    "outcome": "printed",
                    "started_at": NOW.isoformat(),
                    "finished_at": NOW.isoformat(),
                }
                for r in leased["records"]
            ],
        }
        answers: list[httpx.Response] = []

        def post(_i: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30.0) as http:
                answers.append(http.post("/v1/results", json=body))

        # Hold the row every results transaction updates last, so the first post waits
        # with its results inserted and uncommitted while the second inserts the same ids.
        with psycopg.connect(dsn) as gate:
            gate.execute("SELECT value FROM counters WHERE name = 'duplicate_results' FOR UPDATE")
            first = threading.Thread(target=post, args=(0,))
            first.start()
            _wait_for_backends(dsn, 1)
            second = threading.Thread(target=post, args=(1,))
            second.start()
            _wait_for_backends(dsn, 2)
            gate.rollback()
        first.join(30)
        second.join(30)
        ids = [r["result_id"] for r in body["results"]]
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        assert [sorted(a.json()["acked"]) for a in answers] == [sorted(ids)] * 2
        summary = server.db.summary()
        assert (summary.results, summary.printed, summary.duplicate_results) == (3, 3, 3)


def test_migrations_are_versioned_and_a_newer_schema_is_refused(pg: PgCluster) -> None:
    """A new database is brought to the last version once; reopening changes nothing; a
    database from a newer server is refused naming both versions."""
    dsn = pg.new_database()
    PgQueueDB(dsn).close()
    db = PgQueueDB(dsn)
    assert db.schema_version == len(PG_MIGRATIONS)
    db.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (
            len(PG_MIGRATIONS),
        )
        conn.execute("INSERT INTO schema_version VALUES (99)")
    newer = f"version 99 is newer than this server's \\({len(PG_MIGRATIONS)}\\)"
    with pytest.raises(SchemaError, match=newer):
        PgQueueDB(dsn)


def test_serve_on_postgresql_with_two_workers(pg: PgCluster, tmp_path: Path) -> None:
    """`station central serve --db postgresql://… --workers 2` leases every record once
    across its workers, prints no debug line a request, and stops with status 0 on
    SIGTERM."""
    dsn = pg.new_database()
    seeder = PgQueueDB(dsn)
    seeder.add_records(signed_records(30, KEY, seed=3, now=NOW))
    seeder.close()
    argv = ["--db", dsn, "--port", "0", "--workers", "2", "--key-dir", str(tmp_path / "keys")]
    with serve_cli(argv) as (proc, url):
        assert url.startswith("http://127.0.0.1:"), url
        got: list[str] = []

        def station(i: int) -> None:
            with httpx.Client(base_url=url, timeout=20.0) as http:
                while True:
                    resp = http.post("/v1/leases", json={"station_id": f"s{i}", "max": 2})
                    assert resp.status_code == 200, resp.text
                    if not (records := resp.json()["records"]):
                        return
                    got.extend(r["signed"]["record"]["record_id"] for r in records)

        assert run_threads(4, station) == []
        assert len(got) == len(set(got)) == 30
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stdout is not None
        assert "central.leased" not in proc.stdout.read()  # no debug line a request
