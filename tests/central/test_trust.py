"""Trust at the centre: over real mutual TLS on loopback a station speaks only as the
station its certificate names, results count only from the lease holder, every refusal
is in the centre's audit, and bodies are bounded."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.seed import make_record
from central.server import MAX_BODY, CentralServer
from central.tls import ServerTls
from station.config import load_config
from station.crypto import bind_data_key
from station.link.client import TlsSettings
from station.records import sign_record
from station.store import buffer
from station.store.db import connect, migrate, transaction
from tests.support.harness import Central, db_counts, running_station, station_config, wait_for
from tests.support.pki import Pki, client_for, make_pki

KEY = Ed25519PrivateKey.generate()
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(tmp_path: Path, pki: Pki) -> Iterator[CentralServer]:
    """The reference server behind mutual TLS, short leases, expired ones held a day."""
    s = CentralServer(
        tmp_path / "c.db",
        lease_ttl_s=0.3,
        lease_hold_s=86400.0,
        tls=ServerTls(pki.server_cert, pki.server_key, pki.ca),
    )
    s.add_records(
        sign_record(make_record(i, seed=3, now=NOW), KEY, "central-1") for i in range(1, 4)
    )
    with s:
        yield s


@pytest.fixture
def as_station(server: CentralServer, pki: Pki) -> Iterator[Callable[[str], httpx.Client]]:
    """An HTTPS client holding the certificate of the given station id."""
    opened: list[httpx.Client] = []

    def make(station_id: str, *, san_only: bool = False) -> httpx.Client:
        cert, key = (
            (pki.client_cert, pki.client_key)
            if station_id == "t-01" and not san_only
            else client_for(pki, station_id, san_only=san_only)
        )
        ctx = TlsSettings(ca_file=pki.ca, client_cert=cert, client_key=key).context()
        client = httpx.Client(base_url=server.url, verify=ctx, timeout=10.0)
        opened.append(client)
        return client

    yield make
    for c in opened:
        c.close()


def beat(station: str, outbox: int = 0) -> dict[str, Any]:
    return {
        "station_id": station,
        "version": "t",
        "printer_state": "ready",
        "blanks": 5,
        "buffer": 0,
        "outbox": outbox,
    }


def result(record_id: str, lease_id: str, outcome: str) -> dict[str, Any]:
    return {
        "result_id": uuid.uuid4().hex,
        "record_id": record_id,
        "lease_id": lease_id,
        "outcome": outcome,
        "card_serial": None,
        "started_at": NOW.isoformat(),
        "finished_at": NOW.isoformat(),
        "reason": None,
    }


def lease(http: httpx.Client, station: str, n: int = 1) -> list[tuple[str, str]]:
    resp = http.post("/v1/leases", json={"station_id": station, "max": n})
    assert resp.status_code == 200, resp.text
    return [(r["signed"]["record"]["record_id"], r["lease_id"]) for r in resp.json()["records"]]


def test_a_station_speaks_only_as_the_station_its_certificate_names(
    server: CentralServer, as_station: Callable[..., httpx.Client]
) -> None:
    """With t-01's certificate, leasing, renewing, releasing, reporting and heartbeating as
    t-02 is refused 403 naming the station, and each attempt is in the centre's audit."""
    http = as_station("t-01")
    [(rid, lid)] = lease(http, "t-01")
    bodies = {
        "/v1/leases": {"station_id": "t-02", "max": 2},
        "/v1/leases/renew": {"station_id": "t-02", "lease_ids": [lid]},
        "/v1/leases/release": {"station_id": "t-02", "lease_ids": [lid], "reason": "other"},
        "/v1/results": {"station_id": "t-02", "results": [result(rid, lid, "failed")]},
        "/v1/heartbeat": beat("t-02"),
    }
    for path, body in bodies.items():
        resp = http.post(path, json=body)
        assert resp.status_code == 403, path
        assert resp.json()["error"] == "the client certificate does not name station 't-02'"
    audit = server.db.audit("t-02")
    assert [a.endpoint for a in audit] == list(bodies)
    assert {a.peer for a in audit} == {"t-01"}
    assert server.record_state(rid) == "leased"
    assert server.results_for(rid) == []
    assert server.summary().leased == 1  # nothing more was leased as t-02


def test_a_subject_alt_name_names_the_station(
    server: CentralServer, as_station: Callable[..., httpx.Client]
) -> None:
    """A certificate naming the station only as a DNS subject alternative name leases as
    that station; as another it is refused."""
    http = as_station("t-03", san_only=True)
    assert len(lease(http, "t-03")) == 1
    assert http.post("/v1/leases", json={"station_id": "t-04", "max": 1}).status_code == 403


def test_forged_heartbeat_does_not_free_a_record_held_for_another_station(
    server: CentralServer, as_station: Callable[..., httpx.Client]
) -> None:
    """t-02 claiming t-01's empty outbox is refused; the record stays held for t-01 until
    t-01 itself says every result is in."""
    a, b = as_station("t-01"), as_station("t-02")
    [(rid, _)] = lease(a, "t-01")
    time.sleep(0.4)  # t-01's lease expired: held for it
    assert b.post("/v1/heartbeat", json=beat("t-01")).status_code == 403
    assert server.record_state(rid) == "leased"
    assert rid not in [r for r, _ in lease(b, "t-02", 3)]
    assert a.post("/v1/heartbeat", json=beat("t-01")).status_code == 200
    assert server.record_state(rid) == "ready"


def test_results_count_only_from_the_lease_holder(
    server: CentralServer, as_station: Callable[..., httpx.Client]
) -> None:
    """A printed result for a record never leased, a failed one for a record leased to
    another station and a failed one after the card was printed are each refused with
    the reason, change nothing and are audited; the holder's own result counts."""
    a, b = as_station("t-01"), as_station("t-02")
    [(rid, lid)] = lease(a, "t-01")
    never = result("PRR-000003", uuid.uuid4().hex, "printed")
    foreign = result(rid, lid, "failed")
    resp = b.post("/v1/results", json={"station_id": "t-02", "results": [never, foreign]})
    assert resp.status_code == 200
    answer = resp.json()
    assert answer["acked"] == []
    assert (
        "was never granted: record 'PRR-000003' not leased" in answer["refused"][never["result_id"]]
    )
    assert "is held by another station, not 't-02'" in answer["refused"][foreign["result_id"]]
    assert (server.record_state(rid), server.record_state("PRR-000003")) == ("leased", "ready")
    assert server.summary().results == 0

    printed = result(rid, lid, "printed")
    late_failed = result(rid, lid, "failed")
    resp = a.post("/v1/results", json={"station_id": "t-01", "results": [printed, late_failed]})
    assert resp.json()["acked"] == [printed["result_id"]]
    assert (
        "is printed: a failed result would contradict it"
        in resp.json()["refused"][late_failed["result_id"]]
    )
    assert [r.outcome for r in server.results_for(rid)] == ["printed"]
    reasons = [a.reason for a in server.db.audit()]
    assert len(reasons) == 3
    assert all(r.startswith("result ") for r in reasons)


def test_renew_and_release_only_by_the_lease_holder(
    server: CentralServer, as_station: Callable[..., httpx.Client]
) -> None:
    """t-02, with its own certificate, cannot renew or release t-01's lease: answered lost
    and not released, the record stays t-01's, and both attempts are audited."""
    a, b = as_station("t-01"), as_station("t-02")
    [(rid, lid)] = lease(a, "t-01")
    renew = b.post("/v1/leases/renew", json={"station_id": "t-02", "lease_ids": [lid]})
    assert (renew.json()["renewed"], renew.json()["lost"]) == ({}, [lid])
    release = b.post(
        "/v1/leases/release", json={"station_id": "t-02", "lease_ids": [lid], "reason": "other"}
    )
    assert release.json()["released"] == []
    assert rid not in [r for r, _ in lease(b, "t-02", 3)]
    audit = server.db.audit("t-02")
    assert [x.endpoint for x in audit] == ["/v1/leases/renew", "/v1/leases/release"]
    assert {x.reason for x in audit} == {f"lease {lid!r} is held by another station, not 't-02'"}
    assert (
        a.post("/v1/leases/renew", json={"station_id": "t-01", "lease_ids": [lid]}).json()["lost"]
        == []
    )


def test_bodies_are_bounded_before_and_after_gzip(
    server: CentralServer, as_station: Callable[..., httpx.Client]
) -> None:
    """A body over the limit, a gzip body expanding past it (a bomb of a few KB), a body in
    an unknown encoding and JSON nested past the parser's depth are refused with a clear
    status; a normal gzip body is served."""
    http = as_station("t-01")
    big = http.post("/v1/heartbeat", content=b" " * (MAX_BODY + 1))
    assert (big.status_code, big.json()["error"]) == (
        413,
        f"body of {MAX_BODY + 1} bytes: at most {MAX_BODY} allowed",
    )
    bomb = gzip.compress(b"[" + b" " * (MAX_BODY * 2) + b"]")
    assert len(bomb) < 64 * 1024
    resp = http.post("/v1/heartbeat", content=bomb, headers={"Content-Encoding": "gzip"})
    assert resp.status_code == 413
    assert resp.json()["error"] == f"gzip body expands past the {MAX_BODY} bytes allowed"
    resp = http.post("/v1/heartbeat", content=b"{}", headers={"Content-Encoding": "br"})
    assert resp.status_code == 415
    resp = http.post("/v1/heartbeat", content=b"[" * 100_000 + b"]" * 100_000)
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid JSON: nested too deep")
    ok = http.post(
        "/v1/heartbeat",
        content=gzip.compress(json.dumps(beat("t-01")).encode()),
        headers={"Content-Encoding": "gzip"},
    )
    assert ok.status_code == 200, ok.text


def test_station_settles_a_result_the_centre_refuses(tmp_path: Path, central: Central) -> None:
    """A result the centre will never take (its lease was never granted) leaves the
    station's outbox with the centre's reason in the station's audit, instead of
    blocking the outbox; the centre audits it."""
    config = station_config(tmp_path, central)
    cfg = load_config(config)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    conn = connect(cfg.db_path)
    try:
        migrate(conn)

        def bogus(c: Any) -> None:
            bind_data_key(c, cfg.key_path)
            lease = buffer.Lease("PRR-000777", "not-a-lease", time.time() + 600, 0.0, "b")
            buffer.add_record(c, lease, kind="first", urgent=False, enrolled_at="", payload=b"")
            buffer.fail_record(c, "PRR-000777", "test")

        transaction(conn, bogus)
    finally:
        conn.close()
    assert db_counts(cfg.db_path)["outbox"] == 1
    with running_station(config):
        wait_for("the refused result settled", lambda: db_counts(cfg.db_path)["outbox"] == 0)
    conn = connect(cfg.db_path, readonly=True)
    try:
        details = [
            r[0] for r in conn.execute("SELECT detail FROM audit WHERE event='result_refused'")
        ]
    finally:
        conn.close()
    assert len(details) == 1
    assert "'not-a-lease' was never granted" in details[0]
    assert [a.station_id for a in central.server.db.audit()] == ["t-01"]
