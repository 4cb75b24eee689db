"""The station's two offline-batch keys (``station.key`` signs its results files,
``batch.key`` opens the batches sealed to it), created 0600 under the state dir on first use."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from station.config import StationConfig
from station.crypto import KeyFileError
from station.records import public_key_b64

STATION_KEY_FILE = "station.key"
BATCH_KEY_FILE = "batch.key"

K = TypeVar("K", Ed25519PrivateKey, X25519PrivateKey)


def station_key_path(cfg: StationConfig) -> Path:
    return cfg.state_dir / STATION_KEY_FILE


def batch_key_path(cfg: StationConfig) -> Path:
    return cfg.state_dir / BATCH_KEY_FILE


def _load_or_create(path: Path, kind: Any, generate: Callable[[], K], what: str) -> K:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it meanwhile: use theirs
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{what} file {path} is readable by others "
            f"(mode {stat.S_IMODE(mode):o}): run chmod 600 {path}"
        )
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise KeyFileError(f"{what} file {path} does not hold a PEM private key") from exc
    if not isinstance(key, kind):
        raise KeyFileError(f"{what} file {path} does not hold an {kind.__name__[:-10]} key")
    loaded: K = key
    return loaded


def load_or_create_station_key(cfg: StationConfig) -> Ed25519PrivateKey:
    """The station's Ed25519 results key (created 0600 on first use)."""
    return _load_or_create(
        station_key_path(cfg), Ed25519PrivateKey, Ed25519PrivateKey.generate, "station key"
    )


def station_public_key(cfg: StationConfig) -> str:
    """The base64 raw public key the centre registers for this station's results files."""
    return public_key_b64(load_or_create_station_key(cfg).public_key())


def load_or_create_batch_key(cfg: StationConfig) -> X25519PrivateKey:
    """The station's X25519 key that opens batch files sealed to it (created 0600)."""
    return _load_or_create(
        batch_key_path(cfg), X25519PrivateKey, X25519PrivateKey.generate, "batch key"
    )


def batch_public_key(cfg: StationConfig) -> str:
    """The base64 raw X25519 public key the centre seals this station's batches to."""
    pub = load_or_create_batch_key(cfg).public_key()
    return base64.b64encode(pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
