"""A station's traffic light (the fleet page): green printing or ready; amber paused,
another state, low stock or silent over 10 minutes; red in error, silent over an hour or
its disk nearly full. What the heartbeat says by itself is judged once per heartbeat
(:func:`judge`); only the silence is judged at each look (:func:`light`)."""

from __future__ import annotations

from typing import Literal

from station.i18n import N_
from station.link import protocol as p

Light = Literal["green", "amber", "red"]
SILENT_AMBER_S = 600.0
SILENT_RED_S = 3600.0
LOW_STOCK_DAYS = 3.0
DISK_LOW_MB = 1024.0
#: Reasons (message ids): red ones, then amber ones.
Judged = tuple[tuple[str, ...], tuple[str, ...]]


def judge(hb: p.Heartbeat) -> Judged:
    red, amber = [], []
    if hb.state == "error":
        red.append(N_("in error"))
    if hb.disk_free_mb is not None and hb.disk_free_mb < DISK_LOW_MB:
        red.append(N_("disk nearly full"))
    if hb.state == "paused":
        amber.append(N_("paused"))
    elif hb.state not in ("printing", "ready", "error"):
        amber.append(N_("not printing"))
    if hb.blanks == 0 or (hb.days_left is not None and hb.days_left < LOW_STOCK_DAYS):
        amber.append(N_("low stock"))
    return tuple(red), tuple(amber)


def light(judged: Judged, silent_s: float) -> tuple[Light, tuple[str, ...]]:
    """The colour and why (the worst first), ``silent_s`` after the last heartbeat."""
    red, amber = judged
    if silent_s > SILENT_RED_S:
        red = (*red, N_("silent over an hour"))
    elif silent_s > SILENT_AMBER_S:
        amber = (N_("silent over 10 minutes"), *amber)
    if red:
        return "red", red + amber
    return ("amber", amber) if amber else ("green", ())
