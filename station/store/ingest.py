"""Taking a signed record into the buffer: one way, whether it came by lease or by batch."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from station.crypto import DataKey
from station.faces.template import FaceError, check_fits
from station.grants import GrantError, SignedGrant, check_grant
from station.nik import nik_warnings
from station.records import PrintReadyRecord, RecordError, SignedRecord, verify_record
from station.store import audit, buffer

log = structlog.get_logger("station.store.ingest")


def vet(signed: SignedRecord, keys: dict[str, Ed25519PublicKey]) -> PrintReadyRecord:
    """The record if the station may print it, else :class:`RecordError` with the field."""
    record = verify_record(signed, keys)
    try:
        check_fits(record)
    except FaceError as exc:
        raise RecordError(str(exc)) from exc
    return record


def refuse(conn: sqlite3.Connection, lease: buffer.Lease, reason: str) -> None:
    """A delivery the station will not print: kept as failed and reported with ``reason``."""
    if _held(conn, lease.record_id):
        # A forged twin (same id, bad signature or content) must never change the
        # record this station already holds, whatever its state: kept in the audit only.
        audit.audit(conn, "delivery_refused", record_id=lease.record_id, detail=reason)
        log.warning("delivery_refused", record_id=lease.record_id, reason=reason)
        return
    buffer.add_record(conn, lease, kind="first", urgent=False, enrolled_at="", payload=b"")
    buffer.fail_record(conn, lease.record_id, reason)
    log.warning("record_refused", record_id=lease.record_id, reason=reason)


@dataclass(frozen=True)
class Checked:
    """A delivery after :func:`check`: the record, or the reason it is refused."""

    signed: SignedRecord
    record: PrintReadyRecord | None
    reason: str = ""


def check(signed: SignedRecord, keys: dict[str, Ed25519PublicKey]) -> Checked:
    """:func:`vet` without raising; no database needed (callers run it outside the
    database thread: images and layout cost ~2 ms a record)."""
    try:
        return Checked(signed, vet(signed, keys))
    except RecordError as exc:
        return Checked(signed, None, exc.reason)


def buffer_signed(
    conn: sqlite3.Connection,
    signed: SignedRecord,
    lease: buffer.Lease,
    keys: dict[str, Ed25519PublicKey],
    data_key: DataKey,
    *,
    grant: SignedGrant | None,
    station_id: str,
    batch_id: str | None = None,
) -> bool:
    """Verify and buffer one record under ``lease``; False if it was refused."""
    return buffer_checked(
        conn,
        check(signed, keys),
        lease,
        keys,
        data_key,
        grant=grant,
        station_id=station_id,
        batch_id=batch_id,
    )


def granted(
    conn: sqlite3.Connection,
    grant: SignedGrant | None,
    keys: dict[str, Ed25519PublicKey],
    lease: buffer.Lease,
    *,
    station_id: str,
    batch_id: str | None = None,
) -> bool:
    """Whether the centre granted this record to this station under ``lease``; if not,
    the refusal is audited and nothing else of the delivery is kept."""
    try:
        check_grant(
            grant,
            keys,
            record_id=lease.record_id,
            station_id=station_id,
            lease_id=lease.lease_id,
            batch_id=batch_id,
        )
    except GrantError as exc:
        # Not granted to this station (a replay, a stale or forged grant): nothing of it
        # is kept, nothing reported; the centre's lease, if any, is another station's.
        audit.audit(conn, "delivery_refused", record_id=lease.record_id, detail=exc.reason)
        log.warning("delivery_refused", record_id=lease.record_id, reason=exc.reason)
        return False
    return True


def buffer_checked(
    conn: sqlite3.Connection,
    checked: Checked,
    lease: buffer.Lease,
    keys: dict[str, Ed25519PublicKey],
    data_key: DataKey,
    *,
    grant: SignedGrant | None,
    station_id: str,
    batch_id: str | None = None,
) -> bool:
    """Buffer a record :func:`check` accepted, or refuse it; False if it was refused."""
    if not granted(conn, grant, keys, lease, station_id=station_id, batch_id=batch_id):
        return False
    record = checked.record
    if record is None:
        refuse(conn, lease, checked.reason)
        return False
    payload = data_key.seal(checked.signed.model_dump_json().encode(), lease.record_id.encode())
    added = buffer.add_record(
        conn,
        lease,
        kind=record.kind,
        urgent=record.urgent is not None,
        enrolled_at=record.enrolled_at.isoformat(),
        payload=payload,
        nik_hash=data_key.nik_hash(record.person.nik),
    )
    person = record.person
    warnings = nik_warnings(person.nik, person.birth_date, person.sex == "PEREMPUAN")
    if added and warnings:
        audit.audit(conn, "nik_warning", record_id=lease.record_id, detail="; ".join(warnings))
        log.warning("nik_warning", record_id=lease.record_id, detail="; ".join(warnings))
    return True


def _held(conn: sqlite3.Connection, record_id: str) -> bool:
    """Whether the station already has a record of this id (in any state)."""
    return (
        conn.execute("SELECT 1 FROM records WHERE record_id=?", (record_id,)).fetchone() is not None
    )


def nik_warning_list(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, object]]:
    """The latest NIK warnings (record id, time, what disagrees), newest first."""
    rows = conn.execute(
        "SELECT record_id, at, detail FROM audit WHERE event='nik_warning' "
        "ORDER BY at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [{"record_id": r[0], "at": r[1], "detail": r[2]} for r in rows]
