"""One card through the devices and the card state machine (recovery: station/recovery.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property

import structlog

from drivers.base import (
    CardPosition,
    CardPrinter,
    ChipChannel,
    PrinterState,
    PrinterStatus,
)
from drivers.errors import (
    CardJam,
    ChipDead,
    ChipError,
    ChipStatusError,
    CoverOpen,
    DeviceError,
    DeviceOffline,
    FeederEmpty,
    RibbonOut,
)
from drivers.script import ScriptRunner, read_chip_serial
from station import faults, policy
from station.boot import lease_check
from station.config import PipelineConfig
from station.faces.prefetch import FacePrefetcher
from station.faults import ScriptRefused
from station.i18n import N_, Msg, stored
from station.outcome import GoodCard, Outcome
from station.quiet import QuietWindow
from station.records import (
    PrintReadyRecord,
    RecordError,
)
from station.recovery import Recovery
from station.status import PRINTER_WORDS, Category, StatusBoard
from station.store import attempts, buffer, figures
from station.store.db import Database
from station.store.states import AttemptState, CardOutcome, spoiled_outcome

log = structlog.get_logger("station.pipeline")


@dataclass(frozen=True)
class Started:
    """A record picked by policy with its attempt journaled ``started`` (blank reserved)."""

    buffered: buffer.BufferedRecord
    attempt: int
    #: The record expected after this one (its face is prepared meanwhile).
    upcoming: buffer.BufferedRecord | None = None


@dataclass(frozen=True)
class Hold:
    """Nothing may start now, by the office's rules: ``reason`` is no_blanks, quota or
    reserve; ``message`` and ``action`` are what ``station status`` shows."""

    reason: str
    message: str
    action: str = ""

    def state(self) -> tuple[Category, str, str]:
        return (Category.PAUSED, self.message, self.action)


HOLD_ACTIONS = {
    "no_blanks": Msg("receive blanks: station blanks receive COUNT --batch ID"),
    "quota": Msg("none: the quota is the office's rule ([rationing] in the config)"),
    "reserve": Msg("none: the last blanks are kept for urgent records; receive more blanks"),
}


class StorageFault(Exception):
    """The station's database could not make a write-ahead point durable mid-card."""


def _on_disk(synced: Future[None]) -> None:
    """Wait for a write-ahead point's fsync; its failure is the station's, not the card's."""
    try:
        synced.result()
    except OSError as exc:
        raise StorageFault(f"the database could not be synced to disk ({exc.strerror})") from exc


#: Where a card failed, as its spoiled row's detail names it.
STAGES = {
    "started": N_("started"),
    "fed": N_("fed"),
    "encoded": N_("encoded"),
    "verified": N_("verified"),
    "printing": N_("printing"),
    "printed": N_("printed"),
    "ejected": N_("ejected"),
}
#: A spoiled card's reason as inspect and the reports show it: its class, then the detail.
SPOILED_BECAUSE = {
    "failed encode": N_("failed encode: {message}"),
    "failed print": N_("failed print: {message}"),
    "chip dead/invalid": N_("chip dead/invalid: {message}"),
}


def spoil_class(stage: AttemptState, exc: Exception) -> str:
    """The spoilage class offices report, from where the card failed and why."""
    if isinstance(exc, ChipDead):
        return "chip dead/invalid"
    if isinstance(exc, ChipError) or stage in (AttemptState.FED, AttemptState.ENCODED):
        return "failed encode"
    return "failed print"


@dataclass
class PipelineDeps:
    """What the printer's card state machine works with, owned by the daemon
    (station/daemon.py): the database, the devices, the faces and the quiet window."""

    db: Database
    printer: CardPrinter
    chip: ChipChannel
    cfg: PipelineConfig
    chip_timeout_s: float
    board: StatusBoard
    #: Faces rendered ahead on the helper process (the daemon starts and closes it).
    faces: FacePrefetcher
    #: Open while a face prints: the sync thread's moment (station/quiet.py).
    quiet: QuietWindow = field(default_factory=QuietWindow)
    #: The office's rules; replaced as a whole on reload (SIGHUP).
    rationing: policy.RationingConfig = field(default_factory=policy.RationingConfig)


class Pipeline:
    def __init__(self, deps: PipelineDeps) -> None:
        self.deps = deps
        self.db = deps.db
        self.printer = deps.printer
        self.chip = deps.chip
        self.cfg = deps.cfg
        self.board = deps.board
        self.faces = deps.faces
        self.quiet = deps.quiet
        self._usable = lease_check(deps.cfg.lease_margin_s)
        #: The state the card in hand reached (for an exception no device contract names);
        #: None while its record is prepared, before any blank moves.
        self._at: AttemptState | None = None

    @property
    def rationing(self) -> policy.RationingConfig:
        """The office's rules in force (replaced as a whole on reload)."""
        return self.deps.rationing

    @rationing.setter
    def rationing(self, rules: policy.RationingConfig) -> None:
        self.deps.rationing = rules

    # ------------------------------------------------------------------ one card
    def card_boundary(
        self, finished: GoodCard | None, *, start: bool = True
    ) -> Started | Hold | None:
        """One durable transaction between two cards: the previous good card's result
        (attempt done, blank used, outbox row), then the stock check, the next record by
        policy and its attempt ``started``. None: nothing to print now."""

        def tx(conn: sqlite3.Connection) -> Started | Hold | None:
            if finished is not None:
                attempts.finish_good(conn, finished.attempt, finished.serial, purge=False)
            if not start:
                return None
            allow = policy.allowance(conn, self.rationing, figures.ledger_totals(conn)["in_stock"])
            if allow.stop:
                return Hold(allow.stop, allow.detail, HOLD_ACTIONS[allow.stop])
            picks = buffer.next_records(
                conn, usable=self._usable, kinds=allow.kinds, urgent_only=allow.urgent_only, count=2
            )
            if not picks:
                if allow.urgent_only:
                    return Hold(
                        "reserve",
                        Msg(
                            "only urgent records may start: the stock is at the reserve of "
                            "{reserve} blanks",
                            reserve=self.rationing.urgent_reserve,
                        ),
                        HOLD_ACTIONS["reserve"],
                    )
                return None
            buffered, upcoming = picks[0], (picks[1] if len(picks) > 1 else None)
            attempt = attempts.begin_attempt(conn, buffered.record_id)
            return Started(buffered, attempt, upcoming)

        # The printed record's payload is overwritten after the answer, outside this
        # card's durable commit (a purge a power cut overtakes is redone at start-up).
        picked = self.db.run(
            tx,
            then=None
            if finished is None
            else (lambda c: buffer.purge_closed(c, finished.record_id)),
        )
        if finished is not None:
            log.info(
                "card_printed",
                record_id=finished.record_id,
                attempt=finished.attempt,
                blank=finished.serial,
            )
        return picked

    def print_one(self, started: Started) -> Outcome:
        """Put one started record through the devices; never raises for a record's sake.
        A good card comes back as ``Outcome.good``, for the next :meth:`card_boundary`.
        Only the station's own storage failing (:class:`StorageFault`, sqlite3.Error)
        escapes: the card then stays where it is, for recovery at the next start."""
        self._at = None
        try:
            return self._print_one(started)
        except (StorageFault, sqlite3.Error):
            raise
        except Exception as exc:  # noqa: BLE001 - the one place: no record may kill the worker
            return self._crashed(started, exc)

    def _print_one(self, started: Started) -> Outcome:
        rid, attempt = started.buffered.record_id, started.attempt
        try:
            prepared = self.faces.get(started.buffered)
        except RecordError as exc:
            return self._refuse(attempt, rid, exc.reason)
        finally:
            # The next face is rendered while this blank is fed and encoded: done long
            # before this card's write-ahead commit, on an idle-priority process.
            self.faces.ahead(started.upcoming)
        record = prepared.record
        bad_script = prepared.script_fault(sam=self.chip.sam_channel() is not None)
        if bad_script is not None:  # before any blank moves
            return self._refuse(attempt, rid, f"chip script: {bad_script}")
        self._at = AttemptState.STARTED
        try:
            serial = self.printer.feed()
            self._journal(attempt, AttemptState.FED, serial)
            uid = self._encode(record)
            self._at = AttemptState.VERIFIED
            # verified (with the chip's serial) and printing in one write-ahead commit,
            # made before the face is printed, its fsync waited for before the card can
            # leave the printer. The longest step comes: the WAL is fsync'd and
            # checkpointed and the next face rendered now, while nothing waits for them.
            _, printing = self.db.journal(
                lambda c: attempts.transition_through(
                    c, attempt, (AttemptState.VERIFIED, uid), (AttemptState.PRINTING, None)
                ),
                checkpoint=True,
            )
            if self.printer.ejects_with_print:
                _on_disk(printing)
            self._at = AttemptState.PRINTING
            self.quiet.open()
            try:
                self.printer.print_card(prepared.job)
            finally:
                self.quiet.close()
            _on_disk(printing)
            self._journal(attempt, AttemptState.PRINTED)
            self.printer.eject()
        except DeviceError as exc:
            return self._failed(attempt, rid, self._at or AttemptState.STARTED, exc)
        return Outcome(rid, CardOutcome.PRINTED, good=GoodCard(rid, attempt, uid or serial))

    def _encode(self, record: PrintReadyRecord) -> str:
        self.chip.connect(self.deps.chip_timeout_s)
        try:
            runner = ScriptRunner(self.chip, self.chip.sam_channel())
            try:
                runner.run(list(record.chip_script))
                runner.verify()
            except ChipStatusError as exc:
                if isinstance(exc, ScriptRefused):
                    raise
                raise ScriptRefused(str(exc), sw=exc.sw, frames=exc.frames) from exc
            return read_chip_serial(self.chip)
        finally:
            self._quietly(self.chip.disconnect)

    def _refuse(self, attempt: int, rid: str, reason: str) -> Outcome:
        """The started record cannot be printed, found before any blank moved."""
        self.db.run(lambda c: attempts.refuse_started(c, attempt, rid, reason))
        log.warning("record_refused", record_id=rid, reason=reason)
        return Outcome(rid, CardOutcome.FAILED, reason)

    def _journal(self, attempt: int, state: AttemptState, serial: str | None = None) -> None:
        """Journal a transition recovery does not depend on: queued in order to the
        database owner, not waited for, made durable by the next durable commit."""
        self._at = state
        self.db.submit(lambda c: attempts.transition(c, attempt, state, serial))

    def _crashed(self, started: Started, exc: Exception) -> Outcome:
        """An exception no device contract names, at ``self._at``: the attempt ends
        as a device error's would; the worker goes on with the next record."""
        rid, attempt, at = started.buffered.record_id, started.attempt, self._at
        stage = at or "preparing"
        what = type(exc).__name__
        log.error(
            "card_crashed",
            record_id=rid,
            attempt=attempt,
            stage=stage,
            error=what,
            where=faults.where(exc),
        )
        self.board.error(
            "internal",
            Msg("unexpected {error} at {stage}", error=what, stage=stage),
            Msg(
                "none: the attempt was ended; if it repeats, send the station log to the developers"
            ),
        )
        if at is None:  # no blank moved: the record cannot be prepared
            out = self._refuse(
                attempt,
                rid,
                Msg("the record could not be prepared for printing ({error})", error=what),
            )
            out.crashed = True
            return out
        if at is AttemptState.PRINTED and self._card_in_path() is not True:
            why = Msg(
                "unexpected {error} while ejecting: the card may be in the output tray; "
                "look in the output and reject trays",
                error=what,
            )
            self.db.run(lambda c: attempts.needs_inspection(c, attempt, why))
            return Outcome(rid, CardOutcome.NEEDS_INSPECTION, why, crashed=True)
        out = self._failed(attempt, rid, at, exc)
        out.crashed = True
        return out

    def _failed(self, attempt: int, rid: str, stage: AttemptState, exc: Exception) -> Outcome:
        failure = faults.classify(stage, exc)
        klass = spoil_class(stage, exc)
        message: str = (
            str(exc)
            if isinstance(exc, DeviceError)
            else Msg("unexpected {error}", error=type(exc).__name__)
        )
        reason = Msg(SPOILED_BECAUSE[klass], message=message)
        detail = Msg(
            "{stage}: {error}: {message}",
            stage=Msg(STAGES.get(stage, str(stage))),
            error=type(exc).__name__,
            message=message,
        )
        frames = exc.frames if isinstance(exc, DeviceError) else ()
        if isinstance(exc, DeviceError):
            self.board.error(type(exc).__name__, message, exc.action, frames)
        log.warning(
            "card_failed",
            record_id=rid,
            attempt=attempt,
            stage=stage,
            error=type(exc).__name__,
            detail=message,
            cause=failure.cause,
            frames=list(frames[-8:]),
        )
        card_taken = stage is not AttemptState.STARTED or self._card_in_path() is not False
        if not card_taken:
            self.db.run(
                lambda c: attempts.abort_attempt(
                    c, attempt, Msg("not started: {message}", message=message)
                )
            )
            return Outcome(rid, CardOutcome.ABORTED, message)
        try:
            self.recovery.card_leaving(attempt, stage)
            self.printer.reject()
        except DeviceError as again:
            why = Msg(
                "{reason}; the card could not be sent to the reject tray ({error})",
                reason=reason,
                error=str(again),
            )
            self.db.run(lambda c: attempts.needs_inspection(c, attempt, why))
            return Outcome(rid, CardOutcome.NEEDS_INSPECTION, why)
        became = self.db.run(
            lambda c: attempts.spoil_attempt(
                c,
                attempt,
                reason,
                max_attempts=self.cfg.max_attempts,
                spoil_class=klass,
                detail=detail,
                cause=failure.cause,
                fault=failure.fault,
                record_caused=failure.record_caused,
            )
        )
        return Outcome(rid, spoiled_outcome(became), reason)

    def _cross_check(self, status: PrinterStatus) -> None:
        in_stock = self.db.run(figures.ledger_totals, durable=False)["in_stock"]
        warning = blank_mismatch(status, in_stock)
        if warning and warning != self.board.get("warning"):
            log.warning(
                "blank_mismatch",
                printer_state=str(status.state),
                in_stock=in_stock,
                hopper=status.hopper,
            )
        self.board.set(warning=warning, warning_msg=stored(warning) if warning else None)

    def _card_in_path(self) -> bool | None:
        try:
            return self.printer.status().card != CardPosition.NONE
        except DeviceError:
            return None

    @staticmethod
    def _quietly(fn: Callable[[], None]) -> None:
        try:
            fn()
        except DeviceError as exc:
            log.info("cleanup_failed", error=type(exc).__name__, detail=str(exc))

    # ------------------------------------------------------------------ recovery
    def recover(self) -> list[Outcome]:
        """Settle attempts left open by a crash or power cut (station/recovery.py); what
        must wait for the printer is in ``self.recovery.pending``."""
        return self.recovery.run()

    @cached_property
    def recovery(self) -> Recovery:
        return Recovery(self)

    def printer_pause(self) -> tuple[Category, str, str] | None:
        """Why the printer cannot take a card now, or None."""
        try:
            status = self.printer.status()
        except DeviceError as exc:
            return (Category.ERROR, Msg("printer: {error}", error=str(exc)), exc.action)
        self.board.set(printer_state=str(status.state))
        self._cross_check(status)
        if status.state not in ("ready", "busy"):
            return (
                Category.PAUSED,
                Msg(
                    "printer {state}", state=Msg(PRINTER_WORDS.get(status.state, str(status.state)))
                ),
                status.detail or PRINTER_ACTIONS.get(status.state, ""),
            )
        return None


def blank_mismatch(status: PrinterStatus, in_stock: int) -> str | None:
    """The printer's own view of blanks against the ledger's, as a technician's warning."""
    if status.state == PrinterState.FEEDER_EMPTY and in_stock > 0:
        return Msg(
            "the printer's hopper is empty but the ledger has {in_stock} blanks in "
            "stock: load them, or count the stock (station blanks count N)",
            in_stock=in_stock,
        )
    if in_stock <= 0 and status.hopper:
        return Msg(
            "the printer's hopper holds {hopper} blanks but the ledger has none in "
            "stock: record the delivery (station blanks receive COUNT --batch ID)",
            hopper=status.hopper,
        )
    return None


#: What a technician does about each printer state that stops printing.
PRINTER_ACTIONS = {
    "feeder_empty": FeederEmpty.action,
    "ribbon_out": RibbonOut.action,
    "jam": CardJam.action,
    "cover_open": CoverOpen.action,
    "offline": DeviceOffline.action,
}
