"""Offline batches, the centre's side: issue a signed batch to one station, register the
station's results key, ingest the signed results file it carries back (idempotently)."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from central.engines import open_queue
from central.queue_db import QueueDB, SchemaError
from station.cli.errors import Failed, Refused
from station.grants import sign_grant
from station.i18n import Msg, _
from station.link.batchfile import (
    BatchBody,
    BatchFileError,
    BatchLease,
    ResultsBody,
    SignedFile,
    load_box_key,
    read_signed,
    sign_body,
    station_key_id,
    verify_body,
    write_sealed,
)
from station.records import SignedRecord, canonical_bytes, load_public_key

log = structlog.get_logger(__name__)

MAX_BATCH = 10_000
MAX_DAYS = 60


@dataclass(frozen=True)
class IngestReport:
    station_id: str
    results: int
    new: int
    duplicates: int
    refused: int = 0  # not this station's to report (see trust.result_fault): audited


def register_station_key(db: QueueDB, station_id: str, public_key_b64: str) -> None:
    """Trust ``public_key_b64`` (raw Ed25519, base64) for results files from the station."""
    try:
        load_public_key(public_key_b64)
    except ValueError as exc:
        raise BatchFileError("not a base64 Ed25519 public key") from exc
    _store_key(db, "station_keys", station_id, public_key_b64)


def register_batch_key(db: QueueDB, station_id: str, public_key_b64: str) -> None:
    """Seal ``station_id``'s batches to ``public_key_b64`` (`station batch pubkey`)."""
    load_box_key(public_key_b64)
    _store_key(db, "station_batch_keys", station_id, public_key_b64)


def _store_key(db: QueueDB, table: str, station_id: str, public_key_b64: str) -> None:
    with db.transaction() as c:
        c.execute(
            f"INSERT INTO {table} (station_id, public_key, added_ts) VALUES (?, ?, ?)"
            " ON CONFLICT (station_id) DO UPDATE SET public_key = excluded.public_key,"
            " added_ts = excluded.added_ts",
            (station_id, public_key_b64, db.clock()),
        )


def batch_key_for(db: QueueDB, station_id: str) -> X25519PublicKey:
    """The batch key registered for ``station_id``; :class:`BatchFileError` without one."""
    with db.transaction() as c:
        row = c.execute(
            "SELECT public_key FROM station_batch_keys WHERE station_id = ?", (station_id,)
        ).fetchone()
    if row is None:
        raise BatchFileError(
            f"no batch key registered for station {station_id!r}: run `station central batch "
            "register --batch-key FILE` with the key `station batch pubkey` prints there"
        )
    return load_box_key(row[0])


def create_batch(
    db: QueueDB, key: Ed25519PrivateKey, key_id: str, *, station_id: str, count: int, days: float
) -> SignedFile:
    """Lease up to ``count`` ready records to ``station_id`` for ``days`` and sign them."""
    if not 1 <= count <= MAX_BATCH:
        raise ValueError(f"count must be 1 to {MAX_BATCH}")
    if not 0 < days <= MAX_DAYS:
        raise ValueError(f"days must be more than 0 and at most {MAX_DAYS}")
    batch_id = uuid4().hex
    ttl_s = days * 86400.0
    now = db.clock()
    with db.transaction() as c:
        granted = db.grant_leases(c, station_id, count, ttl_s, batch_id)
        c.execute(
            "INSERT INTO batches (batch_id, station_id, created_ts, expires_ts, records)"
            " VALUES (?, ?, ?, ?, ?)",
            (batch_id, station_id, now, now + ttl_s, len(granted)),
        )
    expires = dt.datetime.fromtimestamp(now + ttl_s, dt.UTC)
    body = BatchBody(
        batch_id=batch_id,
        station_id=station_id,
        issued_at=dt.datetime.fromtimestamp(now, dt.UTC),
        expires_at=expires,
        records=[
            BatchLease(
                lease_id=lease_id,
                expires_at=expires,
                signed=SignedRecord.model_validate_json(signed_json),
                grant=sign_grant(
                    key,
                    key_id,
                    record_id=record_id,
                    station_id=station_id,
                    lease_id=lease_id,
                    batch_id=batch_id,
                    expires_at=now + ttl_s,
                ),
            )
            for lease_id, record_id, signed_json in granted
        ],
    )
    log.info("central.batch_created", batch=batch_id, station=station_id, records=len(granted))
    return sign_body(body, key, key_id)


def ingest_results(db: QueueDB, signed: SignedFile) -> IngestReport:
    """Verify a station's results file against its registered key and apply the results
    not known yet, all in one transaction; ingesting the same file again changes nothing."""
    station_id = signed.claimed("station_id")
    with db.transaction() as c:
        row = c.execute(
            "SELECT public_key FROM station_keys WHERE station_id = ?", (station_id,)
        ).fetchone()
    if row is None:
        raise BatchFileError(
            f"no results key registered for station {station_id!r}: "
            "run `station central batch register` with the key `station batch key` prints"
        )
    keys = {station_key_id(station_id): load_public_key(row[0])}
    body = verify_body(signed, keys, ResultsBody)
    digest = hashlib.sha256(canonical_bytes(signed.body)).hexdigest()
    with db.transaction() as c:
        dups, refused = db.record_results(c, body.station_id, body.results, "batch ingest")
        new = len(body.results) - dups - len(refused)
        c.execute(
            "INSERT INTO ingests (station_id, file_digest, results, new_results, at)"
            " VALUES (?, ?, ?, ?, ?)",
            (body.station_id, digest, len(body.results), new, db.clock()),
        )
    report = IngestReport(body.station_id, len(body.results), new, dups, len(refused))
    log.info(
        "central.results_ingested",
        station=body.station_id,
        results=report.results,
        new=report.new,
        duplicates=report.duplicates,
        refused=report.refused,
    )
    return report


# -- CLI -------------------------------------------------------------------------------


def add_central_batch_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``central batch register | create | ingest``."""
    batch = sub.add_parser("batch", help=_("offline batches: issue, ingest results"))
    verbs = batch.add_subparsers(dest="batch_command", required=True)

    p = verbs.add_parser("register", help=_("trust a station's results key, record its batch key"))
    p.add_argument("--db", required=True, help=_("the queue: a SQLite file or postgresql://…"))
    p.add_argument("--station", required=True)
    p.add_argument(
        "--key", type=Path, help=_("file with the key `station batch key` printed (base64)")
    )
    p.add_argument(
        "--batch-key",
        type=Path,
        help=_("file with the key `station batch pubkey` printed (base64)"),
    )
    p.set_defaults(func=cmd_register)

    p = verbs.add_parser("create", help=_("lease records to one station for days, signed"))
    p.add_argument("--db", required=True, help=_("the queue: a SQLite file or postgresql://…"))
    p.add_argument("--key-dir", type=Path, required=True, help=_("the centre's signing key"))
    p.add_argument("--station", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--days", type=float, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_create)

    p = verbs.add_parser("ingest", help=_("apply a station's signed results file"))
    p.add_argument("file", type=Path)
    p.add_argument("--db", required=True, help=_("the queue: a SQLite file or postgresql://…"))
    p.set_defaults(func=cmd_ingest)


def _open(db: str) -> QueueDB:
    return open_queue(db)


def cmd_register(args: argparse.Namespace) -> int:
    if args.key is None and args.batch_key is None:
        raise Refused(Msg("give --key, --batch-key or both"))
    try:
        keys = [
            (what, path.read_text("ascii").strip())
            for what, path in (("results", args.key), ("batch", args.batch_key))
            if path is not None
        ]
        db = _open(args.db)
        try:
            for what, key in keys:
                (register_station_key if what == "results" else register_batch_key)(
                    db, args.station, key
                )
        finally:
            db.close()
    except (OSError, UnicodeDecodeError, sqlite3.Error, SchemaError, BatchFileError) as exc:
        raise Failed(Msg("cannot register the key: {error}", error=str(exc))) from exc
    print(f"station {args.station}: {' and '.join(w for w, _ in keys)} key registered")
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    from central.seed import load_or_create_key

    try:
        key_id, key = load_or_create_key(args.key_dir)
        db = _open(args.db)
        try:
            recipient = batch_key_for(db, args.station)  # before any record is leased
            signed = create_batch(
                db, key, key_id, station_id=args.station, count=args.count, days=args.days
            )
        finally:
            db.close()
        write_sealed(args.out, signed, args.station, recipient)
    except ValueError as exc:
        raise Refused(str(exc)) from exc
    except (OSError, TypeError, sqlite3.Error, SchemaError) as exc:
        raise Failed(Msg("cannot create the batch: {error}", error=str(exc))) from exc
    n = len(signed.body["records"])
    print(
        f"batch {signed.body['batch_id']}: {n} records for station {args.station}, "
        f"valid until {signed.body['expires_at']}, written to {args.out}"
    )
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    try:
        signed = read_signed(args.file)
        db = _open(args.db)
        try:
            report = ingest_results(db, signed)
        finally:
            db.close()
    except BatchFileError as exc:
        raise Refused(Msg("{path}: {error}", path=args.file, error=str(exc))) from exc
    except (OSError, sqlite3.Error, SchemaError) as exc:
        raise Failed(Msg("cannot ingest: {error}", error=str(exc))) from exc
    refused = f", {report.refused} refused (see the audit)" if report.refused else ""
    print(
        f"station {report.station_id}: {report.results} results, {report.new} new, "
        f"{report.duplicates} already known{refused}"
    )
    return 0
