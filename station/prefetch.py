"""Card faces rendered one record ahead, on their own thread, so the printer never waits
for Pillow (a face takes tens of milliseconds: render and PNG).

The worker asks for the record it just started; if that is the one prepared ahead, the
work is already done (or finishing), otherwise it is done now. Then it names the record
likely to come next, and that one is prepared while the current card is in the printer.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from drivers.base import PrintJob
from station import store
from station.crypto import DataKey
from station.face import FaceError, to_print_job
from station.records import PrintReadyRecord, RecordError, SignedRecord, parse_record


@dataclass(frozen=True)
class Prepared:
    record: PrintReadyRecord
    job: PrintJob


class FacePrefetcher:
    def __init__(self, data_key: DataKey) -> None:
        self._data_key = data_key
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="face")
        self._ahead: tuple[str, Future[Prepared]] | None = None

    def prepare(self, buffered: store.BufferedRecord) -> Prepared:
        """Open, parse and render one buffered record. The signature was verified when it
        was leased and the sealed payload is authenticated (AES-GCM), so only its content
        is checked again. RecordError or FaceError: the record cannot be printed."""
        rid = buffered.record_id
        signed = SignedRecord.model_validate_json(
            self._data_key.open(buffered.payload, rid.encode()))
        record = parse_record(signed.record)
        try:
            job = to_print_job(record)
        except FaceError as exc:
            raise RecordError(f"card face: {exc}") from exc
        return Prepared(record, job)

    def get(self, buffered: store.BufferedRecord) -> Prepared:
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == buffered.record_id:
            return ahead[1].result()
        return self.prepare(buffered)

    def ahead(self, buffered: store.BufferedRecord | None) -> None:
        """Start preparing the record expected next (errors surface when it is taken)."""
        if buffered is not None:
            self._ahead = (buffered.record_id, self._pool.submit(self.prepare, buffered))

    def close(self) -> None:
        self._ahead = None
        self._pool.shutdown(wait=True, cancel_futures=True)
