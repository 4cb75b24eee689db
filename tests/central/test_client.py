"""The queue client reads the centre's answers as hostile: bounded, per record, finite."""

from __future__ import annotations

import json
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from station.link.client import AnswerTooLarge, CentralRefused, QueueClient
from station.link.protocol import Heartbeat, LeasedRecord
from tests.support.hostile import lease_item

KEY = Ed25519PrivateKey.generate()


class Chunks(httpx.SyncByteStream):
    """A body that arrives in 64 KB pieces, as from a socket."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        for at in range(0, len(self.body), 1 << 16):
            yield self.body[at : at + (1 << 16)]


def client_answering(body: bytes, headers: dict[str, str] | None = None) -> QueueClient:
    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Chunks(body), headers=headers or {})

    return QueueClient(
        "http://centre.test", "t-01", transport=httpx.MockTransport(answer), attempts=1
    )


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes of JSON-ish filler, gzip-compressed chunk by chunk."""
    z = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = b'{"records": ["'
    out = [z.compress(head)]
    chunk = b"A" * (1 << 20)
    for _ in range(size // len(chunk)):
        out.append(z.compress(chunk))
    out.append(z.compress(b'"]}') + z.flush())
    return b"".join(out)


def test_a_gzip_bomb_is_refused_without_being_held_in_memory() -> None:
    """A ~300 KB gzip answer that expands to 300 MB is refused as too large, and reading
    it never holds more than a few tens of MB."""
    bomb = gzip_bomb(300 << 20)
    assert len(bomb) < 1 << 20
    client = client_answering(bomb, {"content-encoding": "gzip"})
    tracemalloc.start()
    try:
        with pytest.raises(AnswerTooLarge, match=r"^/v1/leases: answer larger than \d+ bytes"):
            client.lease(4)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        client.close()
    assert peak < 40 << 20


def test_a_plain_answer_past_the_bound_is_refused() -> None:
    """An uncompressed renew answer over the bound is refused (CentralRefused)."""
    client = client_answering(b'{"renewed": {}, "lost": ["' + b"x" * (5 << 20) + b'"]}')
    with pytest.raises(CentralRefused, match="answer larger than"):
        client.renew(["L-1"])
    client.close()


def test_one_malformed_record_in_a_lease_answer_drops_only_itself() -> None:
    """In a lease answer of 16 with one item's ttl Infinity, 15 records come through and
    the bad one comes back refused with its ids and a reason naming ttl_s."""
    items: list[dict[str, Any]] = [lease_item(i, None, KEY) for i in range(1, 17)]
    items[6]["ttl_s"] = float("inf")
    client = client_answering(json.dumps({"records": items}).encode())
    answer = client.lease(16)
    client.close()
    assert [r.lease_id for r in answer.records] == [f"L-{i:06d}" for i in range(1, 17) if i != 7]
    assert len(answer.refused) == 1
    bad = answer.refused[0]
    assert (bad.record_id, bad.lease_id) == ("PRR-000007", "L-000007")
    assert bad.reason == "invalid lease field ttl_s: Input should be a finite number"


@pytest.mark.parametrize("ttl", ["NaN", "Infinity", "-1", "1e12"])
def test_renewals_with_absurd_ttls_are_refused(ttl: str) -> None:
    """A renew answer with a non-finite, negative or absurd ttl is refused whole."""
    client = client_answering(f'{{"renewed": {{"L-1": {ttl}}}, "lost": []}}'.encode())
    with pytest.raises(CentralRefused, match="unexpected answer"):
        client.renew(["L-1"])
    client.close()


@pytest.mark.parametrize("field", ["blanks", "buffer", "days_left", "burn_rate_per_day"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1])
def test_heartbeat_numbers_are_finite_and_bounded(field: str, value: float) -> None:
    """A heartbeat carrying NaN, infinity or a negative number is refused naming it."""
    beat: dict[str, Any] = {
        "station_id": "t-01",
        "version": "1",
        "printer_state": "ok",
        "blanks": 1,
        "buffer": 0,
        "outbox": 0,
        field: value,
    }
    with pytest.raises(ValidationError, match=field):
        Heartbeat.model_validate(beat)


def test_a_lease_with_a_week_long_ttl_is_the_limit() -> None:
    """Lease ttls up to 7 days pass; a day more is refused."""
    item = lease_item(1, None, KEY, ttl_s=7 * 86400)
    assert LeasedRecord.model_validate(item).ttl_s == 7 * 86400
    item["ttl_s"] = 8 * 86400
    with pytest.raises(ValidationError, match="ttl_s"):
        LeasedRecord.model_validate(item)
