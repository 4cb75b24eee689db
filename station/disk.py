"""Room on the state dir's filesystem: no card starts when the disk is nearly full."""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from station.i18n import Msg, stored
from station.status import Category

log = structlog.get_logger("station.disk")

MB = 1 << 20
#: Less than this free is a full disk, whatever the reserve configured.
FLOOR_MB = 1.0


def is_full(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's or the OS's "database or disk is full"."""
    if isinstance(exc, sqlite3.OperationalError):
        return "full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


@dataclass
class DiskGuard:
    path: Path
    reserve_mb: float
    #: After a write found the disk full: treated as low for this long, then checked again.
    trip_s: float = 5.0
    _tripped_at: float | None = field(default=None, repr=False)
    _was_low: bool = field(default=False, repr=False)

    def free_mb(self) -> float:
        """Free space for this user on the filesystem of ``path`` (or its nearest parent
        that exists), in MB; infinite if it cannot be asked (nothing to hold for)."""
        for p in (self.path, *self.path.parents):
            try:
                st = os.statvfs(p)
            except FileNotFoundError:
                continue
            except OSError:
                break
            return st.f_bavail * st.f_frsize / MB
        return float("inf")

    def low(self) -> bool:
        """Below the reserve, or a write found the disk full a moment ago."""
        tripped = self._tripped_at is not None and time.monotonic() - self._tripped_at < self.trip_s
        return tripped or self.free_mb() < self.limit_mb

    @property
    def limit_mb(self) -> float:
        return max(self.reserve_mb, FLOOR_MB)

    def check(self) -> bool:
        """:meth:`low`, with a log line when it changes (the printer worker's call)."""
        low = self.low()
        if low != self._was_low:
            self._was_low = low
            free = round(self.free_mb(), 1)
            if low:
                log.error(
                    "disk_full", path=str(self.path), free_mb=free, reserve_mb=self.reserve_mb
                )
            else:
                log.info("disk_space_back", path=str(self.path), free_mb=free)
        return low

    def trip(self, exc: BaseException) -> None:
        """A write failed: if the disk was full, hold like :meth:`low`; else re-raise."""
        if not is_full(exc):
            raise exc
        log.error("write_failed_disk_full", detail=str(exc))
        self._tripped_at = time.monotonic()

    def state(self) -> tuple[Category, Msg, Msg]:
        """The status line while :meth:`low`: category, message, what to do."""
        return (
            Category.ERROR,
            Msg(
                "disk full: less than {reserve} MB free on the filesystem of {path}; "
                "no card is started",
                reserve=f"{self.limit_mb:g}",
                path=str(self.path),
            ),
            Msg(
                "free space on that disk (old files, logs, backups); printing resumes "
                "by itself, nothing is lost"
            ),
        )

    def overlay(self, state: dict[str, Any]) -> dict[str, Any]:
        """The state ``station status`` shows: ERROR "disk full" while :meth:`low` (the
        daemon may be unable to write it itself), else ``state`` as it is."""
        if not self.low():
            return state
        category, message, action = self.state()
        return {
            "category": str(category),
            "message": message,
            "action": action,
            "msg": stored(message),
            "act": stored(action),
            "since": None,
            "last_written": state,
        }
