"""Card results at the centre: each counted once by ``result_id``, only from the station
its lease was granted to (:mod:`central.trust`), applied to the record's state in
the caller's transaction (``POST /v1/results`` and ``station central batch ingest``)."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import structlog

from central import trust
from station.link import protocol as p

log = structlog.get_logger(__name__)

#: Rows of one multi-row statement (7 parameters each: well inside both engines' limits).
_CHUNK = 500


def marks(n: int) -> str:
    """``n`` comma-separated ``?`` placeholders."""
    return ", ".join("?" * n)


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def close_lease(c: sqlite3.Connection, lease_id: str, now: float, why: str) -> None:
    close_leases(c, [lease_id], now, why)


def close_leases(c: sqlite3.Connection, lease_ids: Sequence[str], now: float, why: str) -> None:
    """Close the leases still open among ``lease_ids``, for the reason ``why``."""
    for part in chunks(lease_ids):
        c.execute(
            f"UPDATE leases SET closed_ts = ?, close_reason = ? WHERE lease_id IN"
            f" ({marks(len(part))}) AND closed_ts IS NULL",
            (now, why, *part),
        )


def _by_key(c: sqlite3.Connection, sql: str, keys: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Rows of ``sql`` (its first column the key, ``IN ({})`` its filter) for ``keys``."""
    found: dict[str, tuple[str, ...]] = {}
    for part in chunks(sorted(set(keys))):
        for row in c.execute(sql.format(marks(len(part))), tuple(part)).fetchall():
            found[str(row[0])] = tuple(str(v) for v in row[1:])
    return found


class _Batch:
    """Results of one request being applied: the verdicts, and the new results not
    written yet (:meth:`flush` writes them)."""

    def __init__(self, c: sqlite3.Connection, station_id: str, now: float, endpoint: str):
        self.c, self.station_id, self.now, self.endpoint = c, station_id, now, endpoint
        self.dups = 0
        self.refused: dict[str, str] = {}
        self.known: dict[str, str] = {}  # result_id → the station that sent it
        self.pending: list[p.CardResult] = []

    def refuse(self, res: p.CardResult, fault: str) -> None:
        self.refused[res.result_id] = fault
        trust.record_refusal(
            self.c,
            self.now,
            station_id=self.station_id,
            endpoint=self.endpoint,
            reason=f"result {res.outcome}: {fault}",
        )
        log.warning(
            "central.result_refused", station=self.station_id, result=res.result_id, reason=fault
        )

    def seen(self, res: p.CardResult) -> bool:
        """Whether ``res`` is known already (counted a duplicate, or refused when another
        station sent that id)."""
        sender = self.known.get(res.result_id)
        if sender is None:
            return False
        if sender == self.station_id:
            self.dups += 1
        else:
            self.refuse(res, f"result id {res.result_id!r} was sent by another station")
        return True

    def flush(self) -> None:
        """Insert the pending results; apply those inserted, in the order received."""
        pending, self.pending = self.pending, []
        inserted: set[str] = set()
        for part in chunks(pending):
            rows = self.c.execute(
                "INSERT INTO results (result_id, station_id, record_id, lease_id, outcome,"
                " body_json, received_ts) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(part))
                + " ON CONFLICT (result_id) DO NOTHING RETURNING result_id",
                [
                    v
                    for r in part
                    for v in (
                        r.result_id,
                        self.station_id,
                        r.record_id,
                        r.lease_id,
                        r.outcome,
                        r.model_dump_json(),
                        self.now,
                    )
                ],
            ).fetchall()
            inserted |= {str(row[0]) for row in rows}
        raced = [r.result_id for r in pending if r.result_id not in inserted]
        if raced:  # committed by a concurrent request since we looked: read them back
            sent = _by_key(
                self.c, "SELECT result_id, station_id FROM results WHERE result_id IN ({})", raced
            )
            self.known.update({rid: row[0] for rid, row in sent.items()})
        for res in pending:
            if res.result_id not in inserted:
                self.seen(res)
        _apply(self.c, [r for r in pending if r.result_id in inserted], self.now)


def record_results(
    c: sqlite3.Connection,
    station_id: str,
    results: Iterable[p.CardResult],
    now: float,
    endpoint: str,
) -> tuple[int, dict[str, str]]:
    """Apply results not known yet (by result_id); returns how many were duplicates
    (counted, not applied) and the refused ones (result_id → reason, see
    :func:`trust.lease_fault` and :func:`trust.record_fault`; written to the audit)."""
    todo = list(results)
    batch = _Batch(c, station_id, now, endpoint)
    known = _by_key(
        c,
        "SELECT result_id, station_id FROM results WHERE result_id IN ({})",
        [r.result_id for r in todo],
    )
    batch.known = {rid: row[0] for rid, row in known.items()}
    leases = _by_key(
        c,
        "SELECT lease_id, record_id, station_id FROM leases WHERE lease_id IN ({})",
        [r.lease_id for r in todo],
    )
    for res in todo:
        if batch.seen(res):
            continue
        lease = leases.get(res.lease_id)
        fault = trust.lease_fault(None if lease is None else (lease[0], lease[1]), station_id, res)
        if fault is None and res.outcome in ("failed", "deferred"):
            batch.flush()  # the record's state now, after the results before this one
            fault = trust.record_fault(c, station_id, res)
        if fault is not None:
            batch.refuse(res, fault)
            continue
        batch.pending.append(res)
        batch.known[res.result_id] = station_id  # the same id later in this request
    batch.flush()
    c.execute(
        "UPDATE counters SET value = value + ? WHERE name = 'duplicate_results'", (batch.dups,)
    )
    return batch.dups, batch.refused


def _apply(c: sqlite3.Connection, results: Sequence[p.CardResult], now: float) -> None:
    """The new results' effects. A pending batch holds at most one ``failed`` or
    ``deferred`` result, and first (see :func:`record_results`): applying failed, deferred,
    then printed is the order they came in."""
    by_outcome: dict[str, list[p.CardResult]] = defaultdict(list)
    for res in results:
        by_outcome[res.outcome].append(res)  # spoiled: counts a blank, the attempt goes on
    for outcome in ("failed", "deferred", "printed"):
        for res_part in chunks(by_outcome[outcome]):
            close_leases(c, [r.lease_id for r in res_part], now, outcome)
    for part in chunks(sorted({r.record_id for r in by_outcome["failed"]})):
        c.execute(
            "UPDATE records SET state = 'failed', lease_id = NULL, lease_station = NULL,"
            f" lease_expires = NULL WHERE record_id IN ({marks(len(part))})"
            " AND state = 'ready'",
            tuple(part),
        )
    for res in by_outcome["deferred"]:  # back to ready, unless another station holds it
        c.execute(
            "UPDATE records SET lease_id = NULL, lease_station = NULL, lease_expires = NULL"
            " WHERE record_id = ? AND lease_id = ?",
            (res.record_id, res.lease_id),
        )
    # Printed even when the lease expired meanwhile: the card exists.
    for part in chunks(sorted({r.record_id for r in by_outcome["printed"]})):
        c.execute(
            "UPDATE records SET state = 'printed', lease_id = NULL, lease_station = NULL,"
            f" lease_expires = NULL WHERE record_id IN ({marks(len(part))})",
            tuple(part),
        )
