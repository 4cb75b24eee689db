"""Expired leases are held for their station: a station killed or cut off right after a
card may have printed it without being able to say so, so the centre does not hand the
record to another station until the holder has reported every result it has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from central.server import CentralServer
from tests.support.queue import FakeClock, lease, post_results, result, signed

TTL = 60.0
HOLD = 3600.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[CentralServer]:
    """The reference server on each storage engine."""
    db = (
        request.getfixturevalue("pg").new_database()
        if request.param == "postgresql"
        else tmp_path / "c.db"
    )
    s = CentralServer(
        db, lease_ttl_s=TTL, lease_hold_s=HOLD, clock=clock, key_dir=tmp_path / "keys"
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def http(server: CentralServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        yield client


def beat(station: str, outbox: int) -> dict[str, Any]:
    return {
        "station_id": station,
        "version": "t",
        "printer_state": "ready",
        "blanks": 5,
        "buffer": 0,
        "outbox": outbox,
    }


def test_expired_lease_is_held_until_its_station_reports_an_empty_outbox(
    server: CentralServer, http: httpx.Client, clock: FakeClock
) -> None:
    """After expiry nobody else gets the record while the holder still has results to
    send; its heartbeat with an empty outbox frees it for every station."""
    server.add_records([signed(1)])
    [(rid, _)] = lease(http, "s1", 1)
    clock.t += TTL + 1
    assert lease(http, "s2", 5) == []
    assert server.record_state(rid) == "leased"
    http.post("/v1/heartbeat", json=beat("s1", outbox=2))
    assert lease(http, "s2", 5) == []
    http.post("/v1/heartbeat", json=beat("s1", outbox=0))
    assert [r for r, _ in lease(http, "s2", 5)] == [rid]


def test_result_arriving_late_means_no_second_card(
    server: CentralServer, http: httpx.Client, clock: FakeClock
) -> None:
    """A station back after its lease expired delivers the printed result of the record it
    held: the record is printed, and never leased to the other station."""
    server.add_records([signed(1)])
    [(rid, lid)] = lease(http, "s1", 1)
    clock.t += TTL * 5
    assert lease(http, "s2", 5) == []
    post_results(http, "s1", result(rid, lid, "printed"))
    http.post("/v1/heartbeat", json=beat("s1", outbox=0))
    assert lease(http, "s2", 5) == []
    summary = server.summary()
    assert (summary.printed, summary.printed_twice) == (1, [])


def test_holder_renewing_revives_an_expired_lease(
    server: CentralServer, http: httpx.Client, clock: FakeClock
) -> None:
    """The holder's renewal of an expired lease that nobody took renews it again."""
    server.add_records([signed(1)])
    [(_, lid)] = lease(http, "s1", 1)
    clock.t += TTL + 30
    resp = http.post("/v1/leases/renew", json={"station_id": "s1", "lease_ids": [lid]}).json()
    assert resp == {"renewed": {lid: TTL}, "lost": []}
    http.post("/v1/heartbeat", json=beat("s1", outbox=0))  # revived: not expired, not freed
    assert lease(http, "s2", 5) == []


def test_holder_may_lease_its_held_record_again(
    server: CentralServer, http: httpx.Client, clock: FakeClock
) -> None:
    """A station asking for records gets back one held for it, with a new lease."""
    server.add_records([signed(1)])
    [(rid, old)] = lease(http, "s1", 1)
    clock.t += TTL + 1
    [(again, new)] = lease(http, "s1", 5)
    assert (again, new != old) == (rid, True)


def test_release_frees_a_held_record(
    server: CentralServer, http: httpx.Client, clock: FakeClock
) -> None:
    """A holder that hands an expired lease back (unprinted) frees the record at once."""
    server.add_records([signed(1)])
    [(rid, lid)] = lease(http, "s1", 1)
    clock.t += TTL + 1
    resp = http.post(
        "/v1/leases/release", json={"station_id": "s1", "lease_ids": [lid], "reason": "expired"}
    )
    assert resp.json() == {"released": [lid]}
    assert [r for r, _ in lease(http, "s2", 5)] == [rid]


def test_hold_ends_after_lease_hold_s(
    server: CentralServer, http: httpx.Client, clock: FakeClock
) -> None:
    """A station never heard from again keeps its records only for lease_hold_s."""
    server.add_records([signed(1)])
    [(rid, _)] = lease(http, "s1", 1)
    clock.t += TTL + HOLD - 1
    assert lease(http, "s2", 5) == []
    clock.t += 2
    assert [r for r, _ in lease(http, "s2", 5)] == [rid]
    assert server.summary().printed_twice == []
