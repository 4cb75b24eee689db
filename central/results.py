"""Card results at the centre: each counted once by ``result_id``, only from the station
its lease was granted to (:mod:`central.trust`), applied to the record's state in
the caller's transaction (``POST /v1/results`` and ``station central batch ingest``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import structlog

from central import trust
from station.link import protocol as p

log = structlog.get_logger(__name__)


def close_lease(c: sqlite3.Connection, lease_id: str, now: float, why: str) -> None:
    c.execute(
        "UPDATE leases SET closed_ts = ?, close_reason = ? WHERE lease_id = ?"
        " AND closed_ts IS NULL",
        (now, why, lease_id),
    )


def record_results(
    c: sqlite3.Connection,
    station_id: str,
    results: Iterable[p.CardResult],
    now: float,
    endpoint: str,
) -> tuple[int, dict[str, str]]:
    """Apply results not known yet (by result_id); returns how many were duplicates
    (counted, not applied) and the refused ones (result_id → reason, see
    :func:`trust.result_fault`; written to the audit)."""
    dups = 0
    refused: dict[str, str] = {}
    for res in results:
        known = c.execute(
            "SELECT station_id FROM results WHERE result_id = ?", (res.result_id,)
        ).fetchone()
        if known and known[0] == station_id:
            dups += 1
            continue
        fault = (
            f"result id {res.result_id!r} was sent by another station"
            if known
            else trust.result_fault(c, station_id, res)
        )
        if fault is not None:
            refused[res.result_id] = fault
            trust.record_refusal(
                c,
                now,
                station_id=station_id,
                endpoint=endpoint,
                reason=f"result {res.outcome}: {fault}",
            )
            log.warning(
                "central.result_refused", station=station_id, result=res.result_id, reason=fault
            )
            continue
        c.execute(
            "INSERT INTO results (result_id, station_id, record_id, lease_id, outcome,"
            " body_json, received_ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                res.result_id,
                station_id,
                res.record_id,
                res.lease_id,
                res.outcome,
                res.model_dump_json(),
                now,
            ),
        )
        _apply(c, res, now)
    c.execute("UPDATE counters SET value = value + ? WHERE name = 'duplicate_results'", (dups,))
    return dups, refused


def _apply(c: sqlite3.Connection, res: p.CardResult, now: float) -> None:
    if res.outcome == "spoiled":
        return  # counts a blank; the record's attempt goes on
    close_lease(c, res.lease_id, now, res.outcome)
    if res.outcome == "printed":
        # Even when the lease expired meanwhile: the card exists.
        c.execute(
            "UPDATE records SET state = 'printed', lease_id = NULL, lease_station = NULL,"
            " lease_expires = NULL WHERE record_id = ?",
            (res.record_id,),
        )
    elif res.outcome == "failed":
        c.execute(
            "UPDATE records SET state = 'failed', lease_id = NULL, lease_station = NULL,"
            " lease_expires = NULL WHERE record_id = ? AND state = 'ready'",
            (res.record_id,),
        )
    else:  # deferred: back to ready, unless another station holds it by now
        c.execute(
            "UPDATE records SET lease_id = NULL, lease_station = NULL, lease_expires = NULL"
            " WHERE record_id = ? AND lease_id = ?",
            (res.record_id, res.lease_id),
        )
