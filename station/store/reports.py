"""Daily and monthly blank reports, as an office sends them to the province each month."""

from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
import time
from typing import Any

from station.i18n import N_, _
from station.policy import burn_rate
from station.store.states import CAUSES, SPOIL_CLASSES

#: Who the spoiled blanks are charged to (station/faults.py); "other": not known (power
#: cuts, a technician's inspection).
CAUSE_FIELDS = [*(f"spoiled_by_{c}" for c in CAUSES), "spoiled_by_other"]
FIELDS = [
    "period",
    "printed",
    *(f"spoiled_{c}" for c in SPOIL_CLASSES),
    "spoiled",
    *CAUSE_FIELDS,
    "destroyed",
    "deferred",
    "received",
    "adjusted",
    "stock_start",
    "stock_end",
    "days_left",
]


def _stock_before(conn: sqlite3.Connection, t: float) -> int:
    row = conn.execute(
        "SELECT COALESCE(SUM(CASE kind WHEN 'received' THEN count WHEN 'adjusted' THEN count "
        "ELSE -count END), 0) FROM ledger WHERE at < ?",
        (t,),
    ).fetchone()
    return int(row[0])


def period_figures(
    conn: sqlite3.Connection, label: str, start: float, end: float, burn_window_days: int = 7
) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(FIELDS, 0)
    out["period"] = label
    for kind, klass, cause, n in conn.execute(
        "SELECT kind, class, cause, SUM(count) FROM ledger WHERE at >= ? AND at < ? "
        "GROUP BY kind, class, cause",
        (start, end),
    ):
        if kind == "used":
            out["printed"] += int(n)
        elif kind == "spoiled":
            out["spoiled"] += int(n)
            out[f"spoiled_{klass or 'failed print'}"] += int(n)
            out[f"spoiled_by_{cause if cause in CAUSES else 'other'}"] += int(n)
        elif kind in ("received", "adjusted"):
            out[kind] += int(n)
    out["destroyed"] = int(
        conn.execute(
            "SELECT COUNT(*) FROM ledger l JOIN destructions d USING(destruction_id) "
            "WHERE d.at >= ? AND d.at < ?",
            (start, end),
        ).fetchone()[0]
    )
    out["deferred"] = int(
        conn.execute(
            "SELECT COUNT(*) FROM releases WHERE at >= ? AND at < ?", (start, end)
        ).fetchone()[0]
    )
    out["stock_start"] = _stock_before(conn, start)
    out["stock_end"] = _stock_before(conn, end)
    # Days of stock left at the period's end (or now, if it has not ended yet), at the
    # burn rate of the window before it.
    rate = burn_rate(conn, burn_window_days, min(end, time.time()))
    out["days_left"] = round(out["stock_end"] / rate, 1) if rate else None
    return out


def _day_bounds(day: dt.date, tz: dt.timezone) -> tuple[float, float]:
    start = dt.datetime.combine(day, dt.time(), tz)
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()


def daily(
    conn: sqlite3.Connection, day: dt.date, tz: dt.timezone, burn_window_days: int = 7
) -> dict[str, Any]:
    return period_figures(conn, day.isoformat(), *_day_bounds(day, tz), burn_window_days)


def monthly(
    conn: sqlite3.Connection, year: int, month: int, tz: dt.timezone, burn_window_days: int = 7
) -> dict[str, Any]:
    first = dt.date(year, month, 1)
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    total = period_figures(
        conn,
        f"{year:04d}-{month:02d}",
        _day_bounds(first, tz)[0],
        _day_bounds(nxt, tz)[0],
        burn_window_days,
    )
    days = []
    day = first
    while day < nxt:
        days.append(daily(conn, day, tz, burn_window_days))
        day += dt.timedelta(days=1)
    total["days"] = days
    return total


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


#: The text report's row labels (the CSV and JSON keep the field names).
LABELS = {
    "printed": N_("printed"),
    "spoiled": N_("spoiled (all)"),
    "destroyed": N_("destroyed"),
    "deferred": N_("deferred"),
    "received": N_("received"),
    "adjusted": N_("adjusted"),
    "stock_start": N_("stock at start"),
    "stock_end": N_("stock at end"),
    "days_left": N_("days of stock left"),
    "spoiled_failed encode": N_("spoiled: failed encode"),
    "spoiled_failed print": N_("spoiled: failed print"),
    "spoiled_physically damaged": N_("spoiled: physically damaged"),
    "spoiled_chip dead/invalid": N_("spoiled: chip dead/invalid"),
    "spoiled_by_record": N_("spoiled, caused by the record"),
    "spoiled_by_blank": N_("spoiled, caused by the blank"),
    "spoiled_by_device": N_("spoiled, caused by the device"),
    "spoiled_by_other": N_("spoiled, cause not known"),
}


def to_text(report: dict[str, Any], station_id: str) -> str:
    lines = [
        _("Blank report {period} — station {station}").format(
            period=report["period"], station=station_id
        ),
        "",
    ]
    labels = {f: _(LABELS.get(f, f.replace("_", " "))) for f in FIELDS[1:]}
    width = max(len(label) for label in labels.values())
    for f in FIELDS[1:]:
        value = "-" if report[f] is None else report[f]
        lines.append(f"  {labels[f]:<{width}}  {value:>7}")
    if report.get("days"):
        lines += ["", "  " + _("day         printed spoiled received stock_end")]
        lines += [
            f"  {d['period']}  {d['printed']:>7} {d['spoiled']:>7} {d['received']:>8} "
            f"{d['stock_end']:>9}"
            for d in report["days"]
            if d["printed"] or d["spoiled"] or d["received"] or d["adjusted"]
        ]
    return "\n".join(lines)
