"""What one card came to: the value the pipeline and recovery hand back to the daemon."""

from __future__ import annotations

from dataclasses import dataclass

from station.store.states import CardOutcome


@dataclass(frozen=True)
class GoodCard:
    """A card in the output tray whose result is written at the next card boundary."""

    record_id: str
    attempt: int
    serial: str | None


@dataclass
class Outcome:
    record_id: str
    result: CardOutcome
    reason: str = ""
    good: GoodCard | None = None
    #: Ended by an exception no device contract names (the worker waits a moment).
    crashed: bool = False
