"""The daemon's state messages, each with a category the status CLI shows (Klipper-style).

The board keeps the current values in memory and writes them to the ``status`` table
(non-durable commits: a lost status line after a power cut costs nothing).
"""

from __future__ import annotations

import enum
import threading
import time
from typing import Any

from station import store
from station.db import Database


class Category(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"  # idle, waiting for records
    PRINTING = "printing"
    PAUSED = "paused"  # waiting for a person (blanks, cover, jam, ribbon, inspection)
    ERROR = "error"
    STOPPED = "stopped"


class StatusBoard:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._last: dict[str, Any] = {}

    def set(self, **values: Any) -> None:
        """Record values; only changes reach the database."""
        with self._lock:
            changed = {k: v for k, v in values.items() if self._last.get(k) != v}
            self._last.update(changed)
        if changed:
            self._db.run(lambda c: store.set_status(c, **changed), durable=False)

    def state(self, category: Category, message: str, action: str = "") -> None:
        self.set(state={"category": str(category), "message": message, "action": action,
                        "since": time.time()}
                 if self._last.get("state", {}).get("message") != message
                 else self._last["state"])

    def error(self, category: str, message: str, action: str,
              frames: tuple[str, ...] = ()) -> None:
        self.set(last_error={"at": time.time(), "category": category, "message": message,
                             "action": action, "frames": list(frames)})

    def get(self, key: str) -> Any:
        with self._lock:
            return self._last.get(key)
