"""Faces prepared ahead: what the printer worker gets when the helper fails."""

from __future__ import annotations

import json
import os

from structlog.testing import capture_logs

from central.seed import make_record
from station.crypto import DataKey
from station.faces.prefetch import FacePrefetcher
from station.faces.prepare import prepare_plain
from station.store import buffer


def sealed(key: DataKey, index: int) -> tuple[buffer.BufferedRecord, bytes]:
    record = make_record(index)
    plain = json.dumps({"record": record, "key_id": "k", "signature": "AA=="}).encode()
    rid = record["record_id"]
    return buffer.BufferedRecord(rid, f"L-{rid}", key.seal(plain, rid.encode()), 0), plain


def test_a_killed_helper_means_the_face_is_drawn_here_and_a_new_helper_starts() -> None:
    """The record prepared ahead by a helper that then died is prepared in-process, the
    event is logged, and the next record goes to a fresh helper."""
    key = DataKey(os.urandom(32))
    faces = FacePrefetcher(key)
    try:
        first, first_plain = sealed(key, 1)
        second, _ = sealed(key, 2)
        faces.start()
        faces.ahead(first)
        dead = faces.helper_pid
        assert dead is not None
        os.kill(dead, 9)
        with capture_logs() as logs:
            prepared = faces.get(first)
        assert prepared.job.front == prepare_plain(first_plain).job.front
        assert [e["event"] for e in logs] == ["face_helper_gone"]
        faces.ahead(second)
        assert faces.get(second).record.record_id == second.record_id
        assert faces.helper_pid not in (None, dead)
    finally:
        faces.close()


def test_a_record_not_prepared_ahead_is_prepared_on_demand() -> None:
    """Asking for a record other than the one prepared ahead gives that record's face."""
    key = DataKey(os.urandom(32))
    faces = FacePrefetcher(key)
    try:
        ahead, _ = sealed(key, 3)
        other, other_plain = sealed(key, 4)
        faces.ahead(ahead)
        assert faces.get(other).job.front == prepare_plain(other_plain).job.front
    finally:
        faces.close()
