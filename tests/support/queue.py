"""The reference queue server driven by hand: signed records, leases and results over HTTP."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.seed import make_record
from station.records import SignedRecord, sign_record

NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
KEY = Ed25519PrivateKey.generate()


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_750_000_000.0

    def __call__(self) -> float:
        return self.t


def signed(index: int, **overrides: Any) -> SignedRecord:
    record = make_record(index, seed=7, now=NOW)
    record.update(overrides)
    return sign_record(record, KEY, "central-1")


def lease(http: httpx.Client, station: str, n: int) -> list[tuple[str, str]]:
    """(record_id, lease_id) pairs leased by ``station``."""
    resp = http.post("/v1/leases", json={"station_id": station, "max": n})
    assert resp.status_code == 200, resp.text
    return [(r["signed"]["record"]["record_id"], r["lease_id"]) for r in resp.json()["records"]]


def result(
    record_id: str, lease_id: str, outcome: str, result_id: str | None = None
) -> dict[str, Any]:
    return {
        "result_id": result_id or uuid.uuid4().hex,
        "record_id": record_id,
        "lease_id": lease_id,
        "outcome": outcome,
        "card_serial": "04A1B2C3D4E5F6" if outcome == "printed" else None,
        "started_at": NOW.isoformat(),
        "finished_at": NOW.isoformat(),
        "reason": None,
    }


def post_results(http: httpx.Client, station: str, *results: dict[str, Any]) -> list[str]:
    resp = http.post("/v1/results", json={"station_id": station, "results": list(results)})
    assert resp.status_code == 200, resp.text
    acked: list[str] = resp.json()["acked"]
    return acked
