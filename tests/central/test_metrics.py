"""The centre's ``GET /metrics``: every station's latest heartbeat as Prometheus series,
on both servers, in a format promtool accepts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from central.asgi_server import AsgiServer
from central.server import CentralServer
from tests.support.promtool import needs_promtool, promtool

Centre = CentralServer | AsgiServer
SERVERS: dict[str, Callable[..., Centre]] = {"stdlib": CentralServer, "asgi": AsgiServer}


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


FULL = {
    "station_id": "s1",
    "version": "0.2.0",
    "printer_state": "ready",
    "blanks": 90,
    "buffer": 4,
    "outbox": 2,
    "cards_today": 7,
    "burn_rate_per_day": 30.0,
    "days_left": 3.0,
    "inspection": 1,
    "state": "printing",
    "message_code": "printing",
    "spoiled_today": {"failed print": 1},
    "printed_total": 400,
    "spoiled_total": {"failed print": 3, "chip dead/invalid": 1},
    "disk_free_mb": 100.0,
}
OLD = {
    "station_id": "s2",
    "version": "0.1.0",
    "printer_state": "ready",
    "blanks": 5,
    "buffer": 0,
    "outbox": 0,
}


@pytest.fixture(params=[*sorted(SERVERS), "asgi-postgresql"])
def centre(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Centre, Clock]]:
    """Each server on SQLite, and the ASGI server on PostgreSQL."""
    clock = Clock()
    server, _, engine = str(request.param).partition("-")
    db = request.getfixturevalue("pg").new_database() if engine else tmp_path / "c.db"
    with SERVERS[server](db, clock=clock) as centre:
        yield centre, clock


def scrape(url: str) -> tuple[httpx.Response, dict[tuple[str, tuple[Any, ...]], float]]:
    resp = httpx.get(url + "/metrics", timeout=10.0)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(resp.text)
        for s in fam.samples
    }
    return resp, samples


def test_metrics_show_each_stations_last_heartbeat(centre: tuple[Centre, Clock]) -> None:
    """Two stations' heartbeats become per-station series: stock, time left in seconds,
    outbox, heartbeat age, printed and spoiled counters by class; the older station's
    missing fields have no series."""
    server, clock = centre
    for body in (FULL, OLD):
        assert httpx.post(server.url + "/v1/heartbeat", json=body).status_code == 200
    clock.t += 90
    resp, got = scrape(server.url)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=")
    s1, s2 = (("station", "s1"),), (("station", "s2"),)
    assert got[("ektp_station_blanks_in_stock", s1)] == 90
    assert got[("ektp_station_blanks_in_stock", s2)] == 5
    assert got[("ektp_station_stock_left_seconds", s1)] == 3 * 86400
    assert ("ektp_station_stock_left_seconds", s2) not in got
    assert got[("ektp_station_outbox_results", s1)] == 2
    assert got[("ektp_station_heartbeat_age_seconds", s2)] == 90
    assert got[("ektp_station_cards_printed_total", s1)] == 400
    assert (
        got[
            (
                "ektp_station_blanks_spoiled_total",
                (("class", "chip dead/invalid"), ("station", "s1")),
            )
        ]
        == 1
    )
    assert got[("ektp_station_state", (("state", "printing"), ("station", "s1")))] == 1
    assert got[("ektp_station_state", (("state", "error"), ("station", "s1")))] == 0
    assert got[("ektp_station_disk_free_bytes", s1)] == 100 * 1024 * 1024


@needs_promtool
def test_promtool_accepts_the_centres_metrics(centre: tuple[Centre, Clock]) -> None:
    """`promtool check metrics` finds nothing to complain about in the centre's output."""
    server, _ = centre
    for body in (FULL, OLD):
        httpx.post(server.url + "/v1/heartbeat", json=body)
    resp, _ = scrape(server.url)
    out = promtool("check", "metrics", stdin=resp.content)
    assert out.stdout.strip() == ""


def test_a_new_heartbeat_shows_in_the_next_scrape(centre: tuple[Centre, Clock]) -> None:
    """Each scrape shows the station's latest heartbeat, never an earlier one kept from a
    previous scrape; a station id with quotes and backslashes reads back as sent."""
    server, clock = centre
    odd = {**OLD, "station_id": 'st"a\\b'}
    for blanks in (50, 49):
        httpx.post(server.url + "/v1/heartbeat", json={**odd, "blanks": blanks})
        clock.t += 30
        _, got = scrape(server.url)
        assert got[("ektp_station_blanks_in_stock", (("station", 'st"a\\b'),))] == blanks
        assert got[("ektp_station_heartbeat_age_seconds", (("station", 'st"a\\b'),))] == 30
