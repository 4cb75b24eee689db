"""A station's last 30 days as a small SVG bar chart, drawn on the server: a bar a day,
cards printed at the bottom and spoiled blanks stacked above it by class."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from station import i18n

WIDTH, HEIGHT = 480, 160
LEFT, BOTTOM, TOP = 36, 20, 8
PRINTED = "#2e7d32"
#: Spoilage classes' colours, in the order the classes sort.
PALETTE = ("#c62828", "#ef6c00", "#6a1b9a", "#283593", "#00838f", "#795548", "#546e7a")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    kind: str  # "printed" or "spoiled"
    cls: str  # spoilage class ("" for printed)
    day: str
    count: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    legend: list[tuple[str, str]]  # (colour, label)
    top: int  # the y axis' largest value
    first_day: str
    last_day: str
    baseline: float
    left: int
    printed: int
    spoiled: int


def chart(days: list[tuple[dt.date, int, dict[str, int]]], lang: i18n.Language) -> Chart:
    classes = sorted({c for _d, _p, spoiled in days for c in spoiled})
    colours = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(classes)}
    top = max([1] + [p + sum(s.values()) for _d, p, s in days])
    plot_h = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(1, len(days))
    scale = plot_h / top
    bars = []
    for i, (day, printed, spoiled) in enumerate(days):
        x, y = LEFT + i * slot + 1, float(HEIGHT - BOTTOM)
        stack = [("printed", "", printed, PRINTED)]
        stack += [("spoiled", c, spoiled[c], colours[c]) for c in sorted(spoiled)]
        for kind, cls, n, colour in stack:
            if n <= 0:
                continue
            h = n * scale
            y -= h
            bars.append(
                Bar(round(x, 1), round(y, 1), round(slot - 2, 1), round(h, 1), colour, kind,
                    cls, day.isoformat(), n)
            )  # fmt: skip
    legend = [(PRINTED, i18n._("printed", lang))]
    legend += [(colours[c], i18n.translate_text(c, lang)) for c in classes]
    return Chart(
        WIDTH,
        HEIGHT,
        bars,
        legend,
        top,
        days[0][0].isoformat() if days else "",
        days[-1][0].isoformat() if days else "",
        float(HEIGHT - BOTTOM),
        LEFT,
        sum(p for _d, p, _s in days),
        sum(sum(s.values()) for _d, _p, s in days),
    )
