"""The office's rationing rules, decided on a real ledger (no daemon)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Iterator

import pytest

from station import policy
from station.policy import RationingConfig
from station.store import ledger as inventory
from station.store.db import migrate

WIB = policy.ZONES["WIB"]


@pytest.fixture
def conn(tmp_path) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    c.row_factory = sqlite3.Row
    migrate(c)
    yield c
    c.close()


def printed(conn: sqlite3.Connection, kind: str, at: float, n: int = 1) -> None:
    for _ in range(n):
        conn.execute(
            "INSERT INTO attempts(record_id, state, started_at, updated_at, kind) "
            "VALUES ('r', 'done', ?, ?, ?)",
            (at, at, kind),
        )


def at_wib(hour: int, minute: int = 0, day: int = 23) -> float:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=WIB).timestamp()


def test_daily_quota_holds_until_the_next_local_day(conn) -> None:
    """Fifty cards printed by 23:59 WIB stop printing; at 00:01 WIB the next day it resumes."""
    rules = RationingConfig(daily_quota=50, timezone="WIB")
    printed(conn, "first", at_wib(9), 50)
    late = policy.allowance(conn, rules, in_stock=500, now=at_wib(23, 59))
    assert late.stop == "quota"
    assert late.detail == (
        "daily quota reached (50 of 50 today); printing resumes after midnight WIB"
    )
    next_day = policy.allowance(conn, rules, in_stock=500, now=at_wib(0, 1, day=24))
    assert next_day.stop is None
    assert next_day.capacity == 50


def test_the_same_instant_is_another_day_in_wit(conn) -> None:
    """At 23:30 WIB it is already 01:30 the next day in WIT: the quota there is fresh."""
    printed(conn, "first", at_wib(10), 5)
    wib = policy.allowance(
        conn, RationingConfig(daily_quota=5, timezone="WIB"), 100, now=at_wib(23, 30)
    )
    wit = policy.allowance(
        conn, RationingConfig(daily_quota=5, timezone="WIT"), 100, now=at_wib(23, 30)
    )
    assert (wib.stop, wit.stop) == ("quota", None)


def test_quota_split_by_kind(conn) -> None:
    """With 50 first cards + 50 reprints a day, reprints go on after first cards stop."""
    rules = RationingConfig(daily_quota_first=50, daily_quota_reprint=50)
    now = time.time()
    printed(conn, "first", now, 50)
    printed(conn, "reprint", now, 10)
    allow = policy.allowance(conn, rules, in_stock=1000, now=now)
    assert allow.kinds == ("reprint",)
    assert allow.capacity == 40
    printed(conn, "reprint", now, 40)
    assert policy.allowance(conn, rules, in_stock=1000, now=now).stop == "quota"


def test_reserve_keeps_the_last_blanks_for_urgent_records(conn) -> None:
    """At or below the reserve only urgent records may start; above it, all may."""
    rules = RationingConfig(urgent_reserve=10)
    assert policy.allowance(conn, rules, in_stock=11).urgent_only is False
    assert policy.allowance(conn, rules, in_stock=10).urgent_only is True
    assert policy.allowance(conn, rules, in_stock=0).stop == "no_blanks"


def test_burn_rate_and_days_left(conn) -> None:
    """Blanks used and spoiled over the window give the burn rate."""
    inventory.receive(conn, 1000, "B1")
    now = time.time()
    for day in range(7):
        conn.execute(
            "INSERT INTO ledger(kind, count, at) VALUES ('used', 40, ?)", (now - day * 86400 - 60,)
        )
        conn.execute(
            "INSERT INTO ledger(kind, count, at) VALUES ('spoiled', 2, ?)",
            (now - day * 86400 - 60,),
        )
    assert policy.burn_rate(conn, 7, now) == pytest.approx(42.0)
