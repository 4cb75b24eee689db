"""One migration runner for every database of the project: the station's (SQLite) and
the reference server's (SQLite or PostgreSQL). A database says how it keeps its version
and applies one numbered step atomically; the runner decides which steps are due."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

S = TypeVar("S")
S_contra = TypeVar("S_contra", contravariant=True)


class SchemaError(RuntimeError):
    """The database is of a newer schema than this program knows."""


class Versioned(Protocol[S_contra]):
    """A database as the runner sees it."""

    def version(self) -> int:
        """How many steps the database has had."""

    def apply(self, number: int, step: S_contra) -> None:
        """Apply ``step`` and record version ``number`` in one transaction; a step another
        process applied meanwhile (the version is already ``number``) is skipped."""


def run(
    steps: Sequence[S],
    db: Versioned[S],
    *,
    what: str,
    reader: str = "program",
    newer_ok: bool = False,
) -> int:
    """Apply the steps ``db`` has not had, in order; returns its version after. A database
    of a newer schema raises :class:`SchemaError` unless ``newer_ok`` (then it is left as
    it is)."""
    version = db.version()
    if version > len(steps):
        if newer_ok:
            return version
        raise SchemaError(
            f"{what} schema version {version} is newer than this {reader}'s ({len(steps)})"
        )
    for number, step in enumerate(steps[version:], start=version + 1):
        db.apply(number, step)
    return max(version, len(steps))
