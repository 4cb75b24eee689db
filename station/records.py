"""The print-ready record (PRR) as the centre sends it, and its signature.

A record travels as ``SignedRecord``: the record's JSON object, the id of the centre's key
and an Ed25519 signature over :func:`canonical_bytes` of that object. The station checks
the signature against the configured public keys before it parses anything else, then
validates the record (``extra="forbid"``, NIK rules). Failures raise :class:`RecordError`
whose message names the field and never echoes personal values.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from drivers.script import ChipStep
from station.nik import NikError, parse_nik

Kind = Literal["first", "reprint"]
Urgent = Literal["pilgrimage", "medical", "passport"]


class RecordError(ValueError):
    """A record the station must not print; ``reason`` is safe to report and log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Strict):
    nik: str
    name: str = Field(min_length=1, max_length=120)
    birth_place: str = Field(min_length=1, max_length=60)
    birth_date: dt.date
    sex: Literal["LAKI-LAKI", "PEREMPUAN"]
    blood_type: Literal["A", "B", "AB", "O", "-"] = "-"
    address: str = Field(min_length=1, max_length=200)
    rt_rw: str = Field(pattern=r"^\d{3}/\d{3}$")
    kel_desa: str
    kecamatan: str
    religion: str
    marital_status: str
    occupation: str
    nationality: str = "WNI"
    valid_until: str = "SEUMUR HIDUP"

    @field_validator("nik")
    @classmethod
    def _nik_well_formed(cls, value: str) -> str:
        try:
            parse_nik(value)
        except NikError as exc:
            raise ValueError(str(exc)) from exc
        return value


class Region(_Strict):
    province: str
    regency: str


class PrintReadyRecord(_Strict):
    record_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    kind: Kind
    urgent: Urgent | None = None
    enrolled_at: dt.datetime
    person: Person
    region: Region
    issue_place: str
    issue_date: dt.date
    photo_jpeg: str = Field(description="base64 JPEG")
    signature_png: str = Field(description="base64 PNG of the holder's signature")
    chip_script: list[ChipStep] = Field(min_length=1)


class SignedRecord(_Strict):
    record: dict[str, Any]
    key_id: str
    signature: str  # base64 Ed25519 signature over canonical_bytes(record)

    def record_id(self) -> str:
        """The record id, readable before verification (for reporting a rejection)."""
        value = self.record.get("record_id")
        return value if isinstance(value, str) else "?"


def canonical_bytes(obj: dict[str, Any]) -> bytes:
    """The canonical serialization both ends sign: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature_of(obj: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """The base64 Ed25519 signature over :func:`canonical_bytes` of ``obj``."""
    return base64.b64encode(key.sign(canonical_bytes(obj))).decode()


def signature_fault(obj: dict[str, Any], key_id: str, signature: str,
                    keys: dict[str, Ed25519PublicKey]) -> str | None:
    """Why ``signature`` over ``obj`` is not acceptable ("untrusted" key id or "invalid"
    signature), or None when it verifies under the trusted key of that id."""
    key = keys.get(key_id)
    if key is None:
        return "untrusted"
    try:
        key.verify(base64.b64decode(signature), canonical_bytes(obj))
    except (InvalidSignature, ValueError):
        return "invalid"
    return None


def sign_record(record: dict[str, Any], key: Ed25519PrivateKey, key_id: str) -> SignedRecord:
    return SignedRecord(record=record, key_id=key_id, signature=signature_of(record, key))


def verify_record(signed: SignedRecord, keys: dict[str, Ed25519PublicKey]) -> PrintReadyRecord:
    """Check the signature, then the content; :class:`RecordError` says what is wrong."""
    fault = signature_fault(signed.record, signed.key_id, signed.signature, keys)
    if fault == "untrusted":
        raise RecordError(f"signature key id {signed.key_id!r} is not trusted by this station")
    if fault == "invalid":
        raise RecordError("signature does not verify")
    return parse_record(signed.record)


def parse_record(data: dict[str, Any]) -> PrintReadyRecord:
    try:
        return PrintReadyRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        # The message of our own validators is safe; pydantic's input echo is not included.
        raise RecordError(f"invalid field {where}: {first['msg']}") from exc


def public_key_b64(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def load_public_key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))
