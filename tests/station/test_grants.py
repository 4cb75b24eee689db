"""A record prints only at the station the centre granted it to: a record leased to one
station and delivered to another, an expired grant, a grant for another record, lease or
batch, a forged or missing grant are each refused with the reason, and nothing is kept."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.seed import load_or_create_key
from station.batch import import_batch
from station.config import StationConfig, load_config
from station.crypto import bind_data_key
from station.daemon import trusted_keys
from station.grants import SignedGrant, sign_grant
from station.link.batchfile import sign_body
from station.link.protocol import LeasedRecord, LeaseResponse
from station.store import buffer
from station.store.db import connect, migrate, transaction
from station.store.ingest import buffer_signed
from tests.support.batches import issue, opened, seal
from tests.support.harness import Central, station_config


def leased(central: Central, station: str, n: int) -> list[LeasedRecord]:
    """What the centre answers ``station`` leasing ``n`` records over loopback HTTP."""
    with httpx.Client(base_url=central.server.url) as http:
        resp = http.post("/v1/leases", json={"station_id": station, "max": n})
    return LeaseResponse.model_validate_json(resp.content).records


def station(tmp_path: Path, central: Central, station_id: str) -> StationConfig:
    root = tmp_path / station_id
    root.mkdir()
    cfg = load_config(station_config(root, central, station_id=station_id))
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    return cfg


def deliver(cfg: StationConfig, item: LeasedRecord, grant: SignedGrant | None) -> bool:
    """Hand a leased record to ``cfg``'s intake as its sync thread does."""
    conn = connect(cfg.db_path)
    try:
        migrate(conn)
        sealing = transaction(conn, lambda c: bind_data_key(c, cfg.key_path))
        lease = buffer.Lease(
            item.signed.record_id(),
            item.lease_id,
            time.time() + item.ttl_s,
            time.monotonic() + item.ttl_s,
            "boot",
        )
        return transaction(
            conn,
            lambda c: buffer_signed(
                c,
                item.signed,
                lease,
                trusted_keys(cfg),
                sealing,
                grant=grant,
                station_id=cfg.station_id,
            ),
        )
    finally:
        conn.close()


def refusals(cfg: StationConfig) -> list[str]:
    conn = sqlite3.connect(cfg.db_path)
    try:
        rows = conn.execute(
            "SELECT detail FROM audit WHERE event='delivery_refused' ORDER BY rowid"
        ).fetchall()
        held = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        outbox = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    finally:
        conn.close()
    assert (held, outbox) == (0, 0)  # a refused grant keeps nothing and reports nothing
    return [r[0] for r in rows]


def test_record_leased_to_one_station_is_refused_at_another(
    tmp_path: Path, central: Central
) -> None:
    """Station t-01's lease answer replayed to t-02 buffers nothing there, naming both
    stations; the same answer is taken by t-01."""
    central.seed(2)
    answer = leased(central, "t-01", 2)
    a, b = station(tmp_path, central, "t-01"), station(tmp_path, central, "t-02")
    assert [deliver(b, item, item.grant) for item in answer] == [False, False]
    assert refusals(b) == ["granted to station 't-01', not to this station ('t-02')"] * 2
    assert [deliver(a, item, item.grant) for item in answer] == [True, True]


def test_expired_missing_forged_or_mismatched_grants_are_refused(
    tmp_path: Path, central: Central
) -> None:
    """A grant past its expiry (beyond the clock-skew allowance), none at all, one signed
    by an untrusted key, one altered, and one for another record or lease are refused."""
    central.seed(2)
    [item, other] = leased(central, "t-01", 2)
    cfg = station(tmp_path, central, "t-01")
    key_id, key = load_or_create_key(central.key_dir)
    rid = item.signed.record_id()

    def grant(**kw: object) -> SignedGrant:
        args: dict[str, object] = {
            "record_id": rid,
            "station_id": "t-01",
            "lease_id": item.lease_id,
            "expires_at": time.time() + 60,
        }
        args.update(kw)
        return sign_grant(key, key_id, **args)  # type: ignore[arg-type]

    assert item.grant is not None
    altered = item.grant.model_copy(update={"grant": {**item.grant.grant, "station_id": "t-09"}})
    cases = [
        grant(expires_at=time.time() - 301),
        None,
        sign_grant(
            Ed25519PrivateKey.generate(),
            "rogue-1",
            record_id=rid,
            station_id="t-01",
            lease_id=item.lease_id,
            expires_at=time.time() + 60,
        ),
        altered,
        grant(record_id=other.signed.record_id()),
        grant(lease_id=other.lease_id),
    ]
    assert [deliver(cfg, item, g) for g in cases] == [False] * len(cases)
    reasons = refusals(cfg)
    assert reasons[0].startswith("the grant expired at ")
    assert reasons[1:] == [
        "no grant from the centre came with the record: refused",
        "grant signed with key id 'rogue-1', which is not trusted",
        "the grant's signature does not verify: altered or forged",
        f"the grant is for record {other.signed.record_id()!r}, not {rid!r}",
        "the grant is for another lease than the one it came with",
    ]
    assert deliver(cfg, item, grant(expires_at=time.time() - 10))  # within the skew


def test_batch_record_granted_elsewhere_is_refused(tmp_path: Path, central: Central) -> None:
    """In a signed batch for t-01, a record whose grant belongs to another batch (or
    station) is refused with the reason; the other records are buffered."""
    central.seed(4)
    cfg = station(tmp_path, central, "t-01")
    first = opened(issue(central, tmp_path / "a.json", cfg, count=2), cfg)
    second = opened(issue(central, tmp_path / "b.json", cfg, count=2), cfg)
    moved = second.records[0].model_copy(update={"grant": first.records[0].grant})
    key_id, key = load_or_create_key(central.key_dir)
    seal(
        tmp_path / "c.json",
        sign_body(second.model_copy(update={"records": [moved, second.records[1]]}), key, key_id),
        cfg,
    )
    report = import_batch(cfg, tmp_path / "c.json")
    assert (report.buffered, report.refused) == (1, 1)
    conn = sqlite3.connect(cfg.db_path)
    try:
        [(detail,)] = conn.execute(
            "SELECT detail FROM audit WHERE event='delivery_refused'"
        ).fetchall()
    finally:
        conn.close()
    assert (
        detail == f"the grant is for record {first.records[0].signed.record_id()!r}, "
        f"not {second.records[0].signed.record_id()!r}"
    )


def test_lease_answer_carries_a_grant_per_record(central: Central) -> None:
    """Every record the centre leases carries a grant naming the station and the lease."""
    central.seed(3)
    for item in leased(central, "t-05", 3):
        assert item.grant is not None
        assert (item.grant.grant["station_id"], item.grant.grant["lease_id"]) == (
            "t-05",
            item.lease_id,
        )
