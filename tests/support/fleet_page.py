"""A fleet of stations in mixed states for the fleet page's tests, made by real
heartbeats (the station's :class:`QueueClient`) to a centre whose clock the test holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from station.link.client import QueueClient
from station.link.protocol import Heartbeat

DAY_S = 86400.0
#: (regency code, stations there): 50 in all, unequal so the counts tell them apart.
REGENCIES = (("3273", 6), ("3578", 8), ("3171", 10), ("5171", 12), ("7371", 14))
#: kind → (expected light, heartbeat fields, seconds since it was sent)
KINDS: dict[str, tuple[str, dict[str, Any], float]] = {
    "printing": ("green", {"state": "printing", "days_left": 20.0}, 30),
    "ready": ("green", {"state": "ready", "days_left": 9.0}, 60),
    "paused": ("amber", {"state": "paused", "days_left": 9.0}, 60),
    "low stock": ("amber", {"state": "printing", "days_left": 1.5, "blanks": 12}, 60),
    "silent 20 min": ("amber", {"state": "ready", "days_left": 9.0}, 1200),
    "error": ("red", {"state": "error", "last_error_code": "printer jammed"}, 60),
    "silent 2 h": ("red", {"state": "printing", "days_left": 9.0}, 7200),
    "disk full": ("red", {"state": "printing", "disk_free_mb": 200.0}, 60),
    "old version": ("amber", {}, 60),  # no state field at all: not known to be printing
    "printing 2": ("green", {"state": "printing", "days_left": 4.0}, 5),
}


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass(frozen=True)
class Made:
    station_id: str
    regency: str
    kind: str
    light: str
    blanks: int


def beat(station_id: str, **fields: Any) -> Heartbeat:
    body: dict[str, Any] = {
        "station_id": station_id,
        "version": "0.3.0",
        "printer_state": "ready",
        "blanks": 100,
        "buffer": 2,
        "outbox": 0,
        "disk_free_mb": 20_000.0,
    }
    body.update(fields)
    if "state" not in fields:  # an older station: the first heartbeat's fields only
        for key in ("disk_free_mb",):
            body.pop(key)
    return Heartbeat.model_validate(body)


def send(url: str, clock: Clock, hb: Heartbeat, at: float) -> None:
    """One heartbeat through the protocol, arriving at the centre at ``at``."""
    now, clock.t = clock.t, at
    client = QueueClient(url, hb.station_id)
    try:
        client.heartbeat(hb)
    finally:
        client.close()
        clock.t = now


def make_fleet(url: str, clock: Clock) -> list[Made]:
    """50 stations over five regencies, the kinds of :data:`KINDS` in turn."""
    made, kinds, i = [], list(KINDS), 0
    for regency, n in REGENCIES:
        for k in range(n):
            kind = kinds[i % len(kinds)]
            light, fields, ago = KINDS[kind]
            sid = f"{regency}-{k + 1:02d}"
            blanks = fields.get("blanks", 40 + (i * 37) % 300)
            hb = beat(sid, **{**fields, "blanks": blanks, "cards_today": i % 7})
            send(url, clock, hb, clock.t - ago)
            made.append(Made(sid, regency, kind, light, blanks))
            i += 1
    return made


def make_history(url: str, clock: Clock, station_id: str) -> list[tuple[int, dict[str, int]]]:
    """Heartbeats for one station on the 29 days before today (a day's last at noon,
    WIB): what each day printed and spoiled, oldest first."""
    sent = []
    today_noon = (clock.t // DAY_S) * DAY_S + 5 * 3600  # 12:00 WIB is 05:00 UTC
    for d in range(29, 0, -1):
        printed = 5 + (d * 7) % 20
        spoiled = {"failed print": d % 3, "chip dead/invalid": 1} if d % 4 else {}
        at = today_noon - d * DAY_S
        hb = beat(station_id, state="printing", cards_today=printed, spoiled_today=spoiled)
        send(url, clock, hb, at)
        sent.append((printed, spoiled))
    return sent
