"""The print-ready record (PRR) as the centre sends it, and its signature."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from drivers.script import ChipStep
from station import images
from station.cardtext import ASCII_DIGIT, card_text
from station.nik import NikError, parse_nik, province_codes

Kind = Literal["first", "reprint"]
Urgent = Literal["pilgrimage", "medical", "passport"]

#: Closed vocabularies, spelled as the card prints them (Agama: the six recognised
#: religions and, since the 2017 Constitutional Court ruling, the native beliefs).
RELIGIONS = (
    "ISLAM",
    "KRISTEN",
    "KATOLIK",
    "HINDU",
    "BUDDHA",
    "KONGHUCU",
    "KEPERCAYAAN TERHADAP TUHAN YME",
)
MARITAL_STATUSES = (
    "BELUM KAWIN",
    "KAWIN",
    "CERAI HIDUP",
    "CERAI MATI",
    "KAWIN TERCATAT",
    "KAWIN BELUM TERCATAT",
)
FOR_LIFE = "SEUMUR HIDUP"

#: Date bounds. Nobody alive was born before 1900. KTP-el enrolment and issue began with
#: the 2009 pilot (Perpres 26/2009; national roll-out 2011): nothing earlier is KTP-el.
#: Clocks at the centre and the station may disagree, and Indonesian local dates run up
#: to 9 h ahead of UTC: "the future" starts one day after today (UTC).
EARLIEST_BIRTH = dt.date(1900, 1, 1)
KTPEL_START = dt.date(2009, 1, 1)
CLOCK_SKEW = dt.timedelta(days=1)
#: A foreign resident's card is valid for the stay permit: at most 10 years after issue.
MAX_VALIDITY = dt.timedelta(days=3653)
#: Canonical JSON of one record, at most (photo and signature limits plus the chip
#: script fit well inside).
MAX_RECORD_BYTES = 1 << 20

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CARD_DATE = re.compile(r"([0-9]{2})-([0-9]{2})-([0-9]{4})")
_ID = r"^[A-Za-z0-9_.:-]+$"


class RecordError(ValueError):
    """A record the station must not print; ``reason`` is safe to report and log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FieldFault(ValueError):
    """A rule across fields broken; ``field`` is the one named in the refusal."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _latest(days: dt.timedelta = CLOCK_SKEW) -> dt.date:
    return dt.datetime.now(dt.UTC).date() + days


def _iso_date(value: Any) -> Any:
    """Dates travel as ISO text (YYYY-MM-DD): no numbers, no other forms."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


def _iso_datetime(value: Any) -> Any:
    if not isinstance(value, str) or not value.isascii() or len(value) > 40:
        raise ValueError("must be an ISO 8601 date and time with its UTC offset")
    return value


def _date_between(value: dt.date, earliest: dt.date, what: str) -> dt.date:
    if value < earliest:
        raise ValueError(f"is before {earliest.isoformat()} ({what})")
    if value > _latest():
        raise ValueError("is in the future")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
BirthDate = Annotated[
    IsoDate,
    AfterValidator(lambda v: _date_between(v, EARLIEST_BIRTH, "not a plausible birth date")),
]
IssueDate = Annotated[
    IsoDate, AfterValidator(lambda v: _date_between(v, KTPEL_START, "KTP-el did not exist"))
]


def _enrolment_time(value: dt.datetime) -> dt.datetime:
    _date_between(value.astimezone(dt.UTC).date(), KTPEL_START, "KTP-el did not exist")
    return value


EnrolledAt = Annotated[
    AwareDatetime, BeforeValidator(_iso_datetime), AfterValidator(_enrolment_time)
]


def _one_of(options: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in options:
            raise ValueError(f"must be one of: {', '.join(options)}")
        return value

    return AfterValidator(check)


def _known_province(value: str) -> str:
    if value not in province_codes().values():
        raise ValueError("is not a province in the province table")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Person(_Strict):
    nik: Annotated[str, Field(max_length=32)]
    name: Annotated[str, card_text(120, digits=False)]
    birth_place: Annotated[str, card_text(60)]
    birth_date: BirthDate
    sex: Literal["LAKI-LAKI", "PEREMPUAN"]
    blood_type: Literal["A", "B", "AB", "O", "-"] = "-"
    address: Annotated[str, card_text(200)]
    rt_rw: str = Field(max_length=7, pattern=rf"^{ASCII_DIGIT}{{3}}/{ASCII_DIGIT}{{3}}$")
    kel_desa: Annotated[str, card_text(60)]
    kecamatan: Annotated[str, card_text(60)]
    religion: Annotated[str, Field(max_length=64), _one_of(RELIGIONS)]
    marital_status: Annotated[str, Field(max_length=64), _one_of(MARITAL_STATUSES)]
    occupation: Annotated[str, card_text(60)]
    nationality: Annotated[str, card_text(40, digits=False)] = "WNI"
    valid_until: str = Field(FOR_LIFE, max_length=12)

    @field_validator("nik")
    @classmethod
    def _nik_well_formed(cls, value: str) -> str:
        try:
            parse_nik(value)
        except NikError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @field_validator("valid_until")
    @classmethod
    def _validity(cls, value: str) -> str:
        if value != FOR_LIFE and not _card_date(value):
            raise ValueError(f"must be {FOR_LIFE} or a date written DD-MM-YYYY")
        return value

    @model_validator(mode="after")
    def _citizen_for_life(self) -> Person:
        if (self.nationality == "WNI") != (self.valid_until == FOR_LIFE):
            raise FieldFault(
                "valid_until",
                f"must be {FOR_LIFE} for a citizen (WNI) and a date for a foreign resident",
            )
        return self


def _card_date(value: str) -> dt.date | None:
    match = _CARD_DATE.fullmatch(value)
    if match is None:
        return None
    try:
        return dt.date(int(match[3]), int(match[2]), int(match[1]))
    except ValueError:
        return None


class Region(_Strict):
    province: Annotated[str, Field(max_length=64), AfterValidator(_known_province)]
    regency: Annotated[str, card_text(60)]


class PrintReadyRecord(_Strict):
    record_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    kind: Kind
    urgent: Urgent | None = None
    enrolled_at: EnrolledAt
    person: Person
    region: Region
    issue_place: Annotated[str, card_text(40)]
    issue_date: IssueDate
    photo_jpeg: str = Field(description="base64 JPEG", max_length=images.PHOTO.max_b64)
    signature_png: str = Field(
        description="base64 PNG of the holder's signature", max_length=images.SIGNATURE.max_b64
    )
    chip_script: list[ChipStep] = Field(min_length=1, max_length=1024)

    @field_validator("photo_jpeg")
    @classmethod
    def _photo(cls, value: str) -> str:
        return _image(value, images.PHOTO)

    @field_validator("signature_png")
    @classmethod
    def _signature(cls, value: str) -> str:
        return _image(value, images.SIGNATURE)

    @model_validator(mode="after")
    def _dates_agree(self) -> PrintReadyRecord:
        birth = self.person.birth_date
        if self.issue_date < birth:
            raise FieldFault("issue_date", "is before the holder's birth date")
        if self.enrolled_at.astimezone(dt.UTC).date() + CLOCK_SKEW < birth:
            raise FieldFault("enrolled_at", "is before the holder's birth date")
        until = _card_date(self.person.valid_until)
        if until is not None and not self.issue_date < until <= self.issue_date + MAX_VALIDITY:
            raise FieldFault(
                "person.valid_until", "must be after the issue date and at most 10 years after it"
            )
        return self


def _image(value: str, rules: images.ImageRules) -> str:
    try:
        images.decode_image(value, rules).close()
    except images.ImageFault as exc:
        raise ValueError(f"{rules.format} image {exc}") from exc
    return value


class SignedRecord(_Strict):
    record: dict[str, Any]
    key_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    signature: str = Field(max_length=128)  # base64 Ed25519 signature over canonical_bytes

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


def signature_fault(
    obj: dict[str, Any], key_id: str, signature: str, keys: dict[str, Ed25519PublicKey]
) -> str | None:
    """Why ``signature`` over ``obj`` is not acceptable ("untrusted" key id or "invalid"
    signature), or None when it verifies under the trusted key of that id."""
    key = keys.get(key_id)
    if key is None:
        return "untrusted"
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical_bytes(obj))
    except (InvalidSignature, binascii.Error, ValueError, RecursionError, TypeError):
        # UnicodeEncodeError (a lone surrogate) is a ValueError: nothing a centre signs.
        return "invalid"
    return None


def signature_refusal(
    obj: dict[str, Any], key_id: str, signature: str, keys: dict[str, Ed25519PublicKey], what: str
) -> str | None:
    """:func:`signature_fault` as the sentence a refusal of the signed ``what`` (file,
    grant…) gives, or None when the signature verifies."""
    fault = signature_fault(obj, key_id, signature, keys)
    if fault == "untrusted":
        return f"{what} signed with key id {key_id!r}, which is not trusted"
    if fault == "invalid":
        return f"the {what}'s signature does not verify: altered or forged"
    return None


def first_error(exc: ValidationError, whole: str) -> tuple[str, str]:
    """The first error's field path (``whole`` when it is the object itself) and its
    rule, never the input it was given."""
    first = exc.errors()[0]
    return ".".join(str(p) for p in first["loc"]) or whole, first["msg"]


def sign_record(record: dict[str, Any], key: Ed25519PrivateKey, key_id: str) -> SignedRecord:
    return SignedRecord(record=record, key_id=key_id, signature=signature_of(record, key))


def verify_record(signed: SignedRecord, keys: dict[str, Ed25519PublicKey]) -> PrintReadyRecord:
    """Check the signature, then the content; :class:`RecordError` says what is wrong."""
    try:
        size = len(canonical_bytes(signed.record))
    except (ValueError, RecursionError, TypeError) as exc:
        raise RecordError("invalid field record: not a JSON object a centre signs") from exc
    if size > MAX_RECORD_BYTES:
        raise RecordError(f"invalid field record: {size} bytes, at most {MAX_RECORD_BYTES}")
    fault = signature_fault(signed.record, signed.key_id, signed.signature, keys)
    if fault == "untrusted":
        raise RecordError(f"signature key id {signed.key_id!r} is not trusted by this station")
    if fault == "invalid":
        raise RecordError("signature does not verify")
    return parse_record(signed.record)


def parse_record(data: dict[str, Any]) -> PrintReadyRecord:
    """The validated record, or :class:`RecordError` "invalid field <path>: <rule>"."""
    try:
        return PrintReadyRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        cause = (first.get("ctx") or {}).get("error")
        if isinstance(cause, FieldFault):
            prefix = f"{where}." if where != "record" else ""
            raise RecordError(f"invalid field {prefix}{cause.field}: {cause}") from exc
        # The message of our own validators is safe; pydantic's input echo is not included.
        msg = first["msg"].removeprefix("Value error, ")
        raise RecordError(f"invalid field {where}: {msg}") from exc


def public_key_b64(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def load_public_key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))
