"""Taking a signed record into the buffer: one way, whether it came by lease or by batch.

The centre's grant comes first (station/grants.py): a record not granted to this station,
under this lease, unexpired, is refused and nothing of it kept. Then the record's
signature is checked against the trusted keys before anything else; a record that
fails is kept as ``failed`` (reported to the centre, never printed), unless the station
already holds a record of that id: a refused delivery never touches it. A good one is sealed
with the data key and buffered with its lease and the keyed hash of its NIK.
"""

from __future__ import annotations

import sqlite3

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from station import store
from station.crypto import DataKey
from station.grants import GrantError, SignedGrant, check_grant
from station.records import RecordError, SignedRecord, verify_record

log = structlog.get_logger("station.ingest")


def buffer_signed(conn: sqlite3.Connection, signed: SignedRecord, lease: store.Lease,
                  keys: dict[str, Ed25519PublicKey], data_key: DataKey, *,
                  grant: SignedGrant | None, station_id: str,
                  batch_id: str | None = None) -> bool:
    """Verify and buffer one record under ``lease``; False if it was refused."""
    try:
        check_grant(grant, keys, record_id=lease.record_id, station_id=station_id,
                    lease_id=lease.lease_id, batch_id=batch_id)
    except GrantError as exc:
        # Not granted to this station (a replay, a stale or forged grant): nothing of it
        # is kept, nothing reported; the centre's lease, if any, is another station's.
        store.audit(conn, "delivery_refused", record_id=lease.record_id, detail=exc.reason)
        log.warning("delivery_refused", record_id=lease.record_id, reason=exc.reason)
        return False
    try:
        record = verify_record(signed, keys)
    except RecordError as exc:
        if _held(conn, lease.record_id):
            # A forged twin (same id, bad signature or content) must never change the
            # record this station already holds, whatever its state: kept in the audit only.
            store.audit(conn, "delivery_refused", record_id=lease.record_id, detail=exc.reason)
            log.warning("delivery_refused", record_id=lease.record_id, reason=exc.reason)
            return False
        store.add_record(conn, lease, kind="first", urgent=False, enrolled_at="", payload=b"")
        store.fail_record(conn, lease.record_id, exc.reason)
        log.warning("record_refused", record_id=lease.record_id, reason=exc.reason)
        return False
    payload = data_key.seal(signed.model_dump_json().encode(), lease.record_id.encode())
    store.add_record(conn, lease, kind=record.kind, urgent=record.urgent is not None,
                     enrolled_at=record.enrolled_at.isoformat(), payload=payload,
                     nik_hash=data_key.nik_hash(record.person.nik))
    return True


def _held(conn: sqlite3.Connection, record_id: str) -> bool:
    """Whether the station already has a record of this id (in any state)."""
    return conn.execute("SELECT 1 FROM records WHERE record_id=?", (record_id,)).fetchone() \
        is not None
