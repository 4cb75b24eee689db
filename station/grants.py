"""Grants: the centre's signed word that one record may be printed by one station."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from station.records import first_error, signature_of, signature_refusal

#: A grant still counts this long after its time, for the station's clock running ahead
#: of the centre's (PCs in the field drift; the lease itself is timed by the monotonic
#: clock from the moment it arrived, see ``station.boot.lease_check``).
CLOCK_SKEW_S = 300.0


class GrantError(ValueError):
    """A delivery this station must not take; ``reason`` names ids, never personal data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Grant(_Strict):
    record_id: str = Field(min_length=1, max_length=64)
    station_id: str = Field(min_length=1, max_length=64)
    lease_id: str = Field(min_length=1, max_length=64)
    batch_id: str | None = Field(default=None, min_length=1, max_length=64)
    expires_at: AwareDatetime


class SignedGrant(_Strict):
    grant: dict[str, Any]
    key_id: str = Field(max_length=64)
    signature: str = Field(max_length=200)  # base64 Ed25519 over canonical_bytes(grant)


def sign_grant(
    key: Ed25519PrivateKey,
    key_id: str,
    *,
    record_id: str,
    station_id: str,
    lease_id: str,
    expires_at: float,
    batch_id: str | None = None,
) -> SignedGrant:
    """The centre's grant of ``record_id`` to ``station_id`` under ``lease_id`` (and
    ``batch_id``) until ``expires_at`` (epoch seconds)."""
    grant = Grant(
        record_id=record_id,
        station_id=station_id,
        lease_id=lease_id,
        batch_id=batch_id,
        expires_at=dt.datetime.fromtimestamp(expires_at, dt.UTC),
    )
    data: dict[str, Any] = grant.model_dump(mode="json")
    return SignedGrant(grant=data, key_id=key_id, signature=signature_of(data, key))


def check_grant(
    signed: SignedGrant | None,
    keys: dict[str, Ed25519PublicKey],
    *,
    record_id: str,
    station_id: str,
    lease_id: str,
    batch_id: str | None = None,
    now: float | None = None,
) -> Grant:
    """The verified grant, or :class:`GrantError` saying why this delivery is not ours."""
    if signed is None:
        raise GrantError("no grant from the centre came with the record: refused")
    refusal = signature_refusal(signed.grant, signed.key_id, signed.signature, keys, "grant")
    if refusal:
        raise GrantError(refusal)
    try:
        grant = Grant.model_validate(signed.grant)
    except ValidationError as exc:
        where, rule = first_error(exc, "grant")
        raise GrantError(f"invalid grant: field {where}: {rule}") from exc
    if grant.station_id != station_id:
        raise GrantError(
            f"granted to station {grant.station_id!r}, not to this station ({station_id!r})"
        )
    if grant.record_id != record_id:
        raise GrantError(f"the grant is for record {grant.record_id!r}, not {record_id!r}")
    if grant.lease_id != lease_id:
        raise GrantError("the grant is for another lease than the one it came with")
    if batch_id is not None and grant.batch_id != batch_id:
        raise GrantError(f"the grant belongs to another batch than {batch_id!r}")
    wall = time.time() if now is None else now
    if grant.expires_at.timestamp() + CLOCK_SKEW_S <= wall:
        raise GrantError(f"the grant expired at {grant.expires_at.isoformat()}")
    return grant
