"""The reference queue server over real loopback HTTP: leasing, renewal, results, errors."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from central.queue_schema import MIGRATIONS
from central.seed import signed_records
from central.server import CentralServer
from station.records import SignedRecord
from tests.support.queue import KEY, NOW, FakeClock, lease, post_results, result, signed
from tests.support.serve import serve_cli


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., CentralServer]]:
    started: list[CentralServer] = []

    def make(**kwargs: Any) -> CentralServer:
        server = CentralServer(tmp_path / "central.db", **kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., CentralServer], clock: FakeClock) -> CentralServer:
    # The bare lease rule (expired means free); holds have their own tests.
    return make_server(lease_ttl_s=60.0, clock=clock, lease_hold_s=0.0)


@pytest.fixture
def http(server: CentralServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        yield client


def test_lease_order_urgent_then_first_then_earliest(
    server: CentralServer, http: httpx.Client
) -> None:
    """Urgent records come first, then first cards before reprints, each by earliest enrolment."""
    day = dt.timedelta(days=1)
    server.add_records(
        [
            signed(1, kind="first", urgent=None, enrolled_at=(NOW - 10 * day).isoformat()),
            signed(2, kind="reprint", urgent=None, enrolled_at=(NOW - 90 * day).isoformat()),
            signed(3, kind="first", urgent="medical", enrolled_at=(NOW - 1 * day).isoformat()),
            signed(4, kind="first", urgent=None, enrolled_at=(NOW - 30 * day).isoformat()),
            signed(5, kind="reprint", urgent="passport", enrolled_at=(NOW - 5 * day).isoformat()),
            signed(6, kind="reprint", urgent=None, enrolled_at=(NOW - 20 * day).isoformat()),
        ]
    )
    first = [rid for rid, _ in lease(http, "s1", 2)]
    rest = [rid for rid, _ in lease(http, "s1", 10)]
    assert first == ["PRR-000003", "PRR-000005"]
    assert rest == ["PRR-000004", "PRR-000001", "PRR-000002", "PRR-000006"]


def test_lease_carries_signed_record_and_ttl(server: CentralServer, http: httpx.Client) -> None:
    """A lease answers the stored SignedRecord unchanged, a fresh lease id and the ttl."""
    stored = signed(1)
    server.add_records([stored])
    resp = http.post("/v1/leases", json={"station_id": "s1", "max": 5}).json()
    (leased,) = resp["records"]
    assert SignedRecord.model_validate(leased["signed"]) == stored
    assert leased["ttl_s"] == 60.0
    assert len(leased["lease_id"]) == 32


def test_no_double_lease_while_active(server: CentralServer, http: httpx.Client) -> None:
    """A record leased to one station is not handed out again while its lease is active."""
    server.add_records(signed(i) for i in range(1, 4))
    assert len(lease(http, "s1", 10)) == 3
    assert lease(http, "s2", 10) == []
    assert lease(http, "s1", 10) == []
    assert server.summary().leased == 3


def test_expired_lease_can_be_leased_by_another(
    make_server: Callable[..., CentralServer],
) -> None:
    """Once a (tiny) lease ttl has passed, another station can lease the record."""
    server = make_server(lease_ttl_s=0.05, lease_hold_s=0.0)
    server.add_records([signed(1)])
    with httpx.Client(base_url=server.url) as http:
        [(rid, old)] = lease(http, "s1", 1)
        threading.Event().wait(0.1)
        [(rid2, new)] = lease(http, "s2", 1)
        renew = http.post("/v1/leases/renew", json={"station_id": "s1", "lease_ids": [old]})
    assert rid2 == rid
    assert new != old
    assert renew.json() == {"renewed": {}, "lost": [old]}


def test_renew_extends_own_active_leases_and_lists_lost(
    server: CentralServer, http: httpx.Client, clock: FakeClock
) -> None:
    """Renew extends the station's active leases; foreign, unknown or expired ones are lost."""
    server.add_records(signed(i) for i in range(1, 3))
    [(_, l1), (r2, l2)] = lease(http, "s1", 2)
    clock.t += 50
    resp = http.post("/v1/leases/renew", json={"station_id": "s1", "lease_ids": [l1, "nope"]})
    assert resp.json() == {"renewed": {l1: 60.0}, "lost": ["nope"]}
    foreign = http.post("/v1/leases/renew", json={"station_id": "s2", "lease_ids": [l2]})
    assert foreign.json()["lost"] == [l2]
    clock.t += 30  # l2 expired (80 s), l1 renewed at 50 s is good until 110 s
    assert [rid for rid, _ in lease(http, "s2", 5)] == [r2]
    again = http.post("/v1/leases/renew", json={"station_id": "s1", "lease_ids": [l1, l2]})
    assert again.json() == {"renewed": {l1: 60.0}, "lost": [l2]}


def test_release_returns_record_to_ready(server: CentralServer, http: httpx.Client) -> None:
    """Releasing a station's active lease makes the record leasable again at once."""
    server.add_records(signed(i) for i in range(1, 3))
    [(r1, l1), (_, l2)] = lease(http, "s1", 2)
    wrong = http.post(
        "/v1/leases/release", json={"station_id": "s2", "lease_ids": [l1], "reason": "other"}
    )
    assert wrong.json() == {"released": []}
    resp = http.post(
        "/v1/leases/release",
        json={"station_id": "s1", "lease_ids": [l1, "unknown"], "reason": "no_blanks"},
    )
    assert resp.json() == {"released": [l1]}
    summary = server.summary()
    assert (summary.ready, summary.leased) == (1, 1)
    assert [rid for rid, _ in lease(http, "s2", 5)] == [r1]
    renew = http.post("/v1/leases/renew", json={"station_id": "s1", "lease_ids": [l1, l2]})
    assert renew.json()["lost"] == [l1]


def test_result_idempotent_by_result_id(server: CentralServer, http: httpx.Client) -> None:
    """The same result delivered twice is acknowledged twice but applied and counted once."""
    server.add_records([signed(1)])
    [(rid, lid)] = lease(http, "s1", 1)
    res = result(rid, lid, "printed", result_id="r-1")
    assert post_results(http, "s1", res) == ["r-1"]
    assert post_results(http, "s1", res, res) == ["r-1", "r-1"]
    summary = server.summary()
    assert (summary.results, summary.duplicate_results) == (1, 2)
    assert summary.printed == 1
    assert summary.printed_twice == []
    assert [r.result_id for r in server.results_for(rid)] == ["r-1"]


def test_two_printed_results_show_in_printed_twice(
    server: CentralServer, http: httpx.Client, clock: FakeClock
) -> None:
    """Two distinct 'printed' results for one record, each from a station it was leased
    to (the first lease expired meanwhile), are flagged in printed_twice."""
    server.add_records(signed(i) for i in range(1, 3))
    [(rid, lid), (other, olid)] = lease(http, "s1", 2)
    post_results(http, "s1", result(other, olid, "printed"))
    clock.t += 61.0  # s1's lease on rid expired; s2 leases it and prints it
    [(again, lid2)] = lease(http, "s2", 1)
    assert again == rid
    post_results(http, "s2", result(rid, lid2, "printed"))
    assert server.summary().printed_twice == []
    post_results(http, "s1", result(rid, lid, "printed"))  # the late first card
    assert server.summary().printed_twice == [rid]


def test_outcomes_change_record_state(
    server: CentralServer, http: httpx.Client, clock: FakeClock
) -> None:
    """Printed and failed end a record, deferred returns it, spoiled leaves it leased."""
    server.add_records(signed(i) for i in range(1, 5))
    leased = dict(lease(http, "s1", 4))
    ids = sorted(leased)
    post_results(
        http,
        "s1",
        result(ids[0], leased[ids[0]], "spoiled"),
        result(ids[1], leased[ids[1]], "failed"),
        result(ids[2], leased[ids[2]], "deferred"),
    )
    assert [server.record_state(i) for i in ids[:3]] == ["leased", "failed", "ready"]
    clock.t += 3600  # lease of ids[3] expired: the card still exists
    post_results(http, "s1", result(ids[3], leased[ids[3]], "printed"))
    assert server.record_state(ids[3]) == "printed"
    assert sorted(rid for rid, _ in lease(http, "s2", 10)) == [ids[0], ids[2]]
    summary = server.summary()
    assert (summary.records, summary.printed, summary.failed, summary.results) == (4, 1, 1, 4)


def test_heartbeat_stored_and_counted(server: CentralServer, http: httpx.Client) -> None:
    """Heartbeats are answered with the server time, the last one kept per station."""
    body = {
        "station_id": "s1",
        "version": "0.1.0",
        "printer_state": "ready",
        "blanks": 40,
        "buffer": 3,
        "outbox": 0,
    }
    for blanks in (40, 39):
        resp = http.post("/v1/heartbeat", json={**body, "blanks": blanks})
        assert resp.status_code == 200
        assert dt.datetime.fromisoformat(resp.json()["server_time"]).tzinfo is not None
    assert server.summary().heartbeats == 2
    last = server.db.last_heartbeat("s1")
    assert last is not None
    assert last.blanks == 39


@pytest.mark.parametrize(
    ("path", "content", "needle"),
    [
        ("/v1/leases", b"{not json", "invalid JSON"),
        ("/v1/leases", b'{"station_id": "s1"}', "max"),
        ("/v1/leases", b'{"station_id": "s1", "max": -1}', "max"),
        ("/v1/leases", b'{"station_id": "s1", "max": 1, "extra": 2}', "extra"),
        ("/v1/results", b'{"station_id": "s1", "results": [{"result_id": "x"}]}', "results.0"),
        ("/v1/heartbeat", b"[]", "Heartbeat"),
    ],
)
def test_bad_body_is_400_naming_the_problem(
    http: httpx.Client, path: str, content: bytes, needle: str
) -> None:
    """Invalid JSON or a body the protocol model refuses answers 400 with an error naming it."""
    resp = http.post(path, content=content, headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert needle in resp.json()["error"]


def test_unknown_path_is_404(http: httpx.Client) -> None:
    """Unknown endpoints (and wrong methods) answer 404 with a JSON error."""
    assert http.get("/v1/nothing").status_code == 404
    assert http.get("/v1/leases").status_code == 404
    assert "error" in http.post("/v2/leases", json={}).json()


def test_summary_endpoint_matches_helper(server: CentralServer, http: httpx.Client) -> None:
    """GET /v1/summary answers the same counts as server.summary()."""
    server.add_records(signed(i) for i in range(1, 4))
    lease(http, "s1", 1)
    body = http.get("/v1/summary").json()
    assert body == server.summary().model_dump(mode="json")
    assert (body["records"], body["ready"], body["leased"]) == (3, 2, 1)


def test_fail_next_answers_5xx_without_state(server: CentralServer, http: httpx.Client) -> None:
    """fail_next(n) makes the next n requests fail with 5xx and leaves the queue untouched."""
    server.add_records([signed(1)])
    server.fail_next(2, status=502)
    for _ in range(2):
        resp = http.post("/v1/leases", json={"station_id": "s1", "max": 1})
        assert resp.status_code == 502
    assert server.summary().leased == 0
    assert len(lease(http, "s1", 1)) == 1


def test_state_survives_restart(make_server: Callable[..., CentralServer]) -> None:
    """Records, leases and results persist in the DB across a server restart."""
    first = make_server()
    first.add_records(signed(i) for i in range(1, 3))
    with httpx.Client(base_url=first.url) as http:
        [(rid, lid), _] = lease(http, "s1", 2)
        post_results(http, "s1", result(rid, lid, "printed", result_id="r-9"))
    first.stop()
    second = make_server()
    with httpx.Client(base_url=second.url) as http:
        assert post_results(http, "s1", result(rid, lid, "printed", result_id="r-9")) == ["r-9"]
    summary = second.summary()
    assert (summary.printed, summary.leased, summary.duplicate_results) == (1, 1, 1)
    assert second.db.schema_version == len(MIGRATIONS)


def test_concurrent_leasing_never_double_hands(
    make_server: Callable[..., CentralServer],
) -> None:
    """Four stations leasing at once never receive the same record twice."""
    server = make_server()
    server.add_records(signed_records(60, KEY, seed=3, now=NOW))
    got: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def station(name: str) -> None:
        mine: list[str] = []
        try:
            with httpx.Client(base_url=server.url, timeout=10.0) as http:
                while batch := lease(http, name, 3):
                    mine += [rid for rid, _ in batch]
        except (httpx.HTTPError, AssertionError) as exc:
            errors.append(exc)
        got[name] = mine

    threads = [threading.Thread(target=station, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    every = [rid for ids in got.values() for rid in ids]
    assert len(every) == len(set(every)) == 60
    assert server.summary().leased == 60


def test_cli_serve_prints_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`central serve` prints "listening on URL" first, serves, and exits 0 on SIGTERM."""
    argv = ["--db", str(tmp_path / "c.db"), "--port", "0", "--key-dir", str(tmp_path / "keys")]
    with serve_cli(argv) as (proc, url):
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/v1/summary", timeout=10.0).json()["records"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert (tmp_path / "keys" / "central.pub").exists()


def test_a_full_fleet_heartbeat_is_kept_and_a_bad_class_count_named(
    server: CentralServer, http: httpx.Client
) -> None:
    """A heartbeat with every fleet field is stored as sent; a negative spoiled count is
    refused naming the field, and an old station's short heartbeat keeps None there."""
    body = {
        "station_id": "s2",
        "version": "0.2.0",
        "printer_state": "ready",
        "blanks": 9,
        "buffer": 1,
        "outbox": 2,
        "state": "paused",
        "message_code": "out of blanks",
        "last_error_code": "jam",
        "last_error_at": "2026-12-01T08:00:00Z",
        "spoiled_today": {"failed print": 1},
        "printed_total": 40,
        "spoiled_total": {"failed print": 3, "failed encode": 1},
        "disk_free_mb": 812.5,
    }
    assert http.post("/v1/heartbeat", json=body).status_code == 200
    last = server.db.last_heartbeat("s2")
    assert last is not None
    assert (last.state, last.printed_total, last.spoiled_total, last.disk_free_mb) == (
        "paused",
        40,
        {"failed print": 3, "failed encode": 1},
        812.5,
    )
    resp = http.post("/v1/heartbeat", json={**body, "spoiled_today": {"failed print": -1}})
    assert resp.status_code == 400
    assert "spoiled_today" in resp.json()["error"]
    old = {
        k: body[k] for k in ("station_id", "version", "printer_state", "blanks", "buffer", "outbox")
    }
    assert http.post("/v1/heartbeat", json=old | {"station_id": "s3"}).status_code == 200
    short = server.db.last_heartbeat("s3")
    assert short is not None
    assert (short.state, short.spoiled_total, short.disk_free_mb) == (None, None, None)
