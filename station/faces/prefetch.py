"""Card faces prepared one record ahead in a helper process, so the printer never waits
for Pillow and the daemon's threads never wait behind it."""

from __future__ import annotations

import structlog

from station.crypto import DataKey
from station.faces.helper import FaceHelper, HelperGone
from station.faces.prepare import Prepared, prepare_plain
from station.store import buffer

log = structlog.get_logger(__name__)


class FacePrefetcher:
    def __init__(self, data_key: DataKey) -> None:
        self._data_key = data_key
        self._helper = FaceHelper()
        self._ahead: tuple[str, bytes] | None = None  # record sent to the helper ahead

    @property
    def helper_pid(self) -> int | None:
        """The face helper's process id while it runs (for the technician and tests)."""
        return self._helper.pid

    def start(self) -> None:
        """Start the helper process before the first card (it loads in the background)."""
        self._helper.start()

    def _plain(self, buffered: buffer.BufferedRecord) -> bytes:
        return self._data_key.open(buffered.payload, buffered.record_id.encode())

    def get(self, buffered: buffer.BufferedRecord) -> Prepared:
        """The prepared record (RecordError if it cannot be printed)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == buffered.record_id:
            plain = ahead[1]
        else:
            plain = self._plain(buffered)
            try:
                self._helper.send(plain)
            except HelperGone as exc:
                return self._here(plain, exc)
        try:
            prepared: Prepared = self._helper.receive()
        except HelperGone as exc:
            return self._here(plain, exc)
        return prepared

    def ahead(self, buffered: buffer.BufferedRecord | None) -> None:
        """Start preparing the record expected next (errors surface when it is taken)."""
        if buffered is None:
            return
        plain = self._plain(buffered)
        try:
            self._helper.send(plain)
        except HelperGone:
            return
        self._ahead = (buffered.record_id, plain)

    @staticmethod
    def _here(plain: bytes, exc: HelperGone) -> Prepared:
        log.warning("face_helper_gone", detail=str(exc))
        return prepare_plain(plain)

    def close(self) -> None:
        self._ahead = None
        self._helper.stop()
