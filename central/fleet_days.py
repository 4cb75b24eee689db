"""Each station's day at the centre, kept from its heartbeats for the fleet page's chart."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

from station.link import protocol as p

#: The fleet's day: WIB.
DAY_TZ = dt.timezone(dt.timedelta(hours=7), "WIB")


def day_of(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, DAY_TZ).date()


#: A heartbeat's day (params: :func:`day_row`).
UPSERT_DAY = (
    "INSERT INTO station_days (station_id, day, printed, spoiled_json) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (station_id, day) DO UPDATE SET printed = excluded.printed,"
    " spoiled_json = excluded.spoiled_json"
)


def day_row(hb: p.Heartbeat, now: float) -> tuple[str, str, int, str]:
    """The parameters of :data:`UPSERT_DAY` for ``hb`` received at ``now``."""
    return (
        hb.station_id,
        day_of(now).isoformat(),
        hb.cards_today,
        json.dumps(dict(sorted((hb.spoiled_today or {}).items()))),
    )


def record(c: sqlite3.Connection, hb: p.Heartbeat, now: float) -> None:
    """Write the heartbeat's day into ``station_days`` (inside the heartbeat's
    transaction)."""
    c.execute(UPSERT_DAY, day_row(hb, now))


def days(
    c: sqlite3.Connection, station_id: str, last: dt.date, n: int = 30
) -> list[tuple[dt.date, int, dict[str, int]]]:
    """The ``n`` days up to ``last``: (day, printed, spoiled by class), a day without a
    heartbeat as zeros."""
    first = last - dt.timedelta(days=n - 1)
    rows = {
        str(d): (int(printed), json.loads(spoiled))
        for d, printed, spoiled in c.execute(
            "SELECT day, printed, spoiled_json FROM station_days"
            " WHERE station_id = ? AND day >= ? AND day <= ?",
            (station_id, first.isoformat(), last.isoformat()),
        )
    }
    out = []
    for i in range(n):
        day = first + dt.timedelta(days=i)
        printed, spoiled = rows.get(day.isoformat(), (0, {}))
        out.append((day, printed, {str(k): int(v) for k, v in spoiled.items()}))
    return out
