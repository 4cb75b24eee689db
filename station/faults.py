"""Who a failure is charged to, and the records that keep killing the daemon."""

from __future__ import annotations

import faulthandler
import os
import sqlite3
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from drivers.errors import ChipDead, ChipStatusError, DeviceError
from drivers.iso7816 import CLA_CHAINING
from drivers.script import _PLACEHOLDER, INS_SELECT, INS_UPDATE_BINARY, ChipStep, ScriptError
from station.store import audit, buffer, states

#: Crashes in a row with the same record in hand that make it poison.
POISON_CRASHES = 2
#: Where a fatal signal leaves its traceback (file and line names only: no values).
CRASH_LOG = "crash.log"


def arm_crash_log(state_dir: Path) -> TextIO:
    """Have a fatal signal write every thread's traceback to ``crash.log`` (0600); the
    daemon keeps the returned file open for its life."""
    fd = os.open(state_dir / CRASH_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    out = os.fdopen(fd, "w")
    faulthandler.enable(file=out, all_threads=True)
    return out


def disarm_crash_log(out: TextIO) -> None:
    """A clean stop: no more tracebacks to ``crash.log``."""
    faulthandler.disable()
    out.close()


def take_crash_log(state_dir: Path) -> bool:
    """Whether the last run died of a fatal signal; its traceback is kept as
    ``crash.log.last`` for the engineers and ``crash.log`` starts empty again."""
    path = state_dir / CRASH_LOG
    try:
        crashed = path.stat().st_size > 0
    except FileNotFoundError:
        return False
    if crashed:
        path.replace(path.with_suffix(".log.last"))
    return crashed


class ScriptRefused(ChipStatusError):
    """The card refused a step of the record's own chip script, or its read-back."""


@dataclass(frozen=True)
class Failure:
    """How a failed attempt is charged: ``cause`` (one of :data:`states.CAUSES`), the
    ``fault`` fingerprint compared with the record's previous blank, and whether the
    record fails at once."""

    cause: str
    fault: str | None = None
    record_caused: bool = False


def classify(stage: str, exc: BaseException) -> Failure:
    """The cause of ``exc`` raised at ``stage`` of a card."""
    if isinstance(exc, ScriptError):
        return Failure("record", record_caused=True)
    if isinstance(exc, ScriptRefused):
        return Failure("blank", fault=f"chip script: {exc}")
    if isinstance(exc, ChipDead):
        return Failure("blank")
    if isinstance(exc, DeviceError):
        return Failure("device")
    return Failure("device", fault=f"unexpected {type(exc).__name__} at {stage} ({where(exc)})")


def script_fault(steps: list[ChipStep], *, sam: bool) -> str | None:
    """What makes a chip script fail its own checks, found before a blank is fed (the
    checks :class:`~drivers.script.ScriptRunner` would make half-way through a card):
    a SAM step without a SAM, a placeholder used before it is captured, an UPDATE
    BINARY by short EF id, chained, or before any SELECT. None: it may run."""
    captured: set[str] = set()
    selected = False
    for i, step in enumerate(steps):
        if step.target == "sam" and not sam:
            return f"step {i} needs the SAM, but no SAM channel is configured"
        missing = [n for n in _PLACEHOLDER.findall(step.apdu) if n not in captured]
        if missing:
            return f"step {i}: placeholder {{{missing[0]}}} was not captured before"
        fixed = step.decoded.fixed
        if fixed is not None and step.target == "card":
            cmd = fixed[0]
            selected = selected or cmd.ins == INS_SELECT
            if cmd.ins == INS_UPDATE_BINARY:
                if cmd.p1 & 0x80 or cmd.cla & CLA_CHAINING:
                    return f"step {i}: UPDATE BINARY by short EF id or chaining"
                if not selected:
                    return f"step {i}: UPDATE BINARY before any SELECT of a file"
        if step.capture is not None:
            captured.add(step.capture)
    return None


def where(exc: BaseException) -> str:
    """The innermost frame of ``exc`` as ``file:line``: safe to log (never a value)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}"


def count_crashes(conn: sqlite3.Connection, *, crashed: bool) -> list[str]:
    """At start-up, before recovery: count a crash for each record whose attempt was
    left open (the record in hand when the daemon died), when the daemon died of a
    fatal signal (``crashed``: :func:`take_crash_log`). Crashes count in a row only at
    the same step of a new attempt each time (one killed again during start-up, before
    recovery settled the attempt, is not counted twice); every other record's count
    starts again from zero. Returns the records in
    hand."""
    open_states = states.BEFORE_PRINTING + states.PRINTING_OR_LATER
    in_hand = conn.execute(
        "SELECT a.record_id, a.state, a.attempt_id, r.crashes, r.crash_state FROM attempts a "
        f"JOIN records r USING(record_id) WHERE a.state IN ({states.marks(open_states)})",
        open_states,
    ).fetchall()
    ids = [r[0] for r in in_hand]
    conn.execute(
        f"UPDATE records SET crashes=0, crash_state=NULL WHERE crashes>0 "
        f"AND record_id NOT IN ({states.marks(tuple(ids))})",
        ids,
    )
    if not crashed:
        return ids
    for rid, state, attempt_id, crashes, last in in_hand:
        last_state, _, last_attempt = (last or "").partition("#")
        if last_attempt == str(attempt_id):
            continue  # this attempt's crash is counted already
        n = crashes + 1 if last_state == state else 1
        conn.execute(
            "UPDATE records SET crashes=?, crash_state=? WHERE record_id=?",
            (n, f"{state}#{attempt_id}", rid),
        )
        audit.audit(
            conn,
            "crashed_in_hand",
            record_id=rid,
            attempt_id=attempt_id,
            detail=f"the daemon died with this record in hand at {state} "
            f"({n} in a row at that step)",
        )
    return ids


def quarantine_poison(conn: sqlite3.Connection) -> list[str]:
    """After recovery: fail the queued records in hand at :data:`POISON_CRASHES`
    crashes in a row, with the reason, so the daemon never loops on them."""
    rows = [
        r[0]
        for r in conn.execute(
            "SELECT record_id FROM records WHERE crashes>=? AND status='queued'", (POISON_CRASHES,)
        )
    ]
    for rid in rows:
        buffer.fail_record(
            conn,
            rid,
            f"poison: the station stopped {POISON_CRASHES} times in "
            "a row with this record in hand; not printed again",
        )
    return rows
