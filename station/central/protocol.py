"""The central queue protocol (HTTP + JSON), shared by the station's client and the
reference server. Every body is one of these models; unknown fields are refused.

    POST /v1/leases           LeaseRequest     → LeaseResponse
    POST /v1/leases/renew     RenewRequest     → RenewResponse
    POST /v1/leases/release   ReleaseRequest   → ReleaseResponse
    POST /v1/results          ResultsRequest   → ResultsResponse
    POST /v1/heartbeat        Heartbeat        → HeartbeatAck
    GET  /v1/summary          (none)           → ServerSummary   (operators and tests)

Errors answer with a non-2xx status and ``{"error": "..."}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from station.grants import SignedGrant
from station.records import SignedRecord

Outcome = Literal["printed", "failed", "deferred", "spoiled"]
ReleaseReason = Literal["no_blanks", "quota", "paused", "shutdown", "expired", "other"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeaseRequest(_Wire):
    station_id: str = Field(min_length=1, max_length=64)
    max: int = Field(ge=0, le=1000)


class LeasedRecord(_Wire):
    lease_id: str
    ttl_s: float = Field(gt=0)
    signed: SignedRecord
    #: The centre's grant of this record to the leasing station (station/grants.py); the
    #: station refuses a record without one.
    grant: SignedGrant | None = None


class LeaseResponse(_Wire):
    records: list[LeasedRecord]


class RenewRequest(_Wire):
    station_id: str
    lease_ids: list[str]


class RenewResponse(_Wire):
    renewed: dict[str, float]  # lease_id → new ttl in seconds
    lost: list[str]  # leases the server no longer holds for this station


class ReleaseRequest(_Wire):
    station_id: str
    lease_ids: list[str]
    reason: ReleaseReason


class ReleaseResponse(_Wire):
    released: list[str]


class CardResult(_Wire):
    result_id: str = Field(min_length=1, max_length=80)  # idempotency key
    record_id: str
    lease_id: str
    outcome: Outcome
    card_serial: str | None = None
    started_at: dt.datetime
    finished_at: dt.datetime
    reason: str | None = None


class ResultsRequest(_Wire):
    station_id: str
    results: list[CardResult] = Field(max_length=1000)


class ResultsResponse(_Wire):
    acked: list[str]  # result_ids, including duplicates already known
    #: result_id → why the centre will never take it (not this station's lease, ...).
    refused: dict[str, str] = Field(default_factory=dict)


class Heartbeat(_Wire):
    station_id: str
    version: str
    printer_state: str
    blanks: int
    buffer: int
    outbox: int
    cards_today: int = 0
    #: Blanks consumed (used + spoiled) a day over the station's burn window.
    burn_rate_per_day: float | None = None
    #: Days of stock left at that rate (None: nothing consumed lately).
    days_left: float | None = None
    #: Attempts waiting for a technician's inspection.
    inspection: int = 0


class HeartbeatAck(_Wire):
    server_time: dt.datetime


class ServerSummary(_Wire):
    records: int
    ready: int
    leased: int
    printed: int
    failed: int
    results: int  # distinct results accepted (duplicates not counted)
    duplicate_results: int  # duplicate deliveries acknowledged again
    printed_twice: list[str]  # record ids with more than one printed result (must be empty)
    heartbeats: int
