"""Synthetic but valid print-ready records, signed with the centre's development key."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import random
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from PIL import Image, ImageDraw

from central import names
from central.engines import open_queue
from drivers.ktpel_layout import DF_KTPEL, EF_SIZES, MAX_SHORT_DATA
from station.nik import province_codes
from station.records import PrintReadyRecord, SignedRecord, public_key_b64, sign_record

KEY_ID = "central-1"
KEY_FILE = "central.key"
PUB_FILE = "central.pub"
ENROLMENT_SPREAD_DAYS = 240  # ~8 months
#: ISO/IEC 19794-2 finger positions of the two templates (data, not a fixed rule).
TEMPLATE_FINGERS = (2, 7)  # right index, left index


def load_or_create_key(key_dir: Path) -> tuple[str, Ed25519PrivateKey]:
    """The centre's signing key from ``key_dir`` (created 0600 on first use) and its id.

    Also (re)writes ``central.pub``: the base64 raw public key the station's config trusts.
    """
    key_dir = Path(key_dir)
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path = key_dir / KEY_FILE
    if key_path.exists():
        loaded = load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise TypeError(f"{key_path} does not hold an Ed25519 private key")
        key = loaded
    else:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    pub_path = key_dir / PUB_FILE
    pub = public_key_b64(key.public_key()) + "\n"
    if not pub_path.exists() or pub_path.read_text("ascii") != pub:
        pub_path.write_text(pub, "ascii")
    return KEY_ID, key


# -- images ------------------------------------------------------------------------------


def make_photo(rng: random.Random, size: tuple[int, int] = (160, 200)) -> bytes:
    """A small passport-style JPEG: blue background, head and shoulders."""
    w, h = size
    img = Image.new("RGB", size, (28 + rng.randint(0, 20), 70 + rng.randint(0, 30), 170))
    d = ImageDraw.Draw(img)
    skin = rng.choice([(224, 172, 105), (198, 134, 66), (141, 85, 36), (241, 194, 125)])
    shirt = rng.choice([(245, 245, 245), (30, 30, 30), (120, 20, 30), (40, 60, 110)])
    cx = w // 2 + rng.randint(-6, 6)
    d.ellipse((cx - 70, int(h * 0.72), cx + 70, h + 60), fill=shirt)  # shoulders
    d.rectangle((cx - 14, int(h * 0.55), cx + 14, int(h * 0.78)), fill=skin)  # neck
    hw, hh = rng.randint(36, 44), rng.randint(50, 58)
    top = int(h * 0.18)
    if rng.random() < 0.4:  # headscarf
        scarf = rng.choice([(20, 20, 20), (200, 190, 170), (90, 30, 80), (240, 240, 240)])
        d.ellipse((cx - hw - 10, top - 12, cx + hw + 10, top + 2 * hh + 20), fill=scarf)
        d.ellipse((cx - hw + 6, top + 8, cx + hw - 6, top + 2 * hh - 4), fill=skin)
    else:
        d.ellipse((cx - hw - 4, top - 8, cx + hw + 4, top + hh), fill=(25, 20, 15))  # hair
        d.ellipse((cx - hw, top + 6, cx + hw, top + 2 * hh), fill=skin)
    eye_y = top + hh
    for ex in (cx - hw // 2, cx + hw // 2 - 8):
        d.ellipse((ex, eye_y, ex + 8, eye_y + 5), fill=(30, 25, 20))
    d.line((cx - 12, eye_y + 30, cx + 12, eye_y + 30), fill=(120, 60, 50), width=2)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70, optimize=True)
    return buf.getvalue()


def make_signature(rng: random.Random, size: tuple[int, int] = (160, 60)) -> bytes:
    """A small 1-bit PNG of a handwritten-looking squiggle."""
    w, h = size
    img = Image.new("1", size, 1)
    d = ImageDraw.Draw(img)
    x, y = 8.0, h / 2
    points = [(x, y)]
    while x < w - 10:
        x += rng.uniform(4, 12)
        y = min(h - 6.0, max(6.0, y + rng.uniform(-14, 14)))
        points.append((x, y))
    d.line(points, fill=0, width=2)
    d.line((points[1][0], h - 10, points[-1][0] - 10, h - 12), fill=0, width=1)  # underline
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


# -- chip script -------------------------------------------------------------------------


def _apdu(*parts: int | bytes) -> str:
    raw = b"".join(bytes([x]) if isinstance(x, int) else x for x in parts)
    return raw.hex().upper()


def chip_script(files: dict[int, bytes]) -> list[dict[str, str]]:
    """SELECT the DF, then per EF: SELECT and UPDATE BINARY in chunks of ≤ 255 bytes."""
    steps = [{"apdu": _apdu(0x00, 0xA4, 0x00, 0x0C, 0x02, DF_KTPEL.to_bytes(2, "big"))}]
    for fid, size in EF_SIZES.items():
        data = files.get(fid, b"")
        if len(data) > size:
            raise ValueError(f"EF {fid:04X} data has {len(data)} bytes, file holds {size}")
        steps.append({"apdu": _apdu(0x00, 0xA4, 0x02, 0x0C, 0x02, fid.to_bytes(2, "big"))})
        for off in range(0, len(data), MAX_SHORT_DATA):
            chunk = data[off : off + MAX_SHORT_DATA]
            steps.append({"apdu": _apdu(0x00, 0xD6, off >> 8, off & 0xFF, len(chunk), chunk)})
    return steps


def fingerprint_templates(rng: random.Random) -> bytes:
    """Two synthetic templates: finger position, 2-byte length, random template bytes."""
    out = b""
    for finger in TEMPLATE_FINGERS:
        body = rng.randbytes(rng.randint(380, 520))
        out += bytes([finger]) + len(body).to_bytes(2, "big") + body
    return out


# -- records -----------------------------------------------------------------------------


def _weighted(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in table], weights=[wt for _, wt in table])[0]


def _name(rng: random.Random, female: bool) -> str:
    first = names.FEMALE_FIRST if female else names.MALE_FIRST
    roll = rng.random()
    if roll < 0.06:  # very long name: the card face must cope
        parts = [rng.choice(first), *rng.sample(names.LONG_PARTS, rng.randint(3, 5))]
        parts += rng.sample(names.FAMILY, 2)
    elif roll < 0.14:
        parts = [rng.choice(first)]  # single name
    else:
        parts = [rng.choice(first)]
        if rng.random() < 0.35:
            parts.append(rng.choice(first))
        parts.append(rng.choice(names.FAMILY))
    name = " ".join(parts)
    while len(name) > 120:
        name = name.rsplit(" ", 1)[0]
    return name


def _default_now() -> dt.datetime:
    today = dt.datetime.now(dt.UTC).date()
    return dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC)


def make_record(index: int, seed: int = 0, now: dt.datetime | None = None) -> dict[str, Any]:
    """Record number ``index`` (PRR-NNNNNN) as a JSON-ready dict, validated."""
    now = now or _default_now()
    rng = random.Random(f"ektp-seed:{seed}:{index}")
    enrolled = now - dt.timedelta(seconds=rng.randint(3600, ENROLMENT_SPREAD_DAYS * 86400))
    female = rng.random() < 0.5
    age_days = rng.randint(17 * 366, 80 * 365)
    birth = enrolled.date() - dt.timedelta(days=age_days)
    prov = rng.choice(sorted(names.REGENCIES))
    reg_code, regency = rng.choice(names.REGENCIES[prov])
    day = birth.day + (40 if female else 0)
    nik = (
        f"{prov}{reg_code}{rng.randint(1, 30):02d}{day:02d}{birth.month:02d}"
        f"{birth.year % 100:02d}{rng.randint(1, 9999):04d}"
    )
    urgent = rng.choice(names.URGENT_REASONS) if rng.random() < 0.03 else None
    person = {
        "nik": nik,
        "name": _name(rng, female),
        "birth_place": rng.choice(names.BIRTH_PLACES),
        "birth_date": birth.isoformat(),
        "sex": "PEREMPUAN" if female else "LAKI-LAKI",
        "blood_type": rng.choice(names.BLOOD_TYPES),
        "address": f"JL. {rng.choice(names.STREETS)} NO. {rng.randint(1, 250)}",
        "rt_rw": f"{rng.randint(1, 15):03d}/{rng.randint(1, 12):03d}",
        "kel_desa": rng.choice(names.KEL_DESA),
        "kecamatan": rng.choice(names.KECAMATAN),
        "religion": _weighted(rng, names.RELIGIONS),
        "marital_status": _weighted(rng, names.MARITAL),
        "occupation": rng.choice(names.OCCUPATIONS),
        "nationality": "WNI",
        "valid_until": "SEUMUR HIDUP",
    }
    region = {"province": province_codes()[prov], "regency": regency}
    photo, signature = make_photo(rng), make_signature(rng)
    demographic = json.dumps(
        {**person, **region}, ensure_ascii=False, separators=(",", ":")
    ).encode()
    files = {
        0x0101: demographic,
        0x0102: photo[: EF_SIZES[0x0102]],
        0x0103: signature[: EF_SIZES[0x0103]],
        0x0104: fingerprint_templates(rng),
    }
    record: dict[str, Any] = {
        "record_id": f"PRR-{index:06d}",
        "kind": "reprint" if rng.random() < 0.2 else "first",
        "urgent": urgent,
        "enrolled_at": enrolled.isoformat(),
        "person": person,
        "region": region,
        "issue_place": regency,
        "issue_date": now.date().isoformat(),
        "photo_jpeg": base64.b64encode(photo).decode(),
        "signature_png": base64.b64encode(signature).decode(),
        "chip_script": chip_script(files),
    }
    PrintReadyRecord.model_validate(record)  # a generator bug must not reach a station
    return record


def new_records(
    n: int, seed: int = 0, start_index: int = 1, *, now: dt.datetime | None = None
) -> Iterator[dict[str, Any]]:
    """``n`` record dicts numbered from ``start_index`` (no DB, no key needed)."""
    now = now or _default_now()
    for index in range(start_index, start_index + n):
        yield make_record(index, seed, now)


def signed_records(
    n: int,
    key: Ed25519PrivateKey,
    seed: int = 0,
    start_index: int = 1,
    *,
    key_id: str = KEY_ID,
    now: dt.datetime | None = None,
) -> Iterator[SignedRecord]:
    """Like :func:`new_records`, each signed with ``key``."""
    for record in new_records(n, seed, start_index, now=now):
        yield sign_record(record, key, key_id)


def seed(
    db_path: Path | str,
    n: int,
    *,
    seed: int = 0,
    key_dir: Path,
    now: dt.datetime | None = None,
) -> list[str]:
    """Add ``n`` signed records to the server DB, numbering on; returns their ids."""
    key_id, key = load_or_create_key(key_dir)
    db = open_queue(db_path)  # a SQLite file or a postgresql:// DSN
    try:
        start = db.next_index()
        it = signed_records(n, key, seed, start, key_id=key_id, now=now)
        added: list[str] = []
        while batch := list(islice(it, 500)):
            added += db.add_records(batch)
    finally:
        db.close()
    return added
