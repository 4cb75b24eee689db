"""Card attempts: one per blank fed, through the states to done, rejected, aborted or inspection."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from station.i18n import Msg
from station.store.audit import audit
from station.store.buffer import close_failed, fail_record, purge_closed
from station.store.outbox import write_result
from station.store.states import (
    BEFORE_PRINTING,
    PRINTING_OR_LATER,
    SPOIL_CLASSES,
    AttemptState,
    RecordStatus,
    marks,
)


@dataclass(frozen=True)
class OpenAttempt:
    attempt_id: int
    record_id: str
    state: AttemptState
    blank_serial: str | None


def begin_attempt(conn: sqlite3.Connection, record_id: str) -> int:
    now = time.time()
    cur = conn.execute(
        "INSERT INTO attempts(record_id, state, started_at, updated_at, kind) "
        "SELECT ?, ?, ?, ?, kind FROM records WHERE record_id=?",
        (record_id, AttemptState.STARTED, now, now, record_id),
    )
    # 'printing': out of the buffer while a card is in the printer, so no release, drop or
    # lease loss can hand the record to another station mid-card.
    conn.execute(
        "UPDATE records SET attempts=attempts+1, status=? WHERE record_id=?",
        (RecordStatus.PRINTING, record_id),
    )
    return int(cur.lastrowid or 0)


def transition(
    conn: sqlite3.Connection, attempt_id: int, state: AttemptState, serial: str | None = None
) -> None:
    conn.execute(
        "UPDATE attempts SET state=?, blank_serial=COALESCE(?, blank_serial), updated_at=? "
        "WHERE attempt_id=?",
        (state, serial, time.time(), attempt_id),
    )


def transition_through(
    conn: sqlite3.Connection, attempt_id: int, *steps: tuple[AttemptState, str | None]
) -> None:
    """Several transitions (state, serial) in order, in the caller's one transaction."""
    for state, serial in steps:
        transition(conn, attempt_id, state, serial)


def _attempt(conn: sqlite3.Connection, attempt_id: int) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT a.attempt_id, a.record_id, a.state, a.blank_serial, a.started_at, "
        "a.serial_note, r.lease_id, r.attempts, r.crashes FROM attempts a "
        "JOIN records r USING(record_id) "
        "WHERE attempt_id=?",
        (attempt_id,),
    ).fetchone()
    if row is None:
        raise KeyError(Msg("no attempt {attempt}", attempt=attempt_id))
    return row


def finish_good(
    conn: sqlite3.Connection, attempt_id: int, serial: str | None, *, purge: bool = True
) -> None:
    """A good card in the output tray: attempt done, record done, blank used, result.
    ``purge=False`` leaves the sealed payload for a later :func:`purge_closed` (the card
    boundary keeps its durable commit small)."""
    row = _attempt(conn, attempt_id)
    serial = serial or row["blank_serial"]
    transition(conn, attempt_id, AttemptState.DONE, serial)
    conn.execute(
        "UPDATE records SET status=?, closed_at=? WHERE record_id=?",
        (RecordStatus.DONE, time.time(), row["record_id"]),
    )
    if purge:
        purge_closed(conn, row["record_id"])
    conn.execute(
        "INSERT INTO ledger(kind, count, attempt_id, serial, at) VALUES ('used', 1, ?, ?, ?)",
        (attempt_id, serial, time.time()),
    )
    write_result(conn, row, "printed", serial, None)
    audit(conn, "printed", attempt_id=attempt_id, record_id=row["record_id"])


def spoil_attempt(
    conn: sqlite3.Connection,
    attempt_id: int,
    reason: str,
    *,
    max_attempts: int,
    spoil_class: str = "failed print",
    detail: str | None = None,
    cause: str | None = None,
    fault: str | None = None,
    record_caused: bool = False,
) -> RecordStatus:
    """The attempt's blank went to the reject tray, spoiled: written to the ledger with
    its class, detail (jam, step, status word) and ``cause``, and reported. Returns what
    became of the record: queued (retried) or failed (reported).

    The record is failed at once when the failure is ``record_caused``, or when its
    ``fault`` (a fingerprint: step and status word) is the one the record's previous
    spoiled attempt ended with, i.e. the same on a second blank (both blanks then count
    as the record's); else after ``max_attempts`` spoiled blanks."""
    if spoil_class not in SPOIL_CLASSES:
        raise ValueError(f"unknown spoilage class {spoil_class!r} (known: {SPOIL_CLASSES})")
    row = _attempt(conn, attempt_id)
    repeated = fault is not None and _previous_fault(conn, row) == fault
    if repeated or record_caused:
        cause = "record"
    _end(conn, row, AttemptState.REJECTED, reason, fault)
    conn.execute(
        "INSERT INTO ledger(kind, count, attempt_id, serial, reason, class, detail, cause, "
        "at, serial_note) VALUES ('spoiled', 1, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            attempt_id,
            row["blank_serial"],
            reason,
            spoil_class,
            detail or reason,
            cause,
            time.time(),
            None if row["blank_serial"] else row["serial_note"],
        ),
    )
    write_result(conn, row, "spoiled", row["blank_serial"], reason)
    if repeated:
        # The first blank went the same way: it was the record's fault too.
        conn.execute(
            "UPDATE ledger SET cause='record' WHERE kind='spoiled' AND attempt_id IN "
            "(SELECT attempt_id FROM attempts WHERE record_id=? AND fault=?)",
            (row["record_id"], fault),
        )
        close_failed(conn, row, f"record-caused (the same on two blanks): {reason}")
        return RecordStatus.FAILED
    if record_caused:
        close_failed(conn, row, f"record-caused: {reason}")
        return RecordStatus.FAILED
    if row["attempts"] >= max_attempts:
        close_failed(conn, row, f"{max_attempts} attempts failed; last: {reason}")
        return RecordStatus.FAILED
    _requeue(conn, row)
    return RecordStatus.QUEUED


def abort_attempt(conn: sqlite3.Connection, attempt_id: int, reason: str) -> None:
    """The attempt ended before its blank was taken (none used, none spoiled): it does
    not count against the record, which is queued again."""
    row = _attempt(conn, attempt_id)
    _end(conn, row, AttemptState.ABORTED, reason, None)
    conn.execute("UPDATE records SET attempts=attempts-1 WHERE record_id=?", (row["record_id"],))
    _requeue(conn, row)


def _end(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    state: AttemptState,
    reason: str,
    fault: str | None,
) -> None:
    transition(conn, row["attempt_id"], state)
    conn.execute(
        "UPDATE attempts SET reason=?, fault=? WHERE attempt_id=?",
        (reason, fault, row["attempt_id"]),
    )
    event = "rejected" if state is AttemptState.REJECTED else "aborted"
    audit(conn, event, attempt_id=row["attempt_id"], record_id=row["record_id"], detail=reason)


def _requeue(conn: sqlite3.Connection, row: sqlite3.Row) -> None:
    conn.execute(
        "UPDATE records SET status=? WHERE record_id=?", (RecordStatus.QUEUED, row["record_id"])
    )


def _previous_fault(conn: sqlite3.Connection, row: sqlite3.Row) -> str | None:
    """The fault fingerprint of the record's latest earlier spoiled attempt that had one."""
    prev = conn.execute(
        "SELECT fault FROM attempts WHERE record_id=? AND attempt_id<? AND state=? "
        "AND fault IS NOT NULL ORDER BY attempt_id DESC LIMIT 1",
        (row["record_id"], row["attempt_id"], AttemptState.REJECTED),
    ).fetchone()
    return None if prev is None else str(prev[0])


def refuse_started(conn: sqlite3.Connection, attempt_id: int, record_id: str, reason: str) -> None:
    """A started record turned out unprintable before any card moved: no blank used."""
    abort_attempt(conn, attempt_id, "record refused")
    fail_record(conn, record_id, reason)


def open_attempts(conn: sqlite3.Connection) -> list[OpenAttempt]:
    rows = conn.execute(
        "SELECT attempt_id, record_id, state, blank_serial FROM attempts "
        f"WHERE state IN ({marks(BEFORE_PRINTING + PRINTING_OR_LATER)}) "
        "ORDER BY attempt_id",
        BEFORE_PRINTING + PRINTING_OR_LATER,
    ).fetchall()
    return [OpenAttempt(r[0], r[1], AttemptState(r[2]), r[3]) for r in rows]


def needs_inspection(conn: sqlite3.Connection, attempt_id: int, reason: str) -> None:
    row = _attempt(conn, attempt_id)
    transition(conn, attempt_id, AttemptState.NEEDS_INSPECTION)
    conn.execute("UPDATE attempts SET reason=? WHERE attempt_id=?", (reason, attempt_id))
    conn.execute(
        "UPDATE records SET status=? WHERE record_id=?", (RecordStatus.INSPECTION, row["record_id"])
    )
    audit(
        conn, "needs_inspection", attempt_id=attempt_id, record_id=row["record_id"], detail=reason
    )


def inspection_list(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT attempt_id, record_id, blank_serial, reason, updated_at FROM attempts "
        "WHERE state=? ORDER BY attempt_id",
        (AttemptState.NEEDS_INSPECTION,),
    ).fetchall()
    return [dict(r) for r in rows]


def resolve(
    conn: sqlite3.Connection,
    attempt_id: int,
    *,
    good: bool,
    serial: str | None,
    max_attempts: int,
    spoil_class: str = "physically damaged",
) -> RecordStatus:
    """A technician's verdict on a needs_inspection attempt: what became of the record."""
    row = _attempt(conn, attempt_id)
    if row["state"] != AttemptState.NEEDS_INSPECTION:
        raise ValueError(
            Msg(
                "attempt {attempt} is {state}, not needs_inspection",
                attempt=attempt_id,
                state=row["state"],
            )
        )
    audit(
        conn,
        "resolved",
        attempt_id=attempt_id,
        record_id=row["record_id"],
        detail="good" if good else "spoiled",
    )
    if good:
        finish_good(conn, attempt_id, serial)
        return RecordStatus.DONE
    return spoil_attempt(
        conn,
        attempt_id,
        "spoiled (technician inspection)",
        max_attempts=max_attempts,
        spoil_class=spoil_class,
    )
