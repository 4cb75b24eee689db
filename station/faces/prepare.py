"""One decrypted record parsed and its face rendered: the work the face helper does (and the
daemon itself when the helper is gone)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from drivers.base import PrintJob
from station.faces.template import FaceError, to_print_job
from station.faults import script_fault
from station.records import PrintReadyRecord, RecordError, SignedRecord, parse_record


@dataclass(frozen=True)
class Prepared:
    record: PrintReadyRecord
    job: PrintJob
    #: What makes the chip script fail its own checks (:func:`station.faults.script_fault`)
    #: without and with a SAM channel: found here, off the printer worker's path.
    script_faults: tuple[str | None, str | None]

    def script_fault(self, *, sam: bool) -> str | None:
        return self.script_faults[sam]


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
    steps = list(record.chip_script)
    return Prepared(record, job, (script_fault(steps, sam=False), script_fault(steps, sam=True)))
