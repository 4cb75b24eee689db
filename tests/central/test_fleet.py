"""The centre's fleet pages over real HTTP on both servers: the traffic light follows
the clock, the pages are paged, filtered and in two languages, and each station's days
are kept from its heartbeats (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from central.asgi_server import AsgiServer
from central.server import CentralServer
from tests.support.fleet_page import DAY_S, Clock, beat, send
from tests.support.postgres import PgCluster, running_cluster

Centre = CentralServer | AsgiServer
SERVERS: dict[str, Callable[..., Centre]] = {"stdlib": CentralServer, "asgi": AsgiServer}


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(params=sorted(SERVERS))
def centre(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Centre, Clock]]:
    clock = Clock()
    with SERVERS[str(request.param)](tmp_path / "c.db", clock=clock) as centre:
        yield centre, clock


def lights(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-station="([^"]+)" data-light="(\w+)"', html))


def test_a_silent_station_turns_amber_then_red(centre: tuple[Centre, Clock]) -> None:
    """A ready station is green; with no heartbeat for 11 minutes it is amber, after an
    hour red; a station reporting a nearly full disk is red at once."""
    server, clock = centre
    send(server.url, clock, beat("3273-01", state="ready"), clock.t)
    send(server.url, clock, beat("3273-02", state="ready", disk_free_mb=300.0), clock.t)
    got = []
    for wait in (0, 11 * 60, 50 * 60):
        clock.t += wait
        got.append(lights(httpx.get(server.url + "/fleet").text))
    assert [g["3273-01"] for g in got] == ["green", "amber", "red"]
    assert got[0]["3273-02"] == "red"


def test_the_page_is_paged_and_counts_the_whole_fleet(centre: tuple[Centre, Clock]) -> None:
    """With 250 stations the page lists 100 by default, the third page the last 50, and
    the regency table still counts all 250; the light filter keeps only that colour."""
    server, clock = centre
    for i in range(250):
        state = "paused" if i % 5 == 0 else "printing"
        send(server.url, clock, beat(f"3578-{i:03d}", state=state, days_left=9.0), clock.t)
    first = httpx.get(server.url + "/fleet").text
    assert len(lights(first)) == 100
    assert 'rel="next" href="/fleet?page=2"' in first
    assert re.search(r'data-count="total">250<', first)
    last = lights(httpx.get(server.url + "/fleet?page=3").text)
    assert sorted(last) == [f"3578-{i:03d}" for i in range(200, 250)]
    amber = lights(httpx.get(server.url + "/fleet?light=amber&per_page=1000").text)
    assert sorted(amber) == [f"3578-{i:03d}" for i in range(0, 250, 5)]


def test_the_pages_speak_indonesian_unless_asked_for_english(
    centre: tuple[Centre, Clock],
) -> None:
    """The fleet page is in Bahasa Indonesia by default and English with ?lang=en; an
    unknown parameter or station is refused naming it."""
    server, clock = centre
    send(server.url, clock, beat("5171-01", state="paused"), clock.t)
    id_page = httpx.get(server.url + "/fleet").text
    en_page = httpx.get(server.url + "/fleet?lang=en").text
    assert "<h1>Armada</h1>" in id_page
    assert "dijeda" in id_page
    assert "<h1>Fleet</h1>" in en_page
    assert "paused" in en_page
    assert "KOTA DENPASAR" in id_page
    station = httpx.get(server.url + "/fleet/5171-01?lang=en")
    assert station.status_code == 200
    assert "Last 30 days" in station.text
    bad = httpx.get(server.url + "/fleet?colour=red")
    assert bad.status_code == 400
    assert "colour" in bad.json()["error"]
    missing = httpx.get(server.url + "/fleet/9999-01")
    assert missing.status_code == 404
    assert "9999-01" in missing.json()["error"]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_each_day_keeps_its_last_heartbeat(engine: str, request: pytest.FixtureRequest) -> None:
    """The station page's chart shows for each day the figures of that day's last
    heartbeat: two heartbeats on one day count once, the next day has its own bar."""
    clock = Clock()
    tmp = request.getfixturevalue("tmp_path")
    db = request.getfixturevalue("pg").new_database() if engine == "postgresql" else tmp / "c.db"
    with AsgiServer(db, clock=clock) as server:
        yesterday = clock.t - DAY_S
        for at, cards, spoiled in ((yesterday - 60, 3, 1), (yesterday, 5, 2), (clock.t, 7, 0)):
            hb = beat("3273-01", state="printing", cards_today=cards,
                      spoiled_today={"failed print": spoiled} if spoiled else {})  # fmt: skip
            send(server.url, clock, hb, at)
        html = httpx.get(server.url + "/fleet/3273-01").text
    bars = re.findall(r'class="bar (\w+)" data-day="([\d-]+)" data-class="([^"]*)" '
                      r'data-count="(\d+)"', html)  # fmt: skip
    assert [(kind, cls, int(n)) for kind, _day, cls, n in bars] == [
        ("printed", "", 5),
        ("spoiled", "failed print", 2),
        ("printed", "", 7),
    ]
    assert bars[0][1] < bars[2][1]
