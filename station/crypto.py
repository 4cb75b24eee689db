"""Personal data at rest: AES-GCM under a key file only root (the service user) can read."""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from station.i18n import Msg, os_error

NONCE = 12


class KeyFileError(Exception):
    """The data key file is unsafe or unusable; the message is the line to show."""


class DataKey:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self._hash_key = hmac.new(key, b"ektp-station nik-hash", hashlib.sha256).digest()
        #: Names the key without revealing it (kept in the database at first use).
        self.fingerprint = hmac.new(
            key, b"ektp-station key fingerprint", hashlib.sha256
        ).hexdigest()[:32]

    def nik_hash(self, nik: str) -> str:
        """A keyed hash of a NIK: the same NIK always maps to the same value on this
        station, and without the key it cannot be reversed by trying all NIKs."""
        return hmac.new(self._hash_key, nik.encode(), hashlib.sha256).hexdigest()

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        return self._aead.decrypt(blob[:NONCE], blob[NONCE:], aad)


def key_location(path: Path) -> Path:
    """The key file in use: the systemd credential ``data.key`` if there is one."""
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / "data.key").exists():
        return Path(credentials) / "data.key"  # systemd LoadCredential=data.key:…
    return path


def load_data_key(path: Path, *, create: bool = True) -> DataKey:
    """Read the 32-byte key; create it (0600) if missing; refuse a file others can read."""
    path = key_location(path)
    if not path.exists():
        if not create:
            raise KeyFileError(Msg("data key file {path} is missing", path=path))
        _create_key(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            Msg(
                "data key file {path} is readable by others (mode {mode}): run chmod 600 {path}",
                path=path,
                mode=f"{stat.S_IMODE(mode):o}",
            )
        )
    try:
        key = path.read_bytes()
    except PermissionError:
        raise KeyFileError(
            Msg(
                "data key file {path} is not readable by this user (uid {uid}, the file's owner "
                "is uid {owner}): run as the service user (sudo -u ektp-station station …)",
                path=path,
                uid=os.geteuid(),
                owner=path.stat().st_uid,
            )
        ) from None
    except OSError as exc:
        raise KeyFileError(
            Msg("data key file {path} cannot be read ({error})", path=path, error=os_error(exc))
        ) from exc
    if len(key) != 32:
        raise KeyFileError(
            Msg("data key file {path} must hold 32 bytes, holds {size}", path=path, size=len(key))
        )
    return DataKey(key)


def _create_key(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process created it meanwhile: use theirs
    except OSError as exc:
        raise KeyFileError(
            Msg(
                "data key file {path} cannot be created ({error}): run as the "
                "service user, or set data_key_file",
                path=path,
                error=os_error(exc),
            )
        ) from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(AESGCM.generate_key(bit_length=256))
        fh.flush()
        os.fsync(fh.fileno())


_FINGERPRINT = "data_key_fingerprint"


def bind_data_key(conn: sqlite3.Connection, path: Path, key: DataKey | None = None) -> DataKey:
    """One data key per station. The first key used with the database is recorded by its
    fingerprint; any other is refused (records sealed with it could never be opened by the
    daemon), and no key is created for a database that already holds records. Loads the
    key from ``path`` unless ``key`` is given. Call inside a write transaction."""
    row = conn.execute("SELECT value FROM station_meta WHERE key=?", (_FINGERPRINT,)).fetchone()
    known = row is not None or conn.execute("SELECT 1 FROM records LIMIT 1").fetchone()
    where = key_location(path)
    if key is None:
        if known and not where.exists():
            raise KeyFileError(
                Msg(
                    "data key file {where} is missing, but the station database already holds "
                    "records sealed with this station's key: run as the service (its key: the "
                    "systemd credential data.key, or data_key_file) instead of creating a new key",
                    where=where,
                )
            )
        key = load_data_key(path)
    if row is None:
        sample = conn.execute(
            "SELECT record_id, payload FROM records WHERE payload IS NOT NULL LIMIT 1"
        ).fetchone()
        if sample is not None:
            try:
                key.open(sample[1], sample[0].encode())
            except InvalidTag:
                raise _mismatch(where, key, "another key") from None
        conn.execute(
            "INSERT INTO station_meta(key, value) VALUES (?, ?)", (_FINGERPRINT, key.fingerprint)
        )
    elif row[0] != key.fingerprint:
        raise _mismatch(where, key, f"the key of fingerprint {row[0][:12]}")
    return key


def _mismatch(where: Path, key: DataKey, theirs: str) -> KeyFileError:
    return KeyFileError(
        Msg(
            "data key {where} (fingerprint {fingerprint}) is not this station's key: its "
            "records are sealed with {theirs}; use the station's key (the systemd credential "
            "data.key, or data_key_file), never a new one",
            where=where,
            fingerprint=key.fingerprint[:12],
            theirs=theirs,
        )
    )
