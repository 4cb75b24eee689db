"""The queue client: typed calls over httpx, one exception per kind of failure."""

from __future__ import annotations

import re
import ssl
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import (
    retry,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from station.grants import SignedGrant
from station.i18n import N_, Msg
from station.link.protocol import (
    CardResult,
    Heartbeat,
    HeartbeatAck,
    LeasedRecord,
    LeaseEnvelope,
    LeaseRequest,
    ReleaseReason,
    ReleaseRequest,
    ReleaseResponse,
    RenewRequest,
    RenewResponse,
    ResultsRequest,
    ResultsResponse,
)
from station.records import MAX_RECORD_BYTES, first_error

M = TypeVar("M", bound=BaseModel)

#: Largest decompressed answer to anything but a lease (renewals of 10,000 leases fit).
MAX_ANSWER_BYTES = 4 << 20
#: A lease answer may hold one record of at most this size per record asked, plus slack.
LEASE_ITEM_BYTES = MAX_RECORD_BYTES + 4096
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class CentralError(Exception):
    pass


#: httpx's transport errors a link meets, by name: the English text stays the name (what
#: engineers search for); the catalog says in words what happened.
TRANSPORT_ERRORS = {
    "ConnectError": N_("ConnectError"),
    "ConnectTimeout": N_("ConnectTimeout"),
    "ReadTimeout": N_("ReadTimeout"),
    "WriteTimeout": N_("WriteTimeout"),
    "PoolTimeout": N_("PoolTimeout"),
    "ReadError": N_("ReadError"),
    "WriteError": N_("WriteError"),
    "RemoteProtocolError": N_("RemoteProtocolError"),
}


class LinkDown(CentralError):
    """The centre cannot be reached now; retry later (transient)."""


class TlsFailure(LinkDown):
    """The TLS handshake failed: a certificate is not trusted or was refused."""


class CentralRefused(CentralError):
    """The centre answered but refused the request, or answered nonsense (permanent)."""


class AnswerTooLarge(CentralRefused):
    """The answer grew past its bound while it was read (nothing more is read)."""


@dataclass(frozen=True)
class RefusedLease:
    """A lease item that is not a well-formed leased record. ``record_id`` and
    ``lease_id`` are set when they can be read (then the refusal is reported to the
    centre as ``failed``); ``reason`` names the field."""

    record_id: str | None
    lease_id: str | None
    ttl_s: float | None
    reason: str
    grant: SignedGrant | None = None  # the centre's grant, when it is well-formed


@dataclass(frozen=True)
class LeaseAnswer:
    records: list[LeasedRecord]
    refused: list[RefusedLease]


def _readable_id(value: object) -> str | None:
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def parse_leased(item: Any) -> LeasedRecord | RefusedLease:
    """One item of a lease answer, checked on its own."""
    try:
        return LeasedRecord.model_validate(item)
    except ValidationError as exc:
        where, rule = first_error(exc, "item")
        reason = f"invalid lease field {where}: {rule}"
    record_id = lease_id = None
    ttl = None
    grant = None
    if isinstance(item, dict):
        lease_id = _readable_id(item.get("lease_id"))
        raw_ttl = item.get("ttl_s")
        if isinstance(raw_ttl, int | float) and not isinstance(raw_ttl, bool):
            ttl = float(raw_ttl)
        signed = item.get("signed")
        record = signed.get("record") if isinstance(signed, dict) else None
        if isinstance(record, dict):
            record_id = _readable_id(record.get("record_id"))
        try:
            grant = SignedGrant.model_validate(item.get("grant"))
        except ValidationError:
            grant = None
    return RefusedLease(record_id, lease_id, ttl, reason, grant)


def _decoder(encoding: str) -> Any:
    if encoding in ("", "identity"):
        return None
    if encoding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise CentralRefused(f"answer in an unsupported content-encoding {encoding[:20]!r}")


def read_bounded(chunks: Iterator[bytes], encoding: str, limit: int, what: str) -> bytes:
    """The body from raw ``chunks``, decompressed, refused past ``limit`` bytes."""
    decoder = _decoder(encoding.strip().lower())
    out = bytearray()

    def take(data: bytes) -> None:
        out.extend(data)
        if len(out) > limit:
            raise AnswerTooLarge(f"{what}: answer larger than {limit} bytes (refused)")

    try:
        for chunk in chunks:
            if decoder is None:
                take(chunk)
                continue
            data = chunk
            while data:
                # Never more than what is still allowed (+1 to see it overflow).
                take(decoder.decompress(data, limit - len(out) + 1))
                data = decoder.unconsumed_tail
        if decoder is not None:
            take(decoder.flush())
    except zlib.error as exc:
        raise CentralRefused(f"{what}: answer does not decompress") from exc
    return bytes(out)


@dataclass(frozen=True)
class TlsSettings:
    """How to trust the centre (CA bundle) and prove this station (client certificate)."""

    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.client_cert is not None:
            ctx.load_cert_chain(
                str(self.client_cert), str(self.client_key) if self.client_key else None
            )
        return ctx


class QueueClient:
    def __init__(
        self,
        base_url: str,
        station_id: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        attempts: int = 3,
        tls: TlsSettings | None = None,
    ) -> None:
        self.station_id = station_id
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout_s,
            transport=transport,
            verify=(tls or TlsSettings()).context(),
        )
        self._post = retry(
            retry=retry_if_exception_type(LinkDown) & retry_if_not_exception_type(TlsFailure),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0),
            stop=stop_after_attempt(attempts),
            reraise=True,
        )(self._post_once)

    def close(self) -> None:
        self._http.close()

    def _post_once(
        self, path: str, body: BaseModel, answer: type[M], limit: int = MAX_ANSWER_BYTES
    ) -> M:
        headers = {"content-type": "application/json", "accept-encoding": "gzip"}
        try:
            with self._http.stream(
                "POST", path, content=body.model_dump_json(), headers=headers
            ) as resp:
                if resp.status_code >= 500 or resp.status_code == 429:
                    raise LinkDown(Msg("{path}: HTTP {status}", path=path, status=resp.status_code))
                raw = read_bounded(
                    resp.iter_raw(), resp.headers.get("content-encoding", ""), limit, path
                )
        except httpx.TransportError as exc:
            tls = describe_tls_failure(exc)
            if tls is not None:
                raise TlsFailure(f"{path}: {tls}") from exc
            name = type(exc).__name__
            why = Msg(TRANSPORT_ERRORS[name]) if name in TRANSPORT_ERRORS else name
            raise LinkDown(Msg("{path}: {error}", path=path, error=why)) from exc
        if resp.status_code >= 400:
            text = raw[:200].decode("utf-8", "replace")
            raise CentralRefused(f"{path}: HTTP {resp.status_code} {text}")
        try:
            return answer.model_validate_json(raw)
        except ValidationError as exc:
            raise CentralRefused(f"{path}: unexpected answer ({exc.error_count()} errors)") from exc

    def lease(self, max_records: int) -> LeaseAnswer:
        """Leased records, each checked on its own; malformed items come back refused."""
        envelope = self._post(
            "/v1/leases",
            LeaseRequest(station_id=self.station_id, max=max_records),
            LeaseEnvelope,
            64 * 1024 + max(1, max_records) * LEASE_ITEM_BYTES,
        )
        good: list[LeasedRecord] = []
        refused: list[RefusedLease] = []
        for item in envelope.records:
            parsed = parse_leased(item)
            if isinstance(parsed, LeasedRecord):
                good.append(parsed)
            else:
                refused.append(parsed)
        return LeaseAnswer(good, refused)

    def renew(self, lease_ids: list[str]) -> RenewResponse:
        return self._post(
            "/v1/leases/renew",
            RenewRequest(station_id=self.station_id, lease_ids=lease_ids),
            RenewResponse,
        )

    def release(self, lease_ids: list[str], reason: ReleaseReason) -> ReleaseResponse:
        body = ReleaseRequest(station_id=self.station_id, lease_ids=lease_ids, reason=reason)
        return self._post("/v1/leases/release", body, ReleaseResponse)

    def results(self, results: list[CardResult]) -> ResultsResponse:
        return self._post(
            "/v1/results",
            ResultsRequest(station_id=self.station_id, results=results),
            ResultsResponse,
        )

    def heartbeat(self, beat: Heartbeat) -> HeartbeatAck:
        return self._post("/v1/heartbeat", beat, HeartbeatAck)


def describe_tls_failure(exc: BaseException) -> str | None:
    """A short operator-facing reason when ``exc`` (or what caused it) is a TLS failure."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            return (
                f"TLS: the centre's certificate is not trusted ({cur.verify_message}): "
                "check central.ca_file"
            )
        if isinstance(cur, ssl.SSLError):
            reason = (cur.reason or "").lower()
            if "certificate" in reason or "alert" in reason:
                return (
                    f"TLS: the centre refused the handshake ({cur.reason}): "
                    "check central.client_cert and central.client_key"
                )
            return f"TLS: {cur.reason or type(cur).__name__}"
        cur = cur.__cause__ or cur.__context__
    return None
