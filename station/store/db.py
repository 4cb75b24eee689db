"""The SQLite connection, owned by one thread (the Moonraker model), and its migrations."""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import structlog

from station.store import migrations
from station.store.schema import MIGRATIONS

log = structlog.get_logger(__name__)

T = TypeVar("T")


class _Job(NamedTuple):
    fut: Future[Any]
    fn: Callable[[sqlite3.Connection], Any] | None  # None: only the checkpoint
    durable: bool
    checkpoint: bool  # checkpoint the WAL after the answer is handed back
    then: Callable[[sqlite3.Connection], Any] | None = None  # non-durable, after answering
    synced: Future[None] | None = None  # the WAL is fsync'd after answering, then this


#: Commits after which the owner checkpoints by itself if nobody asked (~4 MB of WAL).
CHECKPOINT_EVERY = 200


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the station's pragmas (also used by CLI commands)."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    else:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
        # Purged personal data is overwritten, not just unlinked, and freed pages can be
        # given back (auto_vacuum takes effect on a new database).
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        private(path, Path(f"{path}-wal"), Path(f"{path}-shm"))
    conn.row_factory = sqlite3.Row
    return conn


def private(*files: Path) -> None:
    """Only the owner may read what the station keeps (personal data, keys, the ledger),
    whatever the umask was when a file was made: mode 0600. Files that do not exist, and
    files of another owner, are left alone."""
    for path in files:
        try:
            st = path.stat()
            if st.st_uid == os.geteuid() and st.st_mode & 0o777 != 0o600:
                path.chmod(0o600)
        except FileNotFoundError:
            continue


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations not yet applied (:mod:`station.store.migrations`); returns the
    schema version (``PRAGMA user_version``). A database of a newer station is left as it
    is."""
    return migrations.run(MIGRATIONS, _Versioned(conn), what="station database", newer_ok=True)


class _Versioned:
    """The station database for the migration runner. The version is read again inside
    each step's write transaction, so two processes opening a new database at once (the
    daemon and a CLI verb) never apply one twice."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def apply(self, number: int, step: list[str]) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            if self.version() >= number:
                return
            for stmt in step:
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version={number}")

        transaction(self.conn, tx)


def transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` inside BEGIN IMMEDIATE … COMMIT (rolled back if it raises)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        # SQLite may have rolled back already (a full disk does, mid-statement); a COMMIT
        # that failed (disk full) leaves the transaction open: end it, or every later
        # BEGIN on this connection fails.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Copy what it can of the WAL into the database without waiting for readers (a
    failure is logged: the WAL keeps the data, the next checkpoint tries again)."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as exc:
        log.warning("checkpoint_failed", error=type(exc).__name__, detail=str(exc))


def _logged_future() -> Future[object]:
    """A future nobody waits for: a failure it receives is logged."""
    fut: Future[object] = Future()
    fut.add_done_callback(_log_failure)
    return fut


def _log_failure(fut: Future[object]) -> None:
    exc = fut.exception()
    if exc is not None:
        log.error("queued_write_failed", error=type(exc).__name__, detail=str(exc))


class Database:
    """The owner thread of the daemon's connection; other threads submit work to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._ready: Future[int] = Future()
        self._thread = threading.Thread(target=self._own, name="db-owner", daemon=True)
        self._thread.start()
        self.schema_version = self._ready.result()

    def _own(self) -> None:
        try:
            conn = connect(self.path)
            self._ready.set_result(migrate(conn))
        except (sqlite3.Error, OSError) as exc:
            self._ready.set_exception(exc)
            return
        conn.execute("PRAGMA wal_autocheckpoint=0")
        durable = True
        commits = 0

        def execute(
            fut: Future[Any], fn: Callable[[sqlite3.Connection], Any], want_durable: bool
        ) -> None:
            nonlocal durable, commits
            if want_durable != durable:
                conn.execute(f"PRAGMA synchronous={'FULL' if want_durable else 'NORMAL'}")
                durable = want_durable
            try:
                fut.set_result(transaction(conn, fn))
            except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
                fut.set_exception(exc)
            commits += 1

        try:
            while (job := self._jobs.get()) is not None:
                if job.fn is not None and job.fut.set_running_or_notify_cancel():
                    execute(job.fut, job.fn, job.durable)
                if job.synced is not None:
                    self._sync_wal(job.synced)
                if job.then is not None:  # its caller has the answer: failures are logged
                    execute(_logged_future(), job.then, False)
                if job.checkpoint or commits >= CHECKPOINT_EVERY:
                    _checkpoint(conn)
                    commits = 0
                if job.fn is None:
                    job.fut.set_result(None)
        finally:
            conn.close()

    def run(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        durable: bool = True,
        checkpoint: bool = False,
        then: Callable[[sqlite3.Connection], object] | None = None,
    ) -> T:
        """Run ``fn(conn)`` as one transaction on the owner thread and return its result.
        Once the answer is handed back: ``then`` runs as a non-durable transaction (work
        the caller need not wait for, without waking the owner again), and with
        ``checkpoint`` the WAL is checkpointed (for a caller that knows a quiet spell
        follows)."""
        fut: Future[T] = Future()
        self._jobs.put(_Job(fut, fn, durable, checkpoint, then))
        return fut.result()

    def journal(
        self, fn: Callable[[sqlite3.Connection], T], *, checkpoint: bool = False
    ) -> tuple[T, Future[None]]:
        """A write-ahead point whose device step may begin before the fsync ends but must
        not finish: commit ``fn`` and return its result once the commit is written (it
        survives the process's death), with a future that completes once the WAL is
        fsync'd (it then survives a power cut too), or carries the fsync's error. The
        same fsync a durable :meth:`run` waits for, overlapped with the device step."""
        fut: Future[T] = Future()
        synced: Future[None] = Future()
        self._jobs.put(_Job(fut, fn, False, checkpoint, None, synced))
        return fut.result(), synced

    def _sync_wal(self, synced: Future[None]) -> None:
        try:
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            synced.set_exception(exc)
        else:
            synced.set_result(None)

    def submit(self, fn: Callable[[sqlite3.Connection], object]) -> Future[object]:
        """Queue ``fn`` as a non-durable transaction without waiting for it. Jobs run in
        submission order, so any later :meth:`run` commits after it; a crash before the
        owner thread reached it loses it, exactly as a power cut may lose a non-durable
        commit."""
        return self._enqueue(fn, checkpoint=False)

    def checkpoint(self) -> None:
        """Queue a WAL checkpoint without waiting (call it when no durable point is near)."""
        self._enqueue(None, checkpoint=True)

    def _enqueue(
        self, fn: Callable[[sqlite3.Connection], object] | None, *, checkpoint: bool
    ) -> Future[object]:
        fut = _logged_future()
        self._jobs.put(_Job(fut, fn, False, checkpoint))
        return fut

    def close(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
