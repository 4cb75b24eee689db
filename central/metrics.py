"""``GET /metrics`` at the centre: every station's latest heartbeat as Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from station.link import protocol as p

MB = 1 << 20
DAY_S = 86400.0
STATES = ("starting", "ready", "printing", "paused", "error", "stopped")
#: One sample: its extra labels (after ``station``) and value.
Sample = tuple[tuple[tuple[str, str], ...], float]
Samples = Callable[[p.Heartbeat, float, int], Iterable[Sample]]


class TextAnswer(BaseModel):
    """An answer that is not JSON: its bytes and media type (the servers send it as is)."""

    body: bytes
    media_type: str


def _one(value: float | None) -> list[Sample]:
    return [] if value is None else [((), float(value))]


def _by_class(counts: dict[str, int] | None) -> list[Sample]:
    return [((("class", k),), float(n)) for k, n in sorted((counts or {}).items())]


def _states(hb: p.Heartbeat) -> list[Sample]:
    if hb.state is None:
        return []
    return [((("state", s),), 1.0 if s == hb.state else 0.0) for s in STATES]


#: (name as exposed, type, help, samples of one heartbeat (received at, count)).
FAMILIES: tuple[tuple[str, str, str, Samples], ...] = (
    ("ektp_station_blanks_in_stock", "gauge", "Blank cards in stock.",
     lambda hb, _t, _n: _one(hb.blanks)),
    ("ektp_station_stock_left_seconds", "gauge",
     "Time until the stock runs out at the station's burn rate.",
     lambda hb, _t, _n: _one(None if hb.days_left is None else hb.days_left * DAY_S)),
    ("ektp_station_blanks_burn_rate_per_second", "gauge",
     "Blanks consumed (used and spoiled) a second over the burn window.",
     lambda hb, _t, _n: _one(
         None if hb.burn_rate_per_day is None else hb.burn_rate_per_day / DAY_S)),
    ("ektp_station_outbox_results", "gauge", "Results not yet acknowledged.",
     lambda hb, _t, _n: _one(hb.outbox)),
    ("ektp_station_buffered_records", "gauge", "Records waiting to print.",
     lambda hb, _t, _n: _one(hb.buffer)),
    ("ektp_station_inspection_attempts", "gauge",
     "Card attempts waiting for a technician's inspection.",
     lambda hb, _t, _n: _one(hb.inspection)),
    ("ektp_station_disk_free_bytes", "gauge", "Free space on the state volume.",
     lambda hb, _t, _n: _one(None if hb.disk_free_mb is None else hb.disk_free_mb * MB)),
    ("ektp_station_last_heartbeat_timestamp_seconds", "gauge",
     "When the last heartbeat arrived (Unix time).", lambda _hb, t, _n: _one(t)),
    ("ektp_station_state", "gauge", "1 for the station's current state category.",
     lambda hb, _t, _n: _states(hb)),
    ("ektp_station_info", "gauge", "The station's software version.",
     lambda hb, _t, _n: [((("version", hb.version),), 1.0)]),
    ("ektp_station_cards_printed_today", "gauge", "Cards printed today.",
     lambda hb, _t, _n: _one(hb.cards_today)),
    ("ektp_station_blanks_spoiled_today", "gauge", "Blanks spoiled today, by spoilage class.",
     lambda hb, _t, _n: _by_class(hb.spoiled_today)),
    ("ektp_station_cards_printed_total", "counter",
     "Cards printed since the station's first card.",
     lambda hb, _t, _n: _one(hb.printed_total)),
    ("ektp_station_blanks_spoiled_total", "counter",
     "Blanks spoiled since the station's first card, by class.",
     lambda hb, _t, _n: _by_class(hb.spoiled_total)),
    ("ektp_station_heartbeats_total", "counter", "Heartbeats received.",
     lambda _hb, _t, n: _one(n)),
)  # fmt: skip
AGE = ("ektp_station_heartbeat_age_seconds", "gauge", "Time since the last heartbeat.")


def _label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _num(value: float) -> str:
    """A sample value as prometheus-client writes one (every value here is finite)."""
    return repr(float(value))


def _header(name: str, kind: str, doc: str) -> str:
    return f"# HELP {name} {doc}\n# TYPE {name} {kind}\n"


def station_lines(hb: p.Heartbeat, received: float, count: int) -> tuple[str, ...]:
    """The station's sample lines, one string a family of :data:`FAMILIES`."""
    station = f'station="{_label(hb.station_id)}"'
    out = []
    for name, _kind, _doc, samples in FAMILIES:
        lines = []
        for extra, value in samples(hb, received, count):
            labels = "".join(f',{k}="{_label(v)}"' for k, v in extra)
            lines.append(f"{name}{{{station}{labels}}} {_num(value)}\n")
        out.append("".join(lines))
    return tuple(out)


def exposition(
    stations: Sequence[str],
    received: Sequence[float],
    lines: Sequence[tuple[str, ...]],
    now: float,
) -> TextAnswer:
    """Every station's figures in the Prometheus text format: the stations' ids, when
    their last heartbeats came and their :func:`station_lines`, in one order."""
    parts = []
    columns = list(zip(*lines, strict=True)) if lines else [()] * len(FAMILIES)
    for (name, kind, doc, _samples), column in zip(FAMILIES, columns, strict=True):
        parts.append(_header(name, kind, doc))
        parts.append("".join(column))
    name, kind, doc = AGE
    parts.append(_header(name, kind, doc))
    parts.extend(
        f'{name}{{station="{_label(sid)}"}} {_num(max(0.0, now - t))}\n'
        for sid, t in zip(stations, received, strict=True)
    )
    return TextAnswer(body="".join(parts).encode(), media_type=CONTENT_TYPE_LATEST)
