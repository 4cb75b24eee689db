"""One decrypted record parsed and its face rendered: the work the face helper does (and the
daemon itself when the helper is gone)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from drivers.base import PrintJob
from station.faces.template import FaceError, to_print_job
from station.records import PrintReadyRecord, RecordError, SignedRecord, parse_record


@dataclass(frozen=True)
class Prepared:
    record: PrintReadyRecord
    job: PrintJob


def prepare_plain(plain: bytes) -> Prepared:
    """Parse and render one decrypted SignedRecord. The signature was verified when the
    record was leased and the sealed payload is authenticated (AES-GCM), so only its
    content is checked again. RecordError: the record cannot be printed."""
    try:
        signed = SignedRecord.model_validate_json(plain)
    except ValidationError as exc:
        raise RecordError("the buffered payload is not a signed record") from exc
    record = parse_record(signed.record)
    try:
        job = to_print_job(record)
    except FaceError as exc:
        raise RecordError(f"card face: {exc}") from exc
    return Prepared(record, job)
