"""The central queue protocol (HTTP + JSON), shared by the station's client and the
reference server. Every body is one of these models; unknown fields are refused."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from station.grants import SignedGrant
from station.records import SignedRecord

Outcome = Literal["printed", "failed", "deferred", "spoiled"]
ReleaseReason = Literal["no_blanks", "quota", "paused", "shutdown", "expired", "other"]


#: Bounds of every number and list on the wire: nothing non-finite, negative or absurd.
MAX_LEASE_TTL_S = 7 * 86400.0  # a lease over the link (offline batches travel as files)
MAX_BATCH = 1000  # records, lease ids or results in one request or answer
MAX_COUNT = 10_000_000  # blanks, buffer, outbox... of one station

#: Ids on the wire: ASCII, printable, bounded (never a place for personal data).
Id = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.:-]+$")]
Ttl = Annotated[float, Field(gt=0, le=MAX_LEASE_TTL_S)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Text = Annotated[str, Field(max_length=500)]
StateCategory = Literal["starting", "ready", "printing", "paused", "error", "stopped"]
#: Counts by a short class name (spoilage classes: station/store/states.py SPOIL_CLASSES).
ByClass = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=40)], Count], Field(max_length=20)
]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class LeaseRequest(_Wire):
    station_id: str = Field(min_length=1, max_length=64)
    max: int = Field(ge=0, le=MAX_BATCH)


class LeasedRecord(_Wire):
    lease_id: Id
    ttl_s: Ttl
    signed: SignedRecord
    #: The centre's grant of this record to the leasing station (station/grants.py); the
    #: station refuses a record without one.
    grant: SignedGrant | None = None


class LeaseResponse(_Wire):
    records: list[LeasedRecord] = Field(max_length=MAX_BATCH)


class LeaseEnvelope(_Wire):
    """A lease answer read leniently: each item is checked on its own
    (:func:`station.link.client.parse_leased`), so one bad item drops only itself."""

    records: list[Any] = Field(max_length=MAX_BATCH)


class RenewRequest(_Wire):
    station_id: str
    lease_ids: list[Id] = Field(max_length=10 * MAX_BATCH)


class RenewResponse(_Wire):
    renewed: dict[Id, Ttl] = Field(max_length=10 * MAX_BATCH)  # lease_id → new ttl (s)
    lost: list[Id] = Field(max_length=10 * MAX_BATCH)  # leases no longer held for us


class ReleaseRequest(_Wire):
    station_id: str
    lease_ids: list[Id] = Field(max_length=10 * MAX_BATCH)
    reason: ReleaseReason


class ReleaseResponse(_Wire):
    released: list[Id] = Field(max_length=10 * MAX_BATCH)


class CardResult(_Wire):
    result_id: Id  # idempotency key
    record_id: Text
    lease_id: Text
    outcome: Outcome
    card_serial: Text | None = None
    started_at: dt.datetime
    finished_at: dt.datetime
    reason: Annotated[str, Field(max_length=10_000)] | None = None


class ResultsRequest(_Wire):
    station_id: str
    results: list[CardResult] = Field(max_length=MAX_BATCH)


class ResultsResponse(_Wire):
    acked: list[Id] = Field(max_length=MAX_BATCH)  # result_ids, duplicates included
    #: result_id → why the centre will never take it (not this station's lease, ...).
    refused: dict[Id, Text] = Field(default_factory=dict, max_length=MAX_BATCH)


class Heartbeat(_Wire):
    station_id: str
    version: Text
    printer_state: Text
    blanks: Count
    buffer: Count
    outbox: Count
    cards_today: Count = 0
    #: Blanks consumed (used + spoiled) a day over the station's burn window.
    burn_rate_per_day: Annotated[float, Field(ge=0, le=MAX_COUNT)] | None = None
    #: Days of stock left at that rate (None: nothing consumed lately).
    days_left: Annotated[float, Field(ge=0, le=MAX_COUNT)] | None = None
    #: Attempts waiting for a technician's inspection.
    inspection: Count = 0
    # What a fleet view needs (issue 15); every one optional: older stations omit them.
    #: The station's state category (starting, ready, printing, paused, error, stopped).
    state: StateCategory | None = None
    #: The state's message code (a message id, never a personal value).
    message_code: Text | None = None
    last_error_code: Text | None = None
    last_error_at: dt.datetime | None = None
    #: Spoiled blanks today, by spoilage class.
    spoiled_today: ByClass | None = None
    #: Cards printed and blanks spoiled (by class) since the station's first card.
    printed_total: Count | None = None
    spoiled_total: ByClass | None = None
    #: Free space on the state volume, in MB.
    disk_free_mb: Annotated[float, Field(ge=0, le=1e12)] | None = None


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


class ErrorBody(_Wire):
    """Every non-2xx answer: one sentence naming what is wrong (a field, a size, an id)."""

    error: str
