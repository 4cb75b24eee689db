"""The two files an offline office carries: the centre's batch and the station's results.

Both are one JSON object ``{"body": {...}, "key_id": "...", "signature": "..."}``: an
Ed25519 signature over :func:`station.records.canonical_bytes` of the body, like a record.

* ``ektp-batch/1`` (centre → one station): records with their leases, valid for days,
  addressed to one ``station_id``, signed with a centre key the station trusts. Each record
  keeps its own centre signature, checked again on import.
* ``ektp-results/1`` (station → centre): card results exactly as the link would send them,
  signed with the station's own key (``station:<station_id>``), ingested idempotently by
  ``result_id``.

A batch file holds personal data in clear (signed, not encrypted): it is written mode 0600
and must travel like the cards themselves.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from station.central.protocol import CardResult
from station.grants import SignedGrant
from station.records import SignedRecord, signature_fault, signature_of

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
    fault = signature_fault(signed.body, signed.key_id, signed.signature, keys)
    if fault == "untrusted":
        raise BatchFileError(f"file signed with key id {signed.key_id!r}, which is not trusted")
    if fault == "invalid":
        raise BatchFileError("the file's signature does not verify: altered or forged")
    try:
        return model.model_validate(signed.body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "body"
        raise BatchFileError(f"signed file is not a valid {model.__name__}: field {where}: "
                             f"{first['msg']}") from exc


def read_signed(path: Path) -> SignedFile:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise BatchFileError(f"{path} is {size} bytes, more than any batch file")
        raw = path.read_bytes()
    except OSError as exc:
        raise BatchFileError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return SignedFile.model_validate(json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BatchFileError(f"{path} is not a JSON file: truncated or not a batch") from exc
    except ValidationError as exc:
        raise BatchFileError(f"{path} is not a signed batch or results file") from exc


def write_signed(path: Path, signed: SignedFile) -> None:
    """Write atomically (temporary file, fsync, rename), readable by the owner only."""
    data = signed.model_dump_json().encode()
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
