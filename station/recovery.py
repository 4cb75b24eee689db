"""Recovery after a crash, a kill or a power cut: every attempt left open is settled by its
last journaled state and by where the printer says the card is, so that the blank ledger
stays equal to the hopper and the trays, and the station always comes up."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from drivers.base import CardPosition, PrinterStatus
from drivers.errors import DeviceError
from station.i18n import Msg
from station.outcome import Outcome
from station.status import Category
from station.store import attempts, buffer
from station.store.states import (
    BEFORE_PRINTING,
    PRINTING_OR_LATER,
    AttemptState,
    CardOutcome,
    spoiled_outcome,
)

if TYPE_CHECKING:
    from drivers.base import CardPrinter
    from station.config import PipelineConfig
    from station.status import StatusBoard
    from station.store.db import Database


class CardHost(Protocol):
    """What recovery needs of the pipeline it settles cards for."""

    db: Database
    printer: CardPrinter
    board: StatusBoard
    cfg: PipelineConfig


log = structlog.get_logger("station.recovery")

#: Why a blank's serial is unknown, by the state its card was sent away from.
SERIAL_UNKNOWN = {
    AttemptState.STARTED: "unknown: feed jam before the chip was read",
    AttemptState.FED: "unknown: the chip failed before its serial was read",
    AttemptState.ENCODED: "unknown: the chip failed before its serial was read",
}
RESTART_UNKNOWN = "unknown: power cut before the chip was read"

Pause = tuple[Category, str, str]


@dataclass(frozen=True)
class OpenCard:
    """An attempt as recovery needs it: its state and whether its card was being rejected."""

    attempt_id: int
    record_id: str
    state: AttemptState
    reject_from: AttemptState | None


_COLUMNS = "attempt_id, record_id, state, reject_from"


def _card(row: tuple[int, str, str, str | None]) -> OpenCard:
    return OpenCard(
        row[0], row[1], AttemptState(row[2]), None if row[3] is None else AttemptState(row[3])
    )


def open_cards(conn: sqlite3.Connection) -> list[OpenCard]:
    states = BEFORE_PRINTING + PRINTING_OR_LATER
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM attempts WHERE state IN ({','.join('?' * len(states))}) "
        "ORDER BY attempt_id",
        states,
    ).fetchall()
    return [_card(r) for r in rows]


def last_blank_holder(conn: sqlite3.Connection) -> OpenCard | None:
    """The last attempt that took a blank and is closed: the owner of a card left behind."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM attempts WHERE state IN (?,?,?) ORDER BY attempt_id DESC LIMIT 1",
        (AttemptState.DONE, AttemptState.REJECTED, AttemptState.NEEDS_INSPECTION),
    ).fetchone()
    return None if row is None else _card(row)


def early_inspections(conn: sqlite3.Connection) -> list[OpenCard]:
    """Attempts waiting for a person whose card was sent away before ``printing``."""
    states = BEFORE_PRINTING
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM attempts WHERE state=? "
        f"AND reject_from IN ({','.join('?' * len(states))}) ORDER BY attempt_id",
        (AttemptState.NEEDS_INSPECTION, *states),
    ).fetchall()
    return [_card(r) for r in rows]


def mark_reject(
    conn: sqlite3.Connection, attempt_id: int, state: AttemptState, serial: str | None, note: str
) -> None:
    """Journal that the card of ``attempt_id`` goes to the reject tray from ``state``; the
    blank's serial if it was not known yet, else ``note`` says why it is unknown."""
    conn.execute(
        "UPDATE attempts SET reject_from=?, blank_serial=COALESCE(blank_serial, ?), "
        "serial_note=CASE WHEN COALESCE(blank_serial, ?) IS NULL THEN ? END "
        "WHERE attempt_id=?",
        (state, serial, serial, note, attempt_id),
    )


class Recovery:
    """Settles what a crash left open, now or as soon as the printer allows (see module)."""

    def __init__(self, pipeline: CardHost) -> None:
        self.pipeline = pipeline
        self.db = pipeline.db
        self.printer = pipeline.printer
        #: What still waits for the printer (shown as the station's state), or None.
        self.pending: Pause | None = None
        self._logged: Pause | None = None  # the wait last logged (once, not every retry)
        self._purged = False

    # ------------------------------------------------------------------ entry points
    def run(self) -> list[Outcome]:
        """Settle every open attempt and any card left in the printer that the device now
        allows; :attr:`pending` says what still waits. Never raises a DeviceError."""
        if not self._purged:
            self.db.run(buffer.purge_closed)
            self._purged = True
        self.pending = None
        outcomes: list[Outcome] = []
        try:
            self._settle_all(outcomes)
        except DeviceError as exc:
            self.pending = (
                Category.ERROR,
                Msg("recovery waits for the printer: {error}", error=str(exc)),
                Msg(exc.action),
            )
        for out in outcomes:
            log.warning(
                "recovered_attempt", record_id=out.record_id, result=out.result, reason=out.reason
            )
        if outcomes:
            self.pipeline.board.set(recovered=len(outcomes))
        if self.pending and self.pending != self._logged:
            log.warning("recovery_waiting", detail=self.pending[1], action=self.pending[2])
        self._logged = self.pending
        return outcomes

    def pause(self) -> Pause | None:
        """Between cards: finish what recovery could not do yet; why no card may start."""
        self.run()
        return self.pending

    def card_leaving(
        self, attempt_id: int, state: AttemptState, unknown: str | None = None
    ) -> None:
        """Journal durably, before the card of ``attempt_id`` is sent to the reject tray,
        that it leaves from ``state`` (with its serial if the printer knows it)."""
        serial: str | None = None
        with contextlib.suppress(DeviceError):  # unknown then, with the reason why
            serial = self.printer.status().card_serial
        note = unknown or SERIAL_UNKNOWN.get(state, "unknown: not read from the chip")
        self.db.run(lambda c: mark_reject(c, attempt_id, state, serial, note))

    # ------------------------------------------------------------------ settling
    def _settle_all(self, outcomes: list[Outcome]) -> None:
        opened = self.db.run(open_cards, durable=False)
        try:
            status = self.printer.status()
        except DeviceError:
            if not opened:
                return  # nothing waits for it: the worker reports the printer itself
            raise
        for i, att in enumerate(opened):
            # One card at a time: a card in the path is the newest open attempt's.
            in_path = i == len(opened) - 1 and status.card is not CardPosition.NONE
            out = self._settle(att, in_path, status)
            if out is None:
                return
            outcomes.append(out)
        if opened:  # a card may have moved
            status = self.printer.status()
        elif status.card is not CardPosition.NONE:
            out = self._stray(status)
            if out is None and self.pending:
                return
            if out is not None:
                outcomes.append(out)
            status = self.printer.status()
        if status.card is CardPosition.NONE:
            outcomes.extend(
                self._spoil(att, "failed encode", "the card never reached printing: spoiled")
                for att in self.db.run(early_inspections, durable=False)
            )

    def _settle(self, att: OpenCard, in_path: bool, status: PrinterStatus) -> Outcome | None:
        early = att.state in BEFORE_PRINTING
        klass = "failed encode" if early else "failed print"
        if in_path:
            if not self._reject(att, status, RESTART_UNKNOWN):
                return None
            return self._spoil(
                att,
                klass,
                Msg(
                    "restart at {state}: the card in the printer was moved to the reject tray",
                    state=str(att.state),
                ),
            )
        if att.reject_from is not None or (early and att.state is not AttemptState.STARTED):
            return self._spoil(
                att,
                klass,
                Msg(
                    "restart at {state} after the card left for the reject tray",
                    state=str(att.state),
                ),
            )
        if early:
            self.db.run(
                lambda c: attempts.abort_attempt(
                    c, att.attempt_id, "restart before the blank was fed"
                )
            )
            return self._outcome(att, CardOutcome.ABORTED, "restart before the blank was fed")
        why = Msg(
            "restart after printing began (last state {state}): look in the output "
            "and reject trays",
            state=att.state,
        )
        self.db.run(lambda c: attempts.needs_inspection(c, att.attempt_id, why))
        return self._outcome(att, CardOutcome.NEEDS_INSPECTION, why)

    def _stray(self, status: PrinterStatus) -> Outcome | None:
        """A card in the path that no open attempt owns: to the reject tray, charged once."""
        owner = self.db.run(last_blank_holder, durable=False)
        if owner is None or owner.state is not AttemptState.NEEDS_INSPECTION:
            # Already accounted for (done, or resolved spoiled by a person), or a card
            # that is not the station's: moved away, no ledger row.
            if self._reject(None, status, RESTART_UNKNOWN):
                log.warning(
                    "stray_card_rejected",
                    owner=None if owner is None else owner.attempt_id,
                    serial=status.card_serial,
                )
            return None
        if not self._reject(owner, status, RESTART_UNKNOWN):
            return None
        early = owner.reject_from in BEFORE_PRINTING
        return self._spoil(
            owner,
            "failed encode" if early else "failed print",
            "the card left in the printer was moved to the reject tray",
        )

    def _reject(self, att: OpenCard | None, status: PrinterStatus, unknown: str) -> bool:
        """Send the card in the path to the reject tray, journaled first; False (and
        :attr:`pending`) when the printer does not allow it now."""
        if att is not None:
            self.card_leaving(att.attempt_id, att.reject_from or att.state, unknown)
        try:
            self.printer.reject()
        except DeviceError as exc:
            self.pending = (
                Category.PAUSED,
                Msg("recovery waits: a card is in the printer ({error})", error=str(exc)),
                Msg(
                    "{action}; the card then goes to the reject tray by itself",
                    action=Msg(exc.action),
                ),
            )
            return False
        return True

    def _spoil(self, att: OpenCard, klass: str, why: str) -> Outcome:
        became = self.db.run(
            lambda c: attempts.spoil_attempt(
                c,
                att.attempt_id,
                why,
                max_attempts=self.pipeline.cfg.max_attempts,
                spoil_class=klass,
                detail=f"recovery: {why}",
            )
        )
        return self._outcome(att, spoiled_outcome(became), why)

    @staticmethod
    def _outcome(att: OpenCard, result: CardOutcome, reason: str) -> Outcome:
        return Outcome(att.record_id, result, reason)
