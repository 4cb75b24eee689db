"""Offline batches, the station's side: for offices cut off from the centre for days."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from station.batchkeys import (
    load_or_create_batch_key,
    load_or_create_station_key,
    station_key_path,
    station_public_key,
)
from station.config import StationConfig
from station.crypto import DataKey, bind_data_key
from station.link.batchfile import (
    BatchBody,
    BatchFileError,
    ResultsBody,
    read_sealed,
    sign_body,
    station_key_id,
    verify_body,
    write_signed,
)
from station.link.protocol import CardResult
from station.records import public_key_b64
from station.store import audit, buffer
from station.store.db import connect, migrate, transaction
from station.store.ingest import buffer_signed

log = structlog.get_logger("station.batch")
__all__ = ["station_key_path", "station_public_key"]  # kept importable from here


@dataclass(frozen=True)
class ImportReport:
    batch_id: str
    buffered: int  # new records in the buffer
    known: int  # already known to this station: left as they are
    refused: int  # failed verification: reported failed, never printed
    expires_at: dt.datetime
    expired: int = 0  # lease already over (or within the lease margin): not buffered


@dataclass(frozen=True)
class ExportReport:
    results: int
    path: Path
    public_key: str


# -- import ----------------------------------------------------------------------------


def import_batch(
    cfg: StationConfig, path: Path, *, data_key: DataKey | None = None, now: float | None = None
) -> ImportReport:
    """Verify a batch file and buffer its records with their leases, in one transaction."""
    from station.boot import boot_id
    from station.daemon import trusted_keys

    keys = trusted_keys(cfg)
    body = verify_body(read_sealed(path, load_or_create_batch_key(cfg)), keys, BatchBody)
    if body.station_id != cfg.station_id:
        raise BatchFileError(
            f"batch {body.batch_id} is addressed to station "
            f"{body.station_id}, not to this station ({cfg.station_id})"
        )
    wall = time.time() if now is None else now
    if body.expires_at.timestamp() <= wall:
        raise BatchFileError(f"batch {body.batch_id} expired at {body.expires_at.isoformat()}")
    boot = boot_id()

    margin = cfg.pipeline.lease_margin_s
    if body.records and all(i.expires_at.timestamp() - margin <= wall for i in body.records):
        raise BatchFileError(
            f"batch {body.batch_id}: every lease in it has expired (or ends "
            f"within {margin:g} s): ask the centre for a new batch"
        )

    def buffer_all(conn: sqlite3.Connection) -> tuple[int, int, int, int]:
        buffered = known = refused = expired = 0
        mono_now = time.monotonic()
        for item in body.records:
            rid = item.signed.record_id()
            row = conn.execute("SELECT status FROM records WHERE record_id=?", (rid,)).fetchone()
            if row is not None and row[0] not in ("dropped", "released"):
                known += 1  # queued, in the printer, printed or failed here: left alone
                continue
            deadline = item.expires_at.timestamp()
            if deadline - margin <= wall:
                # Never started after its lease: it may be printing elsewhere by now.
                audit.audit(
                    conn,
                    "batch_lease_expired",
                    record_id=rid,
                    detail=f"{body.batch_id}: lease ended {item.expires_at.isoformat()}",
                )
                expired += 1
                continue
            lease = buffer.Lease(rid, item.lease_id, deadline, mono_now + (deadline - wall), boot)
            if buffer_signed(
                conn,
                item.signed,
                lease,
                keys,
                sealing,
                grant=item.grant,
                station_id=cfg.station_id,
                batch_id=body.batch_id,
            ):
                buffered += 1
            else:
                refused += 1
        audit.audit(
            conn,
            "batch_imported",
            detail=f"{body.batch_id}: {buffered} buffered, {known} known, "
            f"{refused} refused, {expired} expired",
        )
        return buffered, known, refused, expired

    conn = connect(cfg.db_path)
    try:
        migrate(conn)
        sealing = transaction(conn, lambda c: bind_data_key(c, cfg.key_path, data_key))
        buffered, known, refused, expired = transaction(conn, buffer_all)
    finally:
        conn.close()
    log.info(
        "batch_imported",
        batch=body.batch_id,
        buffered=buffered,
        known=known,
        refused=refused,
        expired=expired,
    )
    return ImportReport(body.batch_id, buffered, known, refused, body.expires_at, expired)


# -- export ----------------------------------------------------------------------------


def export_results(
    cfg: StationConfig, path: Path, *, since: float | None = None, now: float | None = None
) -> ExportReport:
    """Write the results not yet acknowledged (or all created since ``since``, epoch s)
    as a file signed with the station's key; the outbox is left as it is."""
    key = load_or_create_station_key(cfg)
    if not cfg.db_path.exists():
        raise BatchFileError(f"no station database at {cfg.db_path}: nothing to export")
    conn = connect(cfg.db_path, readonly=True)
    try:
        if since is None:
            rows = conn.execute(
                "SELECT body FROM outbox WHERE acked_at IS NULL ORDER BY created_at"
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT body FROM outbox WHERE created_at >= ? ORDER BY created_at", (since,)
            ).fetchall()
    finally:
        conn.close()
    body = ResultsBody(
        station_id=cfg.station_id,
        exported_at=dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC),
        results=[CardResult.model_validate_json(r[0]) for r in rows],
    )
    write_signed(path, sign_body(body, key, station_key_id(cfg.station_id)))
    log.info("results_exported", results=len(body.results))
    return ExportReport(len(body.results), path, public_key_b64(key.public_key()))
