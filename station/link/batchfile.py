"""The two files an offline office carries: the centre's batch and the station's results."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from station.grants import SignedGrant
from station.i18n import Msg, os_error
from station.link.protocol import CardResult
from station.records import SignedRecord, first_error, signature_of, signature_refusal

BATCH_FORMAT: Literal["ektp-batch/1"] = "ektp-batch/1"
RESULTS_FORMAT: Literal["ektp-results/1"] = "ektp-results/1"
#: Largest file either side reads (a batch of 10,000 records is about 150 MB).
MAX_FILE_BYTES = 512 * 1024 * 1024

B = TypeVar("B", bound=BaseModel)


class BatchFileError(ValueError):
    """A file that must not be used; the message says why and names no personal data."""


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BatchLease(_File):
    lease_id: str = Field(min_length=1, max_length=64)
    expires_at: dt.datetime
    signed: SignedRecord
    grant: SignedGrant | None = None  # the record granted to the batch's station (grants.py)


class BatchBody(_File):
    format: Literal["ektp-batch/1"] = BATCH_FORMAT
    batch_id: str = Field(min_length=1, max_length=64)
    station_id: str = Field(min_length=1, max_length=64)
    issued_at: dt.datetime
    expires_at: dt.datetime
    records: list[BatchLease]


class ResultsBody(_File):
    format: Literal["ektp-results/1"] = RESULTS_FORMAT
    station_id: str = Field(min_length=1, max_length=64)
    exported_at: dt.datetime
    results: list[CardResult]


class SignedFile(_File):
    body: dict[str, Any]
    key_id: str
    signature: str

    def claimed(self, field: str) -> str:
        """A body field read before verification (to pick the key, or to report)."""
        value = self.body.get(field)
        return value if isinstance(value, str) else "?"


def station_key_id(station_id: str) -> str:
    return f"station:{station_id}"


def sign_body(body: BaseModel, key: Ed25519PrivateKey, key_id: str) -> SignedFile:
    data: dict[str, Any] = body.model_dump(mode="json")
    return SignedFile(body=data, key_id=key_id, signature=signature_of(data, key))


def verify_body(signed: SignedFile, keys: dict[str, Ed25519PublicKey], model: type[B]) -> B:
    """Check the file's signature against ``keys`` (by key id), then parse its body."""
    refusal = signature_refusal(signed.body, signed.key_id, signed.signature, keys, "file")
    if refusal:
        raise BatchFileError(refusal)
    try:
        return model.model_validate(signed.body)
    except ValidationError as exc:
        where, rule = first_error(exc, "body")
        raise BatchFileError(
            f"signed file is not a valid {model.__name__}: field {where}: {rule}"
        ) from exc


def _read_bounded(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise BatchFileError(f"{path} is {size} bytes, more than any batch file")
        return path.read_bytes()
    except OSError as exc:
        raise BatchFileError(
            Msg("cannot read {path}: {error}", path=path, error=os_error(exc))
        ) from exc


def read_signed(path: Path) -> SignedFile:
    raw = _read_bounded(path)
    try:
        return SignedFile.model_validate(json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BatchFileError(f"{path} is not a JSON file: truncated or not a batch") from exc
    except ValidationError as exc:
        raise BatchFileError(f"{path} is not a signed batch or results file") from exc


def write_signed(path: Path, signed: SignedFile) -> None:
    """Write atomically (temporary file, fsync, rename), readable by the owner only."""
    _write_atomic(path, signed.model_dump_json().encode())


def _write_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- sealed batch files -----------------------------------------------------------------

SEALED_MAGIC = b"EKTP-SEALED/1\n"
_HEADER_MAX = 4096
_HKDF_INFO = b"ektp-sealed/1 batch"


class SealedHeader(_File):
    station_id: str = Field(min_length=1, max_length=64)
    recipient: str = Field(max_length=64)  # base64 raw X25519 public key of the station
    ephemeral: str = Field(max_length=64)  # base64 raw X25519 public key, one per file
    nonce: str = Field(max_length=32)  # base64, 12 bytes


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _aead(shared: bytes, ephemeral: bytes, recipient: bytes) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_HKDF_INFO
    ).derive(shared)
    return AESGCM(key)


def load_box_key(b64: str) -> X25519PublicKey:
    """A station's batch key as ``station batch pubkey`` prints it (base64 raw X25519)."""
    try:
        return X25519PublicKey.from_public_bytes(base64.b64decode(b64, validate=True))
    except ValueError as exc:
        raise BatchFileError(
            "not a base64 X25519 public key (from `station batch pubkey`)"
        ) from exc


def write_sealed(
    path: Path, signed: SignedFile, station_id: str, recipient: X25519PublicKey
) -> None:
    """Seal a signed batch to ``recipient`` and write it atomically, mode 0600."""
    ephemeral = X25519PrivateKey.generate()
    eph_raw, rec_raw = _raw(ephemeral.public_key()), _raw(recipient)
    nonce = os.urandom(12)
    header = SealedHeader(
        station_id=station_id,
        recipient=base64.b64encode(rec_raw).decode(),
        ephemeral=base64.b64encode(eph_raw).decode(),
        nonce=base64.b64encode(nonce).decode(),
    )
    head = SEALED_MAGIC + header.model_dump_json().encode() + b"\n"
    aead = _aead(ephemeral.exchange(recipient), eph_raw, rec_raw)
    _write_atomic(path, head + aead.encrypt(nonce, signed.model_dump_json().encode(), head))


def read_sealed(path: Path, key: X25519PrivateKey) -> SignedFile:
    """Open a sealed batch with the station's batch key; :class:`BatchFileError` names
    what is wrong (not sealed, sealed for another station, altered)."""
    raw = _read_bounded(path)
    if not raw.startswith(SEALED_MAGIC):
        if raw[:1] == b"{":
            raise BatchFileError(
                f"{path} is not sealed to this station (a batch in clear): "
                "ask the centre for a batch sealed to `station batch pubkey`"
            )
        raise BatchFileError(f"{path} is not a sealed batch file")
    end = raw.find(b"\n", len(SEALED_MAGIC), len(SEALED_MAGIC) + _HEADER_MAX)
    if end < 0:
        raise BatchFileError(f"{path} is not a sealed batch file: no header")
    head = raw[: end + 1]
    try:
        header = SealedHeader.model_validate_json(raw[len(SEALED_MAGIC) : end])
        eph_raw = base64.b64decode(header.ephemeral, validate=True)
        nonce = base64.b64decode(header.nonce, validate=True)
        ephemeral = X25519PublicKey.from_public_bytes(eph_raw)
    except (ValidationError, ValueError) as exc:
        raise BatchFileError(f"{path}: the sealed header is damaged") from exc
    own = _raw(key.public_key())
    if header.recipient != base64.b64encode(own).decode():
        raise BatchFileError(
            f"{path} is sealed for station {header.station_id}'s key, not "
            "this station's: only that station can open it"
        )
    try:
        plain = _aead(key.exchange(ephemeral), eph_raw, own).decrypt(nonce, raw[end + 1 :], head)
    except (InvalidTag, ValueError) as exc:
        raise BatchFileError(
            f"{path} cannot be opened with this station's batch key: "
            "altered, truncated or sealed for another key"
        ) from exc
    try:
        return SignedFile.model_validate_json(plain)
    except ValidationError as exc:
        raise BatchFileError(f"{path}: the sealed content is not a signed batch") from exc
