"""The daemon's state messages, each with a category the status CLI shows (Klipper-style)."""

from __future__ import annotations

import enum
import os
import sqlite3
import threading
import time
from typing import Any

import structlog

from station.i18n import N_, Msg, stored
from station.store.db import Database
from station.store.status import set_status

log = structlog.get_logger("station.status")

#: The printer's states as the status shows them.
PRINTER_WORDS = {
    "ready": N_("ready"),
    "busy": N_("busy"),
    "feeder_empty": N_("feeder empty"),
    "ribbon_out": N_("ribbon out"),
    "jam": N_("card jam"),
    "cover_open": N_("cover open"),
    "offline": N_("offline"),
    "unknown": N_("unknown"),
}


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
        self._unsaved: dict[str, Any] = {}  # values a failed write did not save

    def set(self, **values: Any) -> None:
        """Record values; only changes reach the database. A write that fails (a full
        disk) is logged and kept for the next one: a status line is never worth a thread."""
        with self._lock:
            changed = {k: v for k, v in values.items() if self._last.get(k) != v}
            self._last.update(changed)
            changed = {**self._unsaved, **changed}
            self._unsaved = {}
        if changed:
            try:
                self._db.run(lambda c: set_status(c, **changed), durable=False)
            except sqlite3.OperationalError as exc:
                log.warning("status_not_saved", error=str(exc), keys=sorted(changed))
                with self._lock:
                    self._unsaved = {**changed, **self._unsaved}

    def state(self, category: Category, message: str, action: str = "") -> None:
        """The station's state; ``message`` and ``action`` are message ids or
        :class:`~station.i18n.Msg`: stored as codes with their parameters (``msg``,
        ``act``) beside the English text, so the status CLI shows them in its reader's
        language."""
        self.set(
            state={
                "category": str(category),
                "message": message,
                "action": action,
                "msg": stored(message),
                "act": stored(action),
                "since": time.time(),
            }
            if self._last.get("state", {}).get("message") != message
            else self._last["state"]
        )

    def error(self, category: str, message: str, action: str, frames: tuple[str, ...] = ()) -> None:
        """The last error: ``message`` is the device's own (technical, English) unless it
        is a :class:`~station.i18n.Msg`; ``action`` a message id."""
        self.set(
            last_error={
                "at": time.time(),
                "category": category,
                "message": message,
                "action": action,
                "msg": stored(message),
                "act": stored(action),
                "frames": list(frames),
            }
        )

    def get(self, key: str) -> Any:
        with self._lock:
            return self._last.get(key)


#: The daemon writes its liveness every few seconds; older than this, it is not working.
LIVENESS_STALE_S = 60.0
NOT_RUNNING_ACTION = Msg(
    "start it: systemctl start ektp-station; see why it stopped: journalctl -u ektp-station"
)


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
            out = _error(
                Msg(
                    "{message}; the daemon (pid {pid}) is not running",
                    message=state.get("message"),
                    pid=pid,
                ),
                state.get("action") or NOT_RUNNING_ACTION,
                state,
            )
            out["msg"]["params"]["message"] = state.get("msg") or state.get("message")
            if state.get("act"):
                out["act"] = state["act"]
            return out
        return _error(
            Msg("the daemon (pid {pid}) is not running: it ended without stopping", pid=pid),
            NOT_RUNNING_ACTION,
            state,
        )
    if live and now - float(live.get("at", 0)) > LIVENESS_STALE_S:
        return _error(
            Msg(
                "the daemon has not reported for {seconds} s",
                seconds=f"{now - float(live['at']):.0f}",
            ),
            Msg("restart it: systemctl restart ektp-station"),
            state,
        )
    if live and live.get("worker", "ok") != "ok" and state.get("category") != Category.ERROR:
        out = _error(
            str(live["worker"]),
            Msg("the watchdog restarts the daemon; if it repeats, see journalctl -u ektp-station"),
            state,
        )
        out["msg"] = live.get("worker_msg") or out["msg"]
        return out
    return state


def _error(message: str, action: str, was: dict[str, Any]) -> dict[str, Any]:
    return {
        "category": str(Category.ERROR),
        "message": message,
        "action": action,
        "msg": stored(message),
        "act": stored(action),
        "since": was.get("since"),
        "last_written": was,
    }
