"""This boot's id and the lease clock: whether a lease may still be started."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from station.store import buffer

_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """The kernel's id of this boot ("unknown" where it cannot be read)."""
    try:
        return _BOOT_ID_FILE.read_text().strip()
    except OSError:
        return "unknown"


def lease_check(margin_s: float) -> Callable[[buffer.Lease], bool]:
    """Whether a lease may still be started: by the monotonic clock on this boot, else by
    the wall clock; ``margin_s`` before the end counts as expired already."""
    this_boot = boot_id()

    def usable(lease: buffer.Lease) -> bool:
        if lease.boot_id == this_boot:
            return lease.mono - margin_s > time.monotonic()
        return lease.deadline - margin_s > time.time()

    return usable
