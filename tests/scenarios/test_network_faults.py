"""A bad link between station and centre, injected by a proxy on loopback: refused
connections, black holes, resets mid-response, 5xx, a slow trickle and answers lost after
the server committed. Whatever the fault, nothing is lost and nothing is counted twice."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.config import load_config
from station.daemon import Station
from tests.support.harness import (
    Central,
    db_counts,
    receive,
    running_central,
    station_config,
    tray_labels,
    wait_for,
)
from tests.support.netfaults import FaultProxy, Mode

RECORDS = 30
LEASE_TTL_S = 5.0  # answers lost with records in them: those leases must expire first
#: Faults where the server commits and its answer dies: the station's retry is a duplicate.
#: (Otherwise the server never sees the request, or the answer arrives, however slowly.)
COMMITTED_THEN_LOST = {Mode.RESET, Mode.LOST}


@pytest.fixture
def short_lease_central(tmp_path: Path) -> Iterator[Central]:
    with running_central(tmp_path, lease_ttl_s=LEASE_TTL_S) as c:
        yield c


@pytest.fixture
def proxy(short_lease_central: Central) -> Iterator[FaultProxy]:
    with FaultProxy(short_lease_central.server.url, trickle_bytes=512) as p:
        yield p


def outbox_ids(db: Path) -> tuple[list[str], int]:
    """Every result id the station wrote, and how many are not acknowledged yet."""
    conn = sqlite3.connect(db)
    try:
        ids = [r[0] for r in conn.execute("SELECT result_id FROM outbox")]
        pending = conn.execute("SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL").fetchone()
        return ids, int(pending[0])
    finally:
        conn.close()


def hold_fault(proxy: FaultProxy, mode: Mode, *, only: str | None, hits: int) -> None:
    """Inject ``mode`` (on ``only``'s requests, else on all) for at least 1.5 s and until
    it has hit ``hits`` connections."""
    before = proxy.count(mode, only)
    proxy.set_mode(mode, only=only)
    began = time.monotonic()
    wait_for(
        f"the {mode} fault to hit {only or 'the link'} {hits} times",
        lambda: proxy.count(mode, only) - before >= hits and time.monotonic() - began > 1.5,
        timeout=90,
    )


@pytest.mark.parametrize("mode", [m for m in Mode if m != Mode.PASS], ids=str)
def test_fault_loses_nothing_and_counts_nothing_twice(
    mode: Mode, tmp_path: Path, short_lease_central: Central, proxy: FaultProxy
) -> None:
    """While the link suffers the fault the station keeps printing; once it passes again
    every card reaches the centre exactly once (retries only as acknowledged duplicates)."""
    central = short_lease_central
    central.seed(RECORDS)
    config = station_config(
        tmp_path,
        central,
        url=proxy.url,
        central={
            "timeout_s": 1.0,
            "retry_max_s": 0.5,
            "renew_every_s": 1.0,
            "heartbeat_every_s": 1.0,
            "buffer_target": 8,
            "lease_batch": 4,
            "outbox_batch": 4,
        },
        pipeline={"lease_margin_s": 1.0},
        printer={"options": {"hopper": RECORDS + 10, "timings_ms": {"print": 100}}},
    )
    receive(config, RECORDS + 10)
    cfg = load_config(config)
    station = Station.build(cfg)
    station.start()
    try:
        wait_for("5 cards reported", lambda: central.server.summary().printed >= 5)
        # The sync round stops at its first failure (results go first), so the whole link
        # is hit first, then lease answers alone (records in flight).
        hold_fault(proxy, mode, only=None, hits=2)
        hold_fault(proxy, mode, only="/v1/leases", hits=1)
        proxy.set_mode(Mode.PASS)
        wait_for(
            "every record printed at the centre and the outbox empty",
            lambda: (
                central.server.summary().printed == RECORDS
                and db_counts(cfg.db_path)["outbox"] == 0
            ),
            timeout=120,
        )
    finally:
        station.stop()

    summary = central.server.summary()
    ids, pending = outbox_ids(cfg.db_path)
    cards = tray_labels(tmp_path)
    assert summary.printed_twice == []
    assert summary.printed == RECORDS == len(cards)
    assert set(cards.values()) == {1}
    assert pending == 0
    assert summary.results == len(set(ids)) == len(ids)  # every result once, none lost
    if mode in COMMITTED_THEN_LOST and proxy.count(mode, "/v1/results"):
        assert summary.duplicate_results >= 1  # the retry of a committed batch was seen
    elif mode not in COMMITTED_THEN_LOST:
        assert summary.duplicate_results == 0
