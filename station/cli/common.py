"""What every CLI verb shares: the configuration, a database transaction, output."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from station import i18n
from station.config import StationConfig, config_path, load_config
from station.i18n import _
from station.store.db import connect, migrate, transaction
from station.store.schema import MIGRATIONS

T = TypeVar("T")


def config(args: argparse.Namespace) -> StationConfig:
    """The station's configuration; its ``language`` applies unless ``--lang`` was given."""
    cfg = load_config(config_path(args.config))
    i18n.set_language(i18n.choose(getattr(args, "lang", None), cfg.language))
    return cfg


def add_lang_option(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """``--lang id|en`` on ``parser`` and on every verb under it (one place for all)."""
    parser.add_argument(
        "--lang",
        choices=i18n.LANGUAGES,
        default=default,
        help=_(
            "language of the output: id (Bahasa Indonesia) or en "
            "(default: the config's language, else LANG, else id)"
        ),
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                # SUPPRESS: a verb without --lang keeps one given before it.
                add_lang_option(sub, argparse.SUPPRESS)


def with_db(args: argparse.Namespace, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` as one transaction on the station database (beside a running daemon)."""
    cfg = config(args)
    conn = connect(cfg.db_path)
    try:
        migrate(conn)
        return transaction(conn, fn)
    finally:
        conn.close()


def read_db(args: argparse.Namespace, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` on a read-only connection (it works while the disk is full or the
    database cannot be written); a database not there yet, or of an older schema, is
    opened as :func:`with_db` does."""
    cfg = config(args)
    if cfg.db_path.exists():
        conn = connect(cfg.db_path, readonly=True)
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] >= len(MIGRATIONS):
                return fn(conn)
        finally:
            conn.close()
    return with_db(args, fn)


def who() -> str:
    """The person at the keyboard, for the ledger (sudo keeps the real user)."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str) if args.json else text)
