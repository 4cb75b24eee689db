"""The database owner thread and the schema's migrations, on files on disk."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from station.store import figures
from station.store.db import CHECKPOINT_EVERY, Database, connect, migrate
from station.store.schema import MIGRATIONS


def rows_in_main_file(db_path: Path, tmp_path: Path) -> int:
    """Rows of table t in a copy of the database file alone (no WAL): what a checkpoint
    has written back."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(db_path, copy)
    with sqlite3.connect(copy) as c:
        try:
            return int(c.execute("SELECT COUNT(*) FROM t").fetchone()[0])
        except sqlite3.OperationalError:  # the table itself is still only in the WAL
            return 0


@pytest.fixture
def db(tmp_path: Path):
    database = Database(tmp_path / "station.db")
    database.run(lambda c: c.execute("CREATE TABLE t(x INTEGER)"))
    yield database
    database.close()


def test_commits_stay_in_the_wal_until_a_checkpoint_is_asked(db, tmp_path: Path) -> None:
    """SQLite's own checkpoints are off; db.checkpoint() writes the rows back to the file."""
    for i in range(20):
        db.run(lambda c, i=i: c.execute("INSERT INTO t VALUES (?)", (i,)))
    assert rows_in_main_file(db.path, tmp_path) == 0
    db.checkpoint()
    db.run(lambda c: None)  # jobs run in order: the checkpoint is done after this
    assert rows_in_main_file(db.path, tmp_path) == 20


def test_a_run_can_checkpoint_after_answering(db, tmp_path: Path) -> None:
    """run(checkpoint=True) returns its result and then writes the WAL back."""
    assert db.run(lambda c: c.execute("INSERT INTO t VALUES (1)").rowcount, checkpoint=True) == 1
    db.run(lambda c: None)
    assert rows_in_main_file(db.path, tmp_path) == 1


def test_the_owner_checkpoints_by_itself_when_nobody_asks(db, tmp_path: Path) -> None:
    """After CHECKPOINT_EVERY commits without a request the WAL is written back anyway."""
    for i in range(CHECKPOINT_EVERY + 1):
        db.submit(lambda c, i=i: c.execute("INSERT INTO t VALUES (?)", (i,)))
    db.run(lambda c: None)
    assert rows_in_main_file(db.path, tmp_path) >= CHECKPOINT_EVERY - 1


def test_a_journaled_commit_is_visible_before_its_fsync_is_reported(db, tmp_path: Path) -> None:
    """journal() answers once the commit is written (another connection reads it) and
    hands a future that completes when the WAL is fsync'd."""
    result, synced = db.journal(lambda c: c.execute("INSERT INTO t VALUES (7)").rowcount)
    assert result == 1
    with sqlite3.connect(tmp_path / "station.db") as other:
        assert other.execute("SELECT x FROM t").fetchall() == [(7,)]
    assert synced.result(timeout=5) is None


def test_a_failed_fsync_reaches_the_journal_future(db, failing_disk: None) -> None:
    """The disk's error on the WAL's fsync is what the waiting caller gets."""
    _, synced = db.journal(lambda c: c.execute("INSERT INTO t VALUES (1)"))
    with pytest.raises(OSError, match="Input/output error"):
        synced.result(timeout=5)


def test_ledger_sums_carry_over_from_a_version_3_database(tmp_path: Path) -> None:
    """A station upgraded from schema 3 keeps its stock: the running sums start from the
    ledger it had."""
    path = tmp_path / "old.db"
    conn = connect(path)
    conn.execute("BEGIN")
    for stmt in [s for version in MIGRATIONS[:3] for s in version]:
        conn.execute(stmt)
    conn.execute("PRAGMA user_version=3")
    for kind, count in (("received", 500), ("used", 1), ("spoiled", 1)):
        conn.execute(
            "INSERT INTO ledger(kind, count, at) VALUES (?, ?, ?)", (kind, count, time.time())
        )
    conn.execute("COMMIT")
    assert migrate(conn) == len(MIGRATIONS)
    assert figures.ledger_totals(conn)["in_stock"] == 498
    conn.close()


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM ledger",
        "UPDATE ledger SET count = 1000",
        "UPDATE ledger SET kind = 'received'",
    ],
)
def test_the_ledger_is_append_only(tmp_path: Path, statement: str) -> None:
    """Deleting or editing a ledger entry is refused by the database itself."""
    conn = connect(tmp_path / "s.db")
    migrate(conn)
    conn.execute("INSERT INTO ledger(kind, count, at) VALUES ('used', 1, 0)")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(statement)
    conn.close()
