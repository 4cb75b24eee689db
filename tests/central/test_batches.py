"""Offline batches at the centre on both engines (SQLite and PostgreSQL): a batch leases
its records to one station for days, a results file counts each result once however
often it is ingested, and the operator's verbs take a PostgreSQL DSN as ``--db``."""

from __future__ import annotations

import argparse
import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from central.batches import (
    add_central_batch_commands,
    create_batch,
    ingest_results,
    register_station_key,
)
from central.engines import open_queue
from central.queue_db import QueueDB
from central.seed import load_or_create_key, signed_records
from station.link import protocol as p
from station.link.batchfile import (
    BatchFileError,
    ResultsBody,
    SignedFile,
    read_signed,
    sign_body,
    station_key_id,
)
from tests.support.postgres import PgCluster
from tests.support.queue import KEY, NOW


@pytest.fixture(params=["sqlite", "postgresql"])
def db_name(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "queue.db")
    cluster: PgCluster = request.getfixturevalue("pg")
    return cluster.new_database()


@pytest.fixture
def queue(db_name: str) -> Iterator[QueueDB]:
    db = open_queue(db_name, lease_hold_s=0.0)
    try:
        yield db
    finally:
        db.close()


def raw_b64(public: object) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)  # type: ignore[attr-defined]
    return base64.b64encode(raw).decode()


def results_file(station_key: Ed25519PrivateKey, batch: SignedFile) -> SignedFile:
    """The station's signed results file: every record of ``batch`` printed."""
    results = [
        p.CardResult(
            result_id=uuid.uuid4().hex,
            record_id=r["signed"]["record"]["record_id"],
            lease_id=r["lease_id"],
            outcome="printed",
            started_at=NOW,
            finished_at=NOW,
        )
        for r in batch.body["records"]
    ]
    body = ResultsBody(station_id="t-01", exported_at=NOW, results=results)
    return sign_body(body, station_key, station_key_id("t-01"))


def test_a_batch_leases_its_records_for_days(queue: QueueDB, tmp_path: Path) -> None:
    """Three of five records go to the batch's station for two days: another station
    leases only the other two, and the station's renewal keeps the days granted."""
    queue.add_records(signed_records(5, KEY, seed=4, now=NOW))
    key_id, key = load_or_create_key(tmp_path / "keys")
    batch = create_batch(queue, key, key_id, station_id="t-01", count=3, days=2)
    batched = {r["signed"]["record"]["record_id"] for r in batch.body["records"]}
    assert len(batched) == 3
    other = queue.lease(p.LeaseRequest(station_id="t-02", max=5), 600.0, (key_id, key))
    assert len(other.records) == 2
    assert batched.isdisjoint(r.signed.record_id() for r in other.records)
    lease_ids = [r["lease_id"] for r in batch.body["records"]]
    renewed = queue.renew(p.RenewRequest(station_id="t-01", lease_ids=lease_ids), 600.0)
    assert set(renewed.renewed) == set(lease_ids)
    assert all(ttl > 1.9 * 86400 for ttl in renewed.renewed.values())


def test_a_results_file_counts_once_however_often_ingested(queue: QueueDB, tmp_path: Path) -> None:
    """A results file verifies only against the station's registered key; ingested twice,
    its three printed cards are counted once and the second ingest reports them known."""
    queue.add_records(signed_records(3, KEY, seed=5, now=NOW))
    key_id, key = load_or_create_key(tmp_path / "keys")
    batch = create_batch(queue, key, key_id, station_id="t-01", count=3, days=2)
    station_key = Ed25519PrivateKey.generate()
    signed = results_file(station_key, batch)
    with pytest.raises(BatchFileError, match="no results key registered"):
        ingest_results(queue, signed)
    register_station_key(queue, "t-01", raw_b64(station_key.public_key()))
    first, again = ingest_results(queue, signed), ingest_results(queue, signed)
    assert (first.new, first.duplicates) == (3, 0)
    assert (again.new, again.duplicates) == (0, 3)
    summary = queue.summary()
    assert (summary.results, summary.printed, summary.printed_twice) == (3, 3, [])


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_central_batch_commands(parser.add_subparsers(dest="central_command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_operator_verbs_take_a_postgresql_dsn(
    pg: PgCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`station central batch register|create|ingest --db postgresql://…` register the
    station's keys, issue a sealed batch and ingest its results file, each one line."""
    dsn = pg.new_database()
    seeder = open_queue(dsn)
    seeder.add_records(signed_records(2, KEY, seed=6, now=NOW))
    seeder.close()
    station_key = Ed25519PrivateKey.generate()
    (tmp_path / "t-01.pub").write_text(raw_b64(station_key.public_key()))
    (tmp_path / "t-01.box").write_text(raw_b64(X25519PrivateKey.generate().public_key()))
    register = ["batch", "register", "--db", dsn, "--station", "t-01"]
    keys = ["--key", str(tmp_path / "t-01.pub"), "--batch-key", str(tmp_path / "t-01.box")]
    assert _cli(*register, *keys) == 0
    assert "results and batch key registered" in capsys.readouterr().out
    out = tmp_path / "b.json"
    create = ["batch", "create", "--db", dsn, "--key-dir", str(tmp_path / "keys")]
    assert _cli(*create, "--station", "t-01", "--count", "5", "--days", "2", "--out", str(out)) == 0
    assert "2 records for station t-01" in capsys.readouterr().out
    # The sealed file opens only at the station; the centre's ledger has the leases.
    queue = open_queue(dsn)
    try:
        leased = queue.summary().leased
        with queue.transaction() as c:
            rows = c.execute("SELECT lease_id, record_id FROM leases").fetchall()
    finally:
        queue.close()
    assert leased == 2
    batch = SignedFile(
        body={
            "records": [
                {"lease_id": lid, "signed": {"record": {"record_id": rid}}} for lid, rid in rows
            ]
        },
        key_id="unused",
        signature="unused",
    )
    results = tmp_path / "r.json"
    results.write_text(results_file(station_key, batch).model_dump_json())
    assert read_signed(results).claimed("station_id") == "t-01"
    assert _cli("batch", "ingest", "--db", dsn, str(results)) == 0
    assert "2 results, 2 new, 0 already known" in capsys.readouterr().out
