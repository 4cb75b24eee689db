"""``station batch key | pubkey | import FILE | export FILE``: offline batches, the
technician's verbs (the work is :mod:`station.batch`'s)."""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
from pathlib import Path

from station.batch import export_results, import_batch
from station.batchkeys import batch_public_key, station_public_key
from station.cli.common import config
from station.cli.errors import Failed, Refused
from station.i18n import Msg, _, tr
from station.link.batchfile import BatchFileError


def add_batch_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``batch key | pubkey | import FILE | export FILE`` under the station's CLI."""
    batch = sub.add_parser("batch", help=_("offline batches: import records, export results"))
    verbs = batch.add_subparsers(dest="batch_command", required=True)
    verbs.add_parser("key", help=_("print this station's results key for the centre")).set_defaults(
        func=cmd_batch_key
    )
    verbs.add_parser(
        "pubkey", help=_("print the key the centre seals this station's batches to")
    ).set_defaults(func=cmd_batch_pubkey)
    p = verbs.add_parser("import", help=_("buffer a signed batch issued to this station"))
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_batch_import)
    p = verbs.add_parser("export", help=_("write results as a signed file for the centre"))
    p.add_argument("file", type=Path)
    p.add_argument(
        "--since",
        type=dt.datetime.fromisoformat,
        default=None,
        help=_("every result created since this ISO time (default: unacknowledged)"),
    )
    p.set_defaults(func=cmd_batch_export)


def cmd_batch_key(args: argparse.Namespace) -> int:
    cfg = config(args)
    print(station_public_key(cfg))
    return 0


def cmd_batch_pubkey(args: argparse.Namespace) -> int:
    cfg = config(args)
    print(batch_public_key(cfg))
    return 0


def cmd_batch_import(args: argparse.Namespace) -> int:
    cfg = config(args)
    try:
        report = import_batch(cfg, args.file)
    except BatchFileError as exc:
        raise Refused(Msg("{path}: {error}", path=args.file, error=tr(str(exc)))) from exc
    except (OSError, sqlite3.Error) as exc:
        raise Failed(Msg("cannot import {path}: {error}", path=args.file, error=str(exc))) from exc
    expired = (
        _(", {count} not buffered: their lease had expired").format(count=report.expired)
        if report.expired
        else ""
    )
    print(
        _(
            "batch {batch}: {buffered} records buffered, {known} already known, {refused} "
            "refused{expired}; leases valid until {until}"
        ).format(
            batch=report.batch_id,
            buffered=report.buffered,
            known=report.known,
            refused=report.refused,
            expired=expired,
            until=report.expires_at.isoformat(),
        )
    )
    return 0


def cmd_batch_export(args: argparse.Namespace) -> int:
    cfg = config(args)
    since = None
    if args.since is not None:
        when: dt.datetime = args.since
        since = (when if when.tzinfo else when.astimezone()).timestamp()
    try:
        report = export_results(cfg, args.file, since=since)
    except BatchFileError as exc:
        raise Refused(str(exc)) from exc
    except (OSError, sqlite3.Error) as exc:
        raise Failed(
            Msg("cannot export to {path}: {error}", path=args.file, error=str(exc))
        ) from exc
    print(
        _(
            "{count} results written to {path}, signed by station {station}; its key "
            "(register it once at the centre): {key}"
        ).format(
            count=report.results, path=report.path, station=cfg.station_id, key=report.public_key
        )
    )
    return 0
