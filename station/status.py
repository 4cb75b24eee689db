"""The daemon's state messages, each with a category the status CLI shows (Klipper-style).

The board keeps the current values in memory and writes them to the ``status`` table
(non-durable commits: a lost status line after a power cut costs nothing).
"""

from __future__ import annotations

import enum
import os
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


#: The daemon writes its liveness every few seconds; older than this, it is not working.
LIVENESS_STALE_S = 60.0
NOT_RUNNING_ACTION = ("start it: systemctl start ektp-station; see why it stopped: "
                      "journalctl -u ektp-station")


def pid_running(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_state(snap: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The state ``station status`` shows: the one the daemon wrote, unless the daemon's
    threads say otherwise. A daemon gone without stopping (crash, power cut), one whose
    main thread stopped reporting, or one whose printer worker is dead or stuck is an
    ERROR with what to do, whatever its last state said."""
    now = time.time() if now is None else now
    state: dict[str, Any] = snap.get("state") or {}
    if not state or state.get("category") == Category.STOPPED:
        return state
    pid, live = snap.get("pid"), snap.get("liveness") or {}
    if isinstance(pid, int) and not pid_running(pid):
        if state.get("category") == Category.ERROR:  # it said why before it went
            return _error(f"{state.get('message')}; the daemon (pid {pid}) is not running",
                          state.get("action") or NOT_RUNNING_ACTION, state)
        return _error(f"the daemon (pid {pid}) is not running: it ended without stopping",
                      NOT_RUNNING_ACTION, state)
    if live and now - float(live.get("at", 0)) > LIVENESS_STALE_S:
        return _error(f"the daemon has not reported for {now - float(live['at']):.0f} s",
                      "restart it: systemctl restart ektp-station", state)
    if live and live.get("worker", "ok") != "ok" and state.get("category") != Category.ERROR:
        return _error(str(live["worker"]), "the watchdog restarts the daemon; if it "
                      "repeats, see journalctl -u ektp-station", state)
    return state


def _error(message: str, action: str, was: dict[str, Any]) -> dict[str, Any]:
    return {"category": str(Category.ERROR), "message": message, "action": action,
            "since": was.get("since"), "last_written": was}
