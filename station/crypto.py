"""Personal data at rest: AES-GCM under a key file only root (the service user) can read."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE = 12


class KeyFileError(Exception):
    """The data key file is unsafe or unusable; the message is the line to show."""


class DataKey:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self._hash_key = hmac.new(key, b"ektp-station nik-hash", hashlib.sha256).digest()

    def nik_hash(self, nik: str) -> str:
        """A keyed hash of a NIK: the same NIK always maps to the same value on this
        station, and without the key it cannot be reversed by trying all NIKs."""
        return hmac.new(self._hash_key, nik.encode(), hashlib.sha256).hexdigest()

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        return self._aead.decrypt(blob[:NONCE], blob[NONCE:], aad)


def load_data_key(path: Path, *, create: bool = True) -> DataKey:
    """Read the 32-byte key; create it (0600) if missing; refuse a file others can read."""
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / "data.key").exists():
        path = Path(credentials) / "data.key"  # systemd LoadCredential=data.key:…
    if not path.exists():
        if not create:
            raise KeyFileError(f"data key file {path} is missing")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(AESGCM.generate_key(bit_length=256))
            fh.flush()
            os.fsync(fh.fileno())
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"data key file {path} is readable by others (mode {stat.S_IMODE(mode):o}): "
            f"run chmod 600 {path}"
        )
    key = path.read_bytes()
    if len(key) != 32:
        raise KeyFileError(f"data key file {path} must hold 32 bytes, holds {len(key)}")
    return DataKey(key)
