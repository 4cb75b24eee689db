"""Rationing: which records may start now, and how many the station should hold."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from station.i18n import Msg
from station.store import figures

ZONES: dict[str, dt.timezone] = {
    "WIB": dt.timezone(dt.timedelta(hours=7), "WIB"),
    "WITA": dt.timezone(dt.timedelta(hours=8), "WITA"),
    "WIT": dt.timezone(dt.timedelta(hours=9), "WIT"),
}
KINDS = ("first", "reprint")


class RationingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: Literal["WIB", "WITA", "WIT"] = "WIB"
    #: Good cards a day in all (None: no quota).
    daily_quota: int | None = Field(default=None, ge=0)
    #: Per kind (None: no quota for that kind), e.g. 50 first cards + 50 reprints.
    daily_quota_first: int | None = Field(default=None, ge=0)
    daily_quota_reprint: int | None = Field(default=None, ge=0)
    #: Blanks kept for urgent records (pilgrimage, medical treatment, passport).
    urgent_reserve: int = Field(default=0, ge=0)
    #: Warn in ``station status`` when fewer days of stock are left than this.
    low_stock_days: float = Field(default=7.0, ge=0)
    #: Days over which the burn rate (blanks used + spoiled a day) is measured.
    burn_window_days: int = Field(default=7, ge=1, le=90)

    @property
    def tz(self) -> dt.timezone:
        return ZONES[self.timezone]

    def kind_quota(self, kind: str) -> int | None:
        return self.daily_quota_first if kind == "first" else self.daily_quota_reprint


def local_midnight(tz: dt.timezone, now: float | None = None) -> float:
    """Epoch seconds of the start of the office's current calendar day."""
    at = dt.datetime.now(tz) if now is None else dt.datetime.fromtimestamp(now, tz)
    return at.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


@dataclass(frozen=True)
class Allowance:
    """What may start now. ``stop`` names why nothing may (``no_blanks`` or ``quota``)."""

    kinds: tuple[str, ...] = KINDS
    urgent_only: bool = False
    stop: str | None = None
    #: How many more records could start today (None: no limit but the stock).
    capacity: int | None = None
    detail: str = ""
    printed_today: dict[str, int] = field(default_factory=dict)


def printed_today(
    conn: sqlite3.Connection, tz: dt.timezone, now: float | None = None
) -> dict[str, int]:
    since = local_midnight(tz, now)
    out = dict.fromkeys(KINDS, 0)
    for kind, n in conn.execute(
        "SELECT kind, COUNT(*) FROM attempts WHERE state='done' AND updated_at>=? GROUP BY kind",
        (since,),
    ):
        out[kind] = int(n)
    return out


def allowance(
    conn: sqlite3.Connection, cfg: RationingConfig, in_stock: int, now: float | None = None
) -> Allowance:
    """Apply the office's rules to the ledger and today's good cards."""
    today = printed_today(conn, cfg.tz, now)
    if in_stock <= 0:
        return Allowance(
            stop="no_blanks",
            capacity=0,
            printed_today=today,
            detail=Msg("no blanks in stock per the ledger"),
        )
    total = sum(today.values())
    left: list[int] = [in_stock]
    if cfg.daily_quota is not None:
        if total >= cfg.daily_quota:
            return Allowance(
                stop="quota",
                capacity=0,
                printed_today=today,
                detail=Msg(
                    "daily quota reached ({total} of {quota} today); "
                    "printing resumes after midnight {zone}",
                    total=total,
                    quota=cfg.daily_quota,
                    zone=cfg.timezone,
                ),
            )
        left.append(cfg.daily_quota - total)
    kinds = [k for k in KINDS if (q := cfg.kind_quota(k)) is None or today[k] < q]
    if not kinds:
        return Allowance(
            stop="quota",
            capacity=0,
            printed_today=today,
            detail=Msg(
                "daily quotas per kind reached ({first} first cards, {reprint} reprints today)",
                first=today["first"],
                reprint=today["reprint"],
            ),
        )
    quotas = [cfg.kind_quota(k) for k in kinds]
    if all(q is not None for q in quotas):
        left.append(sum((q or 0) - today[k] for q, k in zip(quotas, kinds, strict=True)))
    return Allowance(
        kinds=tuple(kinds),
        urgent_only=in_stock <= cfg.urgent_reserve,
        capacity=min(left),
        printed_today=today,
    )


def burn_rate(conn: sqlite3.Connection, window_days: int, now: float) -> float:
    """Blanks consumed (used + spoiled) per day over the last ``window_days``."""
    since = now - window_days * 86400
    row = conn.execute(
        "SELECT COALESCE(SUM(count), 0) FROM ledger WHERE kind IN ('used','spoiled') AND at>=?",
        (since,),
    ).fetchone()
    return float(row[0]) / window_days


def stock_outlook(conn: sqlite3.Connection, rationing: RationingConfig) -> dict[str, Any]:
    """The counts plus the burn rate and days of stock left (heartbeat and status)."""
    out: dict[str, Any] = figures.counts(conn, local_midnight(rationing.tz))
    rate = burn_rate(conn, rationing.burn_window_days, time.time())
    out["burn_rate_per_day"] = round(rate, 2) if rate else None
    out["days_left"] = round(out["in_stock"] / rate, 1) if rate else None
    out["low_stock"] = bool(rate) and out["in_stock"] / rate < rationing.low_stock_days
    return out
