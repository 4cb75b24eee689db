"""Deliveries the station refuses never touch what it holds: a forged twin (the id of a
good record, a bad signature) leaves the good record to print, and a record never gets
two contradicting results."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.batch import import_batch
from station.config import StationConfig, load_config
from station.crypto import bind_data_key
from station.daemon import trusted_keys
from station.records import SignedRecord, sign_record
from station.store import buffer
from station.store.db import connect, migrate, transaction
from station.store.ingest import buffer_signed
from tests.support.batches import issue, opened
from tests.support.harness import (
    Central,
    db_counts,
    receive,
    running_station,
    station_config,
    wait_for,
)


def twin(central: Central, record_id: str) -> SignedRecord:
    """The centre's record ``record_id`` with another name, signed by a key nobody trusts
    under the centre's key id."""
    conn = sqlite3.connect(central.db)
    try:
        [(signed_json,)] = conn.execute(
            "SELECT signed_json FROM records WHERE record_id=?", (record_id,)
        ).fetchall()
    finally:
        conn.close()
    record = json.loads(signed_json)["record"]
    record["person"]["name"] = "SOMEONE ELSE"
    return sign_record(record, Ed25519PrivateKey.generate(), "central-1")


def deliver(cfg: StationConfig, signed: SignedRecord, batch: Path) -> bool:
    """Hand ``signed`` to the station's intake under the lease and grant the station holds
    for that record (copied from the batch, as an attacker who saw it could)."""
    body = opened(batch, cfg)
    [item] = [i for i in body.records if i.signed.record_id() == signed.record_id()]
    conn = connect(cfg.db_path)
    try:
        migrate(conn)
        sealing = transaction(conn, lambda c: bind_data_key(c, cfg.key_path))
        lease = buffer.Lease(
            signed.record_id(), item.lease_id, time.time() + 600, time.monotonic() + 600, "boot"
        )
        return transaction(
            conn,
            lambda c: buffer_signed(
                c,
                signed,
                lease,
                trusted_keys(cfg),
                sealing,
                grant=item.grant,
                station_id=cfg.station_id,
                batch_id=body.batch_id,
            ),
        )
    finally:
        conn.close()


def status_of(cfg: StationConfig, record_id: str) -> str:
    conn = connect(cfg.db_path, readonly=True)
    try:
        return str(
            conn.execute("SELECT status FROM records WHERE record_id=?", (record_id,)).fetchone()[0]
        )
    finally:
        conn.close()


def test_forged_twin_never_fails_the_good_record(tmp_path: Path, central: Central) -> None:
    """A twin of a queued record is refused and the record stays queued and prints; a twin
    of a printed record is refused and adds no failed result; the centre holds exactly
    one printed result per record and no failed one."""
    central.seed(2)
    config = station_config(tmp_path, central)
    cfg = load_config(config)
    receive(config, 5)
    batch = issue(central, tmp_path / "b.json", cfg, count=2)
    assert import_batch(cfg, batch).buffered == 2

    assert deliver(cfg, twin(central, "PRR-000001"), batch) is False
    assert status_of(cfg, "PRR-000001") == "queued"
    assert db_counts(cfg.db_path)["outbox"] == 0
    conn = connect(cfg.db_path, readonly=True)
    try:
        assert [
            r[0] for r in conn.execute("SELECT detail FROM audit WHERE event='delivery_refused'")
        ] == ["signature does not verify"]
    finally:
        conn.close()

    with running_station(config):
        wait_for("both printed and reported", lambda: central.server.summary().printed == 2)
        wait_for("outbox drained", lambda: db_counts(cfg.db_path)["outbox"] == 0)
    assert deliver(cfg, twin(central, "PRR-000002"), batch) is False
    assert status_of(cfg, "PRR-000002") == "done"
    assert db_counts(cfg.db_path)["outbox"] == 0
    with running_station(config):
        time.sleep(0.5)
    for rid in ("PRR-000001", "PRR-000002"):
        assert [r.outcome for r in central.server.results_for(rid)] == ["printed"]
    assert central.server.summary().failed == 0


def test_fail_record_leaves_a_closed_record_alone(tmp_path: Path, central: Central) -> None:
    """Failing a record already failed adds no second result."""
    cfg = load_config(station_config(tmp_path, central))
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    conn = connect(cfg.db_path)
    try:
        migrate(conn)

        def twice(c: sqlite3.Connection) -> tuple[bool, bool]:
            lease = buffer.Lease("PRR-000005", "l-5", time.time() + 60, 0.0, "b")
            buffer.add_record(c, lease, kind="first", urgent=False, enrolled_at="", payload=b"")
            return buffer.fail_record(c, "PRR-000005", "bad"), buffer.fail_record(
                c, "PRR-000005", "again"
            )

        assert transaction(conn, twice) == (True, False)
    finally:
        conn.close()
    assert db_counts(cfg.db_path)["outbox"] == 1
