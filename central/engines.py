"""Which storage engine a ``--db`` names: a SQLite file (the embedded default) or a
PostgreSQL database (``postgresql://…``, :mod:`central.queue_pg`, the central
extra). Both are :class:`~central.queue_db.QueueDB`: the servers do not care."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from central.queue_db import DEFAULT_LEASE_HOLD_S, QueueDB


def is_dsn(db: str | Path) -> bool:
    """Whether ``db`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


def open_queue(
    db: str | Path,
    *,
    clock: Callable[[], float] = time.time,
    lease_hold_s: float = DEFAULT_LEASE_HOLD_S,
) -> QueueDB:
    """The queue named by ``db``: a PostgreSQL DSN, or a SQLite file."""
    if is_dsn(db):
        from central.queue_pg import PgQueueDB  # psycopg: the central extra

        return PgQueueDB(str(db), clock=clock, lease_hold_s=lease_hold_s)
    return QueueDB(Path(db), clock=clock, lease_hold_s=lease_hold_s)


def default_key_dir(db: str | Path) -> Path:
    """Where the grant key lives unless ``--key-dir`` says: ``keys/`` beside a SQLite
    file, ``keys/`` in the working directory for PostgreSQL."""
    return Path("keys") if is_dsn(db) else Path(db).parent / "keys"
