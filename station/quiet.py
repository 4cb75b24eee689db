"""When the printer worker is far from its next durable point, for the sync thread.

A card has two write-ahead commits the printer waits on (station/pipeline.py): the card
boundary and ``printing``. The sync thread's round (HTTP requests, JSON, reads and writes
through the database owner) takes milliseconds of CPU and of the owner thread; started at
any moment it sometimes lands on one of those commits and delays the printer. The window
is open while the card is being printed (the longest step, well away from both points)
and while no card is in progress; the sync thread starts its rounds only inside it, or
after ``max_wait_s`` whatever the printer does (a device call that hangs must not stop
results from being reported).
"""

from __future__ import annotations

import threading

#: The longest the sync thread waits for the window before it runs a round anyway.
MAX_WAIT_S = 10.0


class QuietWindow:
    def __init__(self, max_wait_s: float = MAX_WAIT_S) -> None:
        self.max_wait_s = max_wait_s
        self._open = threading.Event()
        self._open.set()

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.clear()

    def wait(self) -> bool:
        """Block until the window is open (True) or ``max_wait_s`` has passed (False)."""
        return self._open.wait(self.max_wait_s)
