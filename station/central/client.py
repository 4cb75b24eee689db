"""The queue client: typed calls over httpx, one exception per kind of failure.

``LinkDown`` (connection refused, timeout, reset, 5xx, 429) is transient and retried with
exponential backoff and jitter; ``CentralRefused`` (other 4xx, a body that does not parse)
is not. ``TlsFailure`` is a ``LinkDown`` whose message says what TLS refused (the centre's
certificate not trusted, or this station's certificate refused): the link shows down with
that reason and no record arrives, but it is not retried within one call.
Tests inject an ``httpx.MockTransport`` or point it at the reference server.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import (
    retry,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from station.central.protocol import (
    CardResult,
    Heartbeat,
    HeartbeatAck,
    LeaseRequest,
    LeaseResponse,
    ReleaseReason,
    ReleaseRequest,
    ReleaseResponse,
    RenewRequest,
    RenewResponse,
    ResultsRequest,
    ResultsResponse,
)
from station.central.tls import describe_tls_failure

M = TypeVar("M", bound=BaseModel)


class CentralError(Exception):
    pass


class LinkDown(CentralError):
    """The centre cannot be reached now; retry later (transient)."""


class TlsFailure(LinkDown):
    """The TLS handshake failed: a certificate is not trusted or was refused."""


class CentralRefused(CentralError):
    """The centre answered but refused the request, or answered nonsense (permanent)."""


@dataclass(frozen=True)
class TlsSettings:
    """How to trust the centre (CA bundle) and prove this station (client certificate)."""

    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.client_cert is not None:
            ctx.load_cert_chain(str(self.client_cert),
                                str(self.client_key) if self.client_key else None)
        return ctx


class QueueClient:
    def __init__(self, base_url: str, station_id: str, *, timeout_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None, attempts: int = 3,
                 tls: TlsSettings | None = None) -> None:
        self.station_id = station_id
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport,
                                  verify=(tls or TlsSettings()).context())
        self._post = retry(
            retry=retry_if_exception_type(LinkDown) & retry_if_not_exception_type(TlsFailure),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0),
            stop=stop_after_attempt(attempts),
            reraise=True,
        )(self._post_once)

    def close(self) -> None:
        self._http.close()

    def _post_once(self, path: str, body: BaseModel, answer: type[M]) -> M:
        try:
            resp = self._http.post(path, content=body.model_dump_json(),
                                   headers={"content-type": "application/json"})
        except httpx.TransportError as exc:
            tls = describe_tls_failure(exc)
            if tls is not None:
                raise TlsFailure(f"{path}: {tls}") from exc
            raise LinkDown(f"{path}: {type(exc).__name__}") from exc
        if resp.status_code >= 500 or resp.status_code == 429:
            raise LinkDown(f"{path}: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise CentralRefused(f"{path}: HTTP {resp.status_code} {resp.text[:200]}")
        try:
            return answer.model_validate_json(resp.content)
        except ValidationError as exc:
            raise CentralRefused(f"{path}: unexpected answer ({exc.error_count()} errors)") from exc

    def lease(self, max_records: int) -> LeaseResponse:
        return self._post("/v1/leases", LeaseRequest(station_id=self.station_id, max=max_records),
                          LeaseResponse)

    def renew(self, lease_ids: list[str]) -> RenewResponse:
        return self._post("/v1/leases/renew",
                          RenewRequest(station_id=self.station_id, lease_ids=lease_ids),
                          RenewResponse)

    def release(self, lease_ids: list[str], reason: ReleaseReason) -> ReleaseResponse:
        body = ReleaseRequest(station_id=self.station_id, lease_ids=lease_ids, reason=reason)
        return self._post("/v1/leases/release", body, ReleaseResponse)

    def results(self, results: list[CardResult]) -> ResultsResponse:
        return self._post("/v1/results",
                          ResultsRequest(station_id=self.station_id, results=results),
                          ResultsResponse)

    def heartbeat(self, beat: Heartbeat) -> HeartbeatAck:
        return self._post("/v1/heartbeat", beat, HeartbeatAck)
