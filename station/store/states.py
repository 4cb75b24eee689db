"""The values the store writes into its state columns (typed), and SQL helpers over them."""

from __future__ import annotations

from enum import StrEnum


class AttemptState(StrEnum):
    """Where one card's attempt is (``attempts.state``), in order (DESIGN.md)."""

    STARTED = "started"
    FED = "fed"
    ENCODED = "encoded"
    VERIFIED = "verified"
    PRINTING = "printing"
    PRINTED = "printed"
    EJECTED = "ejected"
    # terminal
    DONE = "done"
    REJECTED = "rejected"
    ABORTED = "aborted"
    NEEDS_INSPECTION = "needs_inspection"


class RecordStatus(StrEnum):
    """Where a leased record is (``records.status``)."""

    QUEUED = "queued"
    PRINTING = "printing"  # a card for it is in the printer
    INSPECTION = "inspection"  # its card awaits a technician's verdict
    DONE = "done"
    FAILED = "failed"
    DROPPED = "dropped"  # its lease ran out unprinted
    RELEASED = "released"  # handed back to the centre


class CardOutcome(StrEnum):
    """What became of one card the pipeline or recovery handled."""

    PRINTED = "printed"
    REJECTED = "rejected"  # spoiled; the record is queued again
    ABORTED = "aborted"  # no blank used; the record is queued again
    FAILED = "failed"  # the record is reported failed
    NEEDS_INSPECTION = "needs_inspection"


def spoiled_outcome(became: RecordStatus) -> CardOutcome:
    """A spoiled card's outcome from what became of its record (queued again or failed)."""
    return CardOutcome.REJECTED if became is RecordStatus.QUEUED else CardOutcome.FAILED


A = AttemptState
BEFORE_PRINTING: tuple[AttemptState, ...] = (A.STARTED, A.FED, A.ENCODED, A.VERIFIED)
PRINTING_OR_LATER: tuple[AttemptState, ...] = (A.PRINTING, A.PRINTED, A.EJECTED)
TERMINAL: tuple[AttemptState, ...] = (A.DONE, A.REJECTED, A.ABORTED, A.NEEDS_INSPECTION)
#: States whose blank is neither used nor spoiled yet.
HOLDING_A_BLANK: tuple[AttemptState, ...] = (
    *BEFORE_PRINTING,
    *PRINTING_OR_LATER,
    A.NEEDS_INSPECTION,
)
del A

#: Records whose sealed personal data is still needed (to print, or after inspection).
OPEN_STATUSES: tuple[RecordStatus, ...] = (
    RecordStatus.QUEUED,
    RecordStatus.PRINTING,
    RecordStatus.INSPECTION,
)
#: Records closed for good: one result each went to the outbox.
CLOSED_STATUSES: tuple[RecordStatus, ...] = (RecordStatus.DONE, RecordStatus.FAILED)

SPOIL_CLASSES = ("failed encode", "failed print", "physically damaged", "chip dead/invalid")

#: Who a spoiled blank is charged to (``station report``): the record's data, the blank
#: itself (its chip), or the printer/encoder; NULL in the ledger: not known (power cut,
#: inspection).
CAUSES = ("record", "blank", "device")


def marks(values: tuple[object, ...]) -> str:
    """SQL placeholders for ``IN (...)`` over ``values``."""
    return ",".join("?" * len(values))
