"""When the printer worker is far from its next durable point, for the sync thread."""

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
