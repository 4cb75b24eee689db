"""Every state change of the station as one function over a connection in a transaction.

The daemon runs these on the database owner thread (``Database.run``); CLI commands run
them through :func:`station.store.db.transaction` on their own connection. A card's result row
and its outbox row are always written by the same function, hence the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

from station.i18n import Msg
from station.link.protocol import CardResult, Outcome

# Attempt states, in order (DESIGN.md); terminal ones after.
BEFORE_PRINTING = ("started", "fed", "encoded", "verified")
PRINTING_OR_LATER = ("printing", "printed", "ejected")
TERMINAL = ("done", "rejected", "aborted", "needs_inspection")
#: States whose blank is neither used nor spoiled yet.
HOLDING_A_BLANK = (*BEFORE_PRINTING, *PRINTING_OR_LATER, "needs_inspection")


def _marks(values: tuple[object, ...]) -> str:
    """SQL placeholders for ``IN (...)`` over ``values``."""
    return ",".join("?" * len(values))


@dataclass(frozen=True)
class Lease:
    record_id: str
    lease_id: str
    deadline: float  # wall clock
    mono: float
    boot_id: str


@dataclass(frozen=True)
class BufferedRecord:
    record_id: str
    lease_id: str
    payload: bytes
    attempts: int


@dataclass(frozen=True)
class OpenAttempt:
    attempt_id: int
    record_id: str
    state: str
    blank_serial: str | None


def audit(
    conn: sqlite3.Connection,
    event: str,
    *,
    attempt_id: int | None = None,
    record_id: str | None = None,
    detail: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO audit(at, event, attempt_id, record_id, detail) VALUES (?,?,?,?,?)",
        (time.time(), event, attempt_id, record_id, detail),
    )


# ----------------------------------------------------------------------------- buffer
def add_record(
    conn: sqlite3.Connection,
    lease: Lease,
    *,
    kind: str,
    urgent: bool,
    enrolled_at: str,
    payload: bytes,
    nik_hash: str | None = None,
) -> bool:
    """Buffer a leased record. A record still queued here only gets its new lease; one
    dropped or released earlier (its lease ran out, or went back) is buffered again with
    the new lease; one printed, failed or in the printer is left as it is."""
    cur = conn.execute(
        "UPDATE records SET lease_id=?, lease_deadline=?, lease_mono=?, boot_id=? "
        "WHERE record_id=? AND status='queued'",
        (lease.lease_id, lease.deadline, lease.mono, lease.boot_id, lease.record_id),
    )
    if cur.rowcount:
        return False
    cur = conn.execute(
        "UPDATE records SET lease_id=?, lease_deadline=?, lease_mono=?, boot_id=?, "
        "status='queued', payload=?, closed_at=NULL "
        "WHERE record_id=? AND status IN ('dropped','released')",
        (lease.lease_id, lease.deadline, lease.mono, lease.boot_id, payload, lease.record_id),
    )
    if not cur.rowcount:
        cur = conn.execute(
            "INSERT OR IGNORE INTO records(record_id, lease_id, lease_deadline, lease_mono, "
            "boot_id, kind, urgent, enrolled_at, payload, received_at, nik_hash) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                lease.record_id,
                lease.lease_id,
                lease.deadline,
                lease.mono,
                lease.boot_id,
                kind,
                int(urgent),
                enrolled_at,
                payload,
                time.time(),
                nik_hash,
            ),
        )
    if cur.rowcount:
        audit(conn, "leased", record_id=lease.record_id)
    return bool(cur.rowcount)


def next_records(
    conn: sqlite3.Connection,
    *,
    usable: Any,
    kinds: tuple[str, ...] = ("first", "reprint"),
    urgent_only: bool = False,
    count: int = 1,
) -> list[BufferedRecord]:
    """The next ``count`` queued records by policy (urgent, first cards, earliest
    enrolment) among ``kinds`` (and only urgent ones if asked) whose lease
    ``usable(Lease)`` accepts; records whose lease is no longer usable are dropped."""
    picked: list[BufferedRecord] = []
    while True:
        # 'first' sorts before 'reprint': the order is the index records_next's, no sort.
        rows = conn.execute(
            "SELECT record_id, lease_id, lease_deadline, lease_mono, boot_id, attempts "
            f"FROM records WHERE status='queued' AND kind IN ({_marks(kinds)}) "
            f"{'AND urgent=1 ' if urgent_only else ''}"
            "ORDER BY urgent DESC, kind, enrolled_at LIMIT ? OFFSET ?",
            (*kinds, count - len(picked) + 2, len(picked)),
        ).fetchall()
        dropped = False
        for row in rows:
            if len(picked) == count:
                return picked
            lease = Lease(row[0], row[1], row[2], row[3], row[4])
            if usable(lease):
                payload = conn.execute(
                    "SELECT payload FROM records WHERE record_id=?", (row[0],)
                ).fetchone()[0]
                picked.append(BufferedRecord(row[0], row[1], payload, row[5]))
            else:
                drop_record(conn, row[0], "lease expired before printing")
                dropped = True
        if len(picked) == count or not dropped:  # else look past the dropped ones
            return picked


def drop_record(conn: sqlite3.Connection, record_id: str, reason: str) -> None:
    """Forget a record unprinted (lease expired or lost): the centre leases it again."""
    conn.execute(
        "UPDATE records SET status='dropped', payload=NULL, closed_at=? "
        "WHERE record_id=? AND status='queued'",
        (time.time(), record_id),
    )
    audit(conn, "dropped", record_id=record_id, detail=reason)


# ----------------------------------------------------------------------------- attempts
def begin_attempt(conn: sqlite3.Connection, record_id: str) -> int:
    now = time.time()
    cur = conn.execute(
        "INSERT INTO attempts(record_id, state, started_at, updated_at, kind) "
        "SELECT ?, 'started', ?, ?, kind FROM records WHERE record_id=?",
        (record_id, now, now, record_id),
    )
    # 'printing': out of the buffer while a card is in the printer, so no release, drop or
    # lease loss can hand the record to another station mid-card.
    conn.execute(
        "UPDATE records SET attempts=attempts+1, status='printing' WHERE record_id=?", (record_id,)
    )
    return int(cur.lastrowid or 0)


def transition(
    conn: sqlite3.Connection, attempt_id: int, state: str, serial: str | None = None
) -> None:
    conn.execute(
        "UPDATE attempts SET state=?, blank_serial=COALESCE(?, blank_serial), updated_at=? "
        "WHERE attempt_id=?",
        (state, serial, time.time(), attempt_id),
    )


def transition_through(
    conn: sqlite3.Connection, attempt_id: int, *steps: tuple[str, str | None]
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


def _outbox(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    outcome: Outcome,
    serial: str | None,
    reason: str | None,
) -> None:
    result = CardResult(
        result_id=uuid.uuid4().hex,
        record_id=row["record_id"],
        lease_id=row["lease_id"],
        outcome=outcome,
        card_serial=serial,
        started_at=_utc(row["started_at"]),
        finished_at=_utc(time.time()),
        reason=reason,
    )
    conn.execute(
        "INSERT INTO outbox(result_id, body, created_at) VALUES (?,?,?)",
        (result.result_id, result.model_dump_json(), time.time()),
    )


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def finish_good(
    conn: sqlite3.Connection, attempt_id: int, serial: str | None, *, purge: bool = True
) -> None:
    """A good card in the output tray: attempt done, record done, blank used, result.
    ``purge=False`` leaves the sealed payload for a later :func:`purge_closed` (the card
    boundary keeps its durable commit small)."""
    row = _attempt(conn, attempt_id)
    serial = serial or row["blank_serial"]
    transition(conn, attempt_id, "done", serial)
    conn.execute(
        "UPDATE records SET status='done', closed_at=? WHERE record_id=?",
        (time.time(), row["record_id"]),
    )
    if purge:
        purge_closed(conn, row["record_id"])
    conn.execute(
        "INSERT INTO ledger(kind, count, attempt_id, serial, at) VALUES ('used', 1, ?, ?, ?)",
        (attempt_id, serial, time.time()),
    )
    _outbox(conn, row, "printed", serial, None)
    audit(conn, "printed", attempt_id=attempt_id, record_id=row["record_id"])


#: Records whose sealed personal data is still needed (to print, or after inspection).
OPEN_STATUSES = ("queued", "printing", "inspection")


def purge_closed(conn: sqlite3.Connection, record_id: str | None = None) -> int:
    """Overwrite (secure_delete) the sealed payload of ``record_id`` if it is closed, or
    of every closed record (start-up: purges a crash overtook). Returns how many."""
    only = "" if record_id is None else " AND record_id=?"
    return conn.execute(
        "UPDATE records SET payload=NULL WHERE payload IS NOT NULL "
        f"AND status NOT IN ({_marks(OPEN_STATUSES)}){only}",
        (*OPEN_STATUSES, *(() if record_id is None else (record_id,))),
    ).rowcount


SPOIL_CLASSES = ("failed encode", "failed print", "physically damaged", "chip dead/invalid")


#: Who a spoiled blank is charged to (``station report``): the record's data, the blank
#: itself (its chip), or the printer/encoder; NULL in the ledger: not known (power cut,
#: inspection).
CAUSES = ("record", "blank", "device")


def reject_attempt(
    conn: sqlite3.Connection,
    attempt_id: int,
    reason: str,
    *,
    spoiled: bool,
    max_attempts: int,
    spoil_class: str = "failed print",
    detail: str | None = None,
    cause: str | None = None,
    fault: str | None = None,
    record_caused: bool = False,
) -> str:
    """The card (if any) went to the reject tray. Returns what became of the record:
    ``queued`` (retried) or ``failed`` (reported). A spoiled blank is written to the
    ledger with its class, detail (jam, step, status word) and ``cause``.

    The record is failed at once when the failure is ``record_caused``, or when its
    ``fault`` (a fingerprint: step and status word) is the one the record's previous
    spoiled attempt ended with, i.e. the same on a second blank (both blanks then count
    as the record's); else after ``max_attempts`` spoiled blanks."""
    if spoil_class not in SPOIL_CLASSES:
        raise ValueError(f"unknown spoilage class {spoil_class!r} (known: {SPOIL_CLASSES})")
    row = _attempt(conn, attempt_id)
    repeated = fault is not None and spoiled and _previous_fault(conn, row) == fault
    if repeated or record_caused:
        cause = "record"
    transition(conn, attempt_id, "rejected" if spoiled else "aborted")
    conn.execute(
        "UPDATE attempts SET reason=?, fault=? WHERE attempt_id=?", (reason, fault, attempt_id)
    )
    if spoiled:
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
        _outbox(conn, row, "spoiled", row["blank_serial"], reason)
    else:
        conn.execute(
            "UPDATE records SET attempts=attempts-1 WHERE record_id=?", (row["record_id"],)
        )
    audit(
        conn,
        "rejected" if spoiled else "aborted",
        attempt_id=attempt_id,
        record_id=row["record_id"],
        detail=reason,
    )
    if repeated:
        # The first blank went the same way: it was the record's fault too.
        conn.execute(
            "UPDATE ledger SET cause='record' WHERE kind='spoiled' AND attempt_id IN "
            "(SELECT attempt_id FROM attempts WHERE record_id=? AND fault=?)",
            (row["record_id"], fault),
        )
        _close_failed(conn, row, f"record-caused (the same on two blanks): {reason}")
        return "failed"
    if record_caused:
        _close_failed(conn, row, f"record-caused: {reason}")
        return "failed"
    if spoiled and row["attempts"] >= max_attempts:
        _close_failed(conn, row, f"{max_attempts} attempts failed; last: {reason}")
        return "failed"
    conn.execute("UPDATE records SET status='queued' WHERE record_id=?", (row["record_id"],))
    return "queued"


def _previous_fault(conn: sqlite3.Connection, row: sqlite3.Row) -> str | None:
    """The fault fingerprint of the record's latest earlier spoiled attempt that had one."""
    prev = conn.execute(
        "SELECT fault FROM attempts WHERE record_id=? AND attempt_id<? AND state='rejected' "
        "AND fault IS NOT NULL ORDER BY attempt_id DESC LIMIT 1",
        (row["record_id"], row["attempt_id"]),
    ).fetchone()
    return None if prev is None else str(prev[0])


def fail_record(conn: sqlite3.Connection, record_id: str, reason: str) -> bool:
    """A record whose data is bad: never printed, reported failed so the centre fixes it.
    A record already closed (done or failed) is left as it is: one result per record,
    never a ``failed`` after a ``printed``; False then."""
    row = conn.execute(
        "SELECT record_id, lease_id, received_at AS started_at FROM records WHERE record_id=?"
        " AND status NOT IN ('done','failed')",
        (record_id,),
    ).fetchone()
    if row is None:
        audit(conn, "fail_ignored", record_id=record_id, detail=f"already closed: {reason}")
        return False
    _close_failed(conn, row, reason)
    return True


def refuse_started(conn: sqlite3.Connection, attempt_id: int, record_id: str, reason: str) -> None:
    """A started record turned out unprintable before any card moved: no blank used."""
    reject_attempt(conn, attempt_id, "record refused", spoiled=False, max_attempts=1)
    fail_record(conn, record_id, reason)


def _close_failed(conn: sqlite3.Connection, row: sqlite3.Row, reason: str) -> None:
    conn.execute(
        "UPDATE records SET status='failed', payload=NULL, closed_at=? WHERE record_id=?",
        (time.time(), row["record_id"]),
    )
    _outbox(conn, row, "failed", None, reason)
    audit(conn, "failed", record_id=row["record_id"], detail=reason)


def open_attempts(conn: sqlite3.Connection) -> list[OpenAttempt]:
    rows = conn.execute(
        "SELECT attempt_id, record_id, state, blank_serial FROM attempts "
        f"WHERE state IN ({_marks(BEFORE_PRINTING + PRINTING_OR_LATER)}) "
        "ORDER BY attempt_id",
        BEFORE_PRINTING + PRINTING_OR_LATER,
    ).fetchall()
    return [OpenAttempt(*r) for r in rows]


def needs_inspection(conn: sqlite3.Connection, attempt_id: int, reason: str) -> None:
    row = _attempt(conn, attempt_id)
    transition(conn, attempt_id, "needs_inspection")
    conn.execute("UPDATE attempts SET reason=? WHERE attempt_id=?", (reason, attempt_id))
    conn.execute("UPDATE records SET status='inspection' WHERE record_id=?", (row["record_id"],))
    audit(
        conn, "needs_inspection", attempt_id=attempt_id, record_id=row["record_id"], detail=reason
    )


def inspection_list(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT attempt_id, record_id, blank_serial, reason, updated_at FROM attempts "
        "WHERE state='needs_inspection' ORDER BY attempt_id"
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
) -> str:
    """A technician's verdict on a needs_inspection attempt."""
    row = _attempt(conn, attempt_id)
    if row["state"] != "needs_inspection":
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
        return "printed"
    return reject_attempt(
        conn,
        attempt_id,
        "spoiled (technician inspection)",
        spoiled=True,
        max_attempts=max_attempts,
        spoil_class=spoil_class,
    )


# ----------------------------------------------------------------------------- outbox
def pending_results(conn: sqlite3.Connection, limit: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT result_id, body FROM outbox WHERE acked_at IS NULL ORDER BY created_at LIMIT ?",
        (limit,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def ack_results(conn: sqlite3.Connection, result_ids: list[str]) -> None:
    now = time.time()
    conn.executemany(
        "UPDATE outbox SET acked_at=? WHERE result_id=? AND acked_at IS NULL",
        [(now, rid) for rid in result_ids],
    )


def settle_refused(conn: sqlite3.Connection, refused: dict[str, str]) -> None:
    """Results the centre will never take (not this station's lease, ...): out of the
    outbox, each kept in the audit with the centre's reason."""
    ack_results(conn, list(refused))
    for result_id, reason in refused.items():
        row = conn.execute(
            "SELECT json_extract(body, '$.record_id') FROM outbox WHERE result_id=?", (result_id,)
        ).fetchone()
        audit(
            conn,
            "result_refused",
            record_id=row[0] if row else None,
            detail=f"{result_id}: {reason[:300]}",
        )


# ----------------------------------------------------------------------------- blanks
def ledger_totals(conn: sqlite3.Connection) -> dict[str, int]:
    totals = {"received": 0, "used": 0, "spoiled": 0, "adjusted": 0}
    for kind, total in conn.execute("SELECT kind, total FROM ledger_sums"):
        totals[kind] = int(total)
    by_state = dict(
        conn.execute(
            f"SELECT state, COUNT(*) FROM attempts WHERE state IN ({_marks(HOLDING_A_BLANK)}) "
            "GROUP BY state",
            HOLDING_A_BLANK,
        ).fetchall()
    )
    totals["inspection"] = int(by_state.pop("needs_inspection", 0))
    totals["in_printer"] = int(sum(by_state.values()))
    totals["in_stock"] = (
        totals["received"]
        + totals["adjusted"]
        - totals["used"]
        - totals["spoiled"]
        - totals["in_printer"]
        - totals["inspection"]
    )
    return totals


def print_rate_per_hour(conn: sqlite3.Connection, last: int = 50) -> float | None:
    """Good cards an hour at the printer's measured pace (median time of the last good
    cards, start to done), or None before five cards have been printed."""
    rows = [
        r[0]
        for r in conn.execute(
            "SELECT updated_at - started_at FROM attempts WHERE state='done' "
            "ORDER BY attempt_id DESC LIMIT ?",
            (last,),
        )
    ]
    if len(rows) < 5:
        return None
    rows.sort()
    return 3600.0 / max(float(rows[len(rows) // 2]), 1e-3)


def counts(conn: sqlite3.Connection, midnight: float | None = None) -> dict[str, int]:
    """What the status line and the heartbeat show, straight from the tables.
    ``midnight``: start of the office's day (default: the machine's local midnight)."""
    if midnight is None:
        midnight = time.mktime((*time.localtime()[:3], 0, 0, 0, 0, 0, -1))
    out = ledger_totals(conn)
    for key, sql, args in (
        ("buffered", "SELECT COUNT(*) FROM records WHERE status='queued'", ()),
        ("outbox", "SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL", ()),
        (
            "cards_today",
            "SELECT COUNT(*) FROM attempts WHERE state='done' AND updated_at>=?",
            (midnight,),
        ),
    ):
        out[key] = int(conn.execute(sql, args).fetchone()[0])
    return out


# ----------------------------------------------------------------------------- status
def set_status(conn: sqlite3.Connection, **values: Any) -> None:
    now = time.time()
    conn.executemany(
        "INSERT INTO status(key, value, at) VALUES (?,?,?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value, at=excluded.at",
        [(k, json.dumps(v), now) for k, v in values.items()],
    )


def get_status(conn: sqlite3.Connection) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM status")}
