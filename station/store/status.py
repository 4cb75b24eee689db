"""The daemon's status rows (key, JSON value) that the CLI and the status line read."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any


def set_status(conn: sqlite3.Connection, **values: Any) -> None:
    now = time.time()
    conn.executemany(
        "INSERT INTO status(key, value, at) VALUES (?,?,?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value, at=excluded.at",
        [(k, json.dumps(v), now) for k, v in values.items()],
    )


def get_status(conn: sqlite3.Connection) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM status")}
