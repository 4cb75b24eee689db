"""``GET /metrics`` at the centre: every station's latest heartbeat as Prometheus metrics.

Rendered from the database at scrape time by a custom collector (nothing is kept in
memory between scrapes, so every worker process answers the same). One series a station
(label ``station``); counts by spoilage class carry ``class``. A station that sent no
such field (an older version) has no sample for it. Units follow Prometheus: seconds
and bytes. The example alert rules are config/prometheus/ektp-alerts.yml.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel

from central.queue_db import QueueDB
from station.link import protocol as p

MB = 1 << 20
DAY_S = 86400.0
STATES = ("starting", "ready", "printing", "paused", "error", "stopped")


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ("station",)) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


class FleetCollector(Collector):
    """The stations' figures from their latest heartbeats (``QueueDB.heartbeat_rows``)."""

    def __init__(self, db: QueueDB) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        rows = self.db.heartbeat_rows()
        now = self.db.clock()
        stock = _gauge("ektp_station_blanks_in_stock", "Blank cards in stock.")
        left = _gauge(
            "ektp_station_stock_left_seconds",
            "Time until the stock runs out at the station's burn rate.",
        )
        burn = _gauge(
            "ektp_station_blanks_burn_rate_per_second",
            "Blanks consumed (used and spoiled) a second over the burn window.",
        )
        outbox = _gauge("ektp_station_outbox_results", "Results not yet acknowledged.")
        buffered = _gauge("ektp_station_buffered_records", "Records waiting to print.")
        inspection = _gauge(
            "ektp_station_inspection_attempts",
            "Card attempts waiting for a technician's inspection.",
        )
        disk = _gauge("ektp_station_disk_free_bytes", "Free space on the state volume.")
        age = _gauge("ektp_station_heartbeat_age_seconds", "Time since the last heartbeat.")
        seen = _gauge(
            "ektp_station_last_heartbeat_timestamp_seconds",
            "When the last heartbeat arrived (Unix time).",
        )
        state = _gauge(
            "ektp_station_state",
            "1 for the station's current state category.",
            ("station", "state"),
        )
        info = _gauge(
            "ektp_station_info", "The station's software version.", ("station", "version")
        )
        today = _gauge("ektp_station_cards_printed_today", "Cards printed today.")
        spoiled_today = _gauge(
            "ektp_station_blanks_spoiled_today",
            "Blanks spoiled today, by spoilage class.",
            ("station", "class"),
        )
        printed = CounterMetricFamily(
            "ektp_station_cards_printed",
            "Cards printed since the station's first card.",
            labels=["station"],
        )
        spoiled = CounterMetricFamily(
            "ektp_station_blanks_spoiled",
            "Blanks spoiled since the station's first card, by class.",
            labels=["station", "class"],
        )
        beats = CounterMetricFamily(
            "ektp_station_heartbeats", "Heartbeats received.", labels=["station"]
        )
        for body, received, count in rows:
            hb = p.Heartbeat.model_validate_json(body)
            s = [hb.station_id]
            stock.add_metric(s, hb.blanks)
            outbox.add_metric(s, hb.outbox)
            buffered.add_metric(s, hb.buffer)
            inspection.add_metric(s, hb.inspection)
            today.add_metric(s, hb.cards_today)
            age.add_metric(s, max(0.0, now - received))
            seen.add_metric(s, received)
            beats.add_metric(s, count)
            info.add_metric([hb.station_id, hb.version], 1)
            if hb.days_left is not None:
                left.add_metric(s, hb.days_left * DAY_S)
            if hb.burn_rate_per_day is not None:
                burn.add_metric(s, hb.burn_rate_per_day / DAY_S)
            if hb.disk_free_mb is not None:
                disk.add_metric(s, hb.disk_free_mb * MB)
            if hb.state is not None:
                for name in STATES:
                    state.add_metric([hb.station_id, name], 1.0 if name == hb.state else 0.0)
            if hb.printed_total is not None:
                printed.add_metric(s, hb.printed_total)
            for family, by_class in (
                (spoiled, hb.spoiled_total),
                (spoiled_today, hb.spoiled_today),
            ):
                for cls, n in sorted((by_class or {}).items()):
                    family.add_metric([hb.station_id, cls], n)
        yield from (
            stock,
            left,
            burn,
            outbox,
            buffered,
            inspection,
            disk,
            age,
            seen,
            state,
            info,
            today,
            spoiled_today,
            printed,
            spoiled,
            beats,
        )


class TextAnswer(BaseModel):
    """An answer that is not JSON: its bytes and media type (the servers send it as is)."""

    body: bytes
    media_type: str


def registry_for(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> TextAnswer:
    """The registry in the Prometheus text format."""
    return TextAnswer(body=generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
