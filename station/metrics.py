"""The station's own Prometheus endpoint (``[metrics] listen``, off by default): cards,
spoiled blanks, stock, outbox, state, link and timings; never a personal value."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from station import policy
from station.config import MetricsConfig
from station.fleet_beat import STATES, printed_total, spoiled_by_class
from station.status import StatusBoard
from station.store import figures
from station.store.db import Database

log = structlog.get_logger("station.metrics")

#: Sync rounds, by how they ended (ok, link_down, refused, db_error).
SYNC_ROUNDS = Histogram(
    "ektp_sync_round_duration_seconds",
    "Time one sync round with the centre took, by how it ended.",
    ["outcome"],
    registry=None,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
#: Bounds of the per-card histogram (start of the attempt to its card done), seconds.
CARD_BUCKETS = (5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0)


def card_seconds(conn: sqlite3.Connection) -> tuple[list[tuple[str, float]], float]:
    """Cumulative bucket counts of good cards' times, and the sum of those times."""
    cols = ", ".join(f"SUM(d <= {b})" for b in CARD_BUCKETS)
    row = conn.execute(  # the bounds are this module's constants, not input
        f"SELECT {cols}, COUNT(*), COALESCE(SUM(d), 0) FROM "
        "(SELECT updated_at - started_at AS d FROM attempts WHERE state='done')"
    ).fetchone()
    buckets = [(str(b), float(n or 0)) for b, n in zip(CARD_BUCKETS, row, strict=False)]
    return [*buckets, ("+Inf", float(row[len(CARD_BUCKETS)]))], float(row[-1])


class StationCollector(Collector):
    def __init__(
        self, db: Database, board: StatusBoard, rationing: Callable[[], policy.RationingConfig]
    ) -> None:
        self.db, self.board, self.rationing = db, board, rationing

    def _read(self, conn: sqlite3.Connection) -> dict[str, Any]:
        midnight = policy.local_midnight(self.rationing().tz)
        return {
            "counts": figures.counts(conn, midnight),
            "printed": printed_total(conn),
            "spoiled": spoiled_by_class(conn),
            "cards": card_seconds(conn),
        }

    def collect(self) -> Iterator[Metric]:
        got = self.db.run(self._read, durable=False)
        counts = got["counts"]
        for name, key, doc in (
            ("ektp_blanks_in_stock", "in_stock", "Blank cards in stock."),
            ("ektp_buffered_records", "buffered", "Records waiting to print."),
            ("ektp_outbox_results", "outbox", "Results not yet acknowledged."),
            ("ektp_inspection_attempts", "inspection", "Attempts awaiting inspection."),
            ("ektp_cards_printed_today", "cards_today", "Cards printed today."),
        ):
            yield GaugeMetricFamily(name, doc, value=counts[key])
        yield CounterMetricFamily("ektp_cards_printed", "Cards printed.", value=got["printed"])
        spoiled = CounterMetricFamily(
            "ektp_blanks_spoiled", "Blanks spoiled, by class.", labels=["class"]
        )
        for cls, n in got["spoiled"].items():
            spoiled.add_metric([cls], n)
        yield spoiled
        buckets, total = got["cards"]
        yield HistogramMetricFamily(
            "ektp_card_duration_seconds",
            "Time from a card's start to its card done (good cards).",
            buckets=buckets,
            sum_value=total,
        )
        link = self.board.get("link") or {}
        if "up" in link:
            yield GaugeMetricFamily(
                "ektp_link_up", "1 while the centre answers.", value=1.0 if link["up"] else 0.0
            )
        category = (self.board.get("state") or {}).get("category")
        if category in STATES:
            state = GaugeMetricFamily(
                "ektp_state", "1 for the current state category.", labels=["state"]
            )
            for name in STATES:
                state.add_metric([name], 1.0 if name == category else 0.0)
            yield state


def registry(
    db: Database, board: StatusBoard, rationing: Callable[[], policy.RationingConfig]
) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StationCollector(db, board, rationing))
    reg.register(SYNC_ROUNDS)
    return reg


def start(cfg: MetricsConfig, reg: CollectorRegistry) -> Callable[[], None] | None:
    """Serve ``reg`` on ``cfg.listen`` (None: off); the function that stops it."""
    if cfg.listen is None:
        return None
    host, _, port = cfg.listen.rpartition(":")
    server, thread = start_http_server(int(port), host.strip("[]"), registry=reg)
    log.info("metrics_listening", listen=cfg.listen)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
