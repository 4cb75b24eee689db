"""The station's own Prometheus endpoint: off by default, and when listening it shows the
cards printed, per-card times, link and sync rounds in a format promtool accepts."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.harness import Central, receive, running_station, station_config, wait_for
from tests.support.promtool import needs_promtool, promtool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape_station(tmp_path: Path, central: Central) -> str:
    """The /metrics text of a station listening on a free port after three cards; checks
    that the endpoint is gone once the station stopped."""
    central.seed(3)
    port = free_port()
    config = station_config(tmp_path, central, metrics={"listen": f"127.0.0.1:{port}"})
    receive(config, 5)
    url = f"http://127.0.0.1:{port}/metrics"
    with running_station(config):
        wait_for("three cards at the centre", lambda: central.server.summary().printed == 3)
        text = httpx.get(url, timeout=10.0).text
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2.0)
    return text


def test_metrics_endpoint_shows_the_stations_own_figures(tmp_path: Path, central: Central) -> None:
    """With `[metrics] listen` set, GET /metrics counts the three cards printed, has a
    card-time histogram of three and sync rounds that ended ok, says the link is up; it
    stops listening when the station stops."""
    text = scrape_station(tmp_path, central)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    assert samples[("ektp_cards_printed_total", ())] == 3
    assert samples[("ektp_card_duration_seconds_count", ())] == 3
    assert samples[("ektp_card_duration_seconds_bucket", (("le", "+Inf"),))] == 3
    assert samples[("ektp_link_up", ())] == 1
    assert samples[("ektp_sync_round_duration_seconds_count", (("outcome", "ok"),))] > 0
    assert samples[("ektp_blanks_in_stock", ())] >= 0


@needs_promtool
def test_promtool_accepts_the_stations_metrics(tmp_path: Path, central: Central) -> None:
    """`promtool check metrics` finds nothing to complain about in the station's output."""
    text = scrape_station(tmp_path, central)
    assert promtool("check", "metrics", stdin=text.encode()).stdout.strip() == ""


def test_no_metrics_endpoint_by_default(tmp_path: Path, central: Central) -> None:
    """Without `[metrics] listen` the station runs with no metrics server."""
    config = station_config(tmp_path, central)
    with running_station(config) as station:
        assert station.metrics_stop is None
