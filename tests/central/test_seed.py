"""Synthetic records: valid, signed, NIK-consistent, deterministic, chip script in layout."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from central.cli import add_central_commands
from central.seed import load_or_create_key, new_records, seed
from central.server import CentralServer
from drivers.ktpel_layout import EF_SIZES
from drivers.script import ChipStep
from station.nik import nik_warnings, parse_nik, province_codes
from station.records import PrintReadyRecord, SignedRecord, load_public_key, verify_record

NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return list(new_records(400, seed=11, now=NOW))


def chip_files(steps: list[ChipStep]) -> dict[int, bytes]:
    """Replay SELECT EF / UPDATE BINARY steps into file contents."""
    files: dict[int, bytearray] = {}
    current = None
    for step in steps:
        apdu = bytes.fromhex(step.apdu)
        if apdu[:4] == bytes.fromhex("00A4020C"):
            current = int.from_bytes(apdu[5:7], "big")
            files[current] = bytearray()
        elif apdu[:2] == bytes.fromhex("00D6"):
            assert current is not None
            offset, lc, data = (apdu[2] << 8) | apdu[3], apdu[4], apdu[5:]
            assert lc == len(data) <= 255
            assert offset == len(files[current])
            files[current] += data
    return {fid: bytes(v) for fid, v in files.items()}


def test_records_validate(records: list[dict[str, Any]]) -> None:
    """Every generated record is a valid PrintReadyRecord with a tz-aware enrolment time."""
    ids = set()
    for raw in records:
        rec = PrintReadyRecord.model_validate(raw)
        assert rec.enrolled_at.tzinfo is not None
        assert NOW - dt.timedelta(days=245) < rec.enrolled_at < NOW
        ids.add(rec.record_id)
    assert len(ids) == len(records)
    assert "PRR-000001" in ids


def test_nik_consistent_with_person_and_region(records: list[dict[str, Any]]) -> None:
    """NIKs are well formed, match birth date and sex (day + 40) and the region's province."""
    for raw in records:
        rec = PrintReadyRecord.model_validate(raw)
        person = rec.person
        female = person.sex == "PEREMPUAN"
        parts = parse_nik(person.nik)
        assert parts.female == female
        assert parts.birth_date == person.birth_date
        assert nik_warnings(person.nik, person.birth_date, female) == []
        assert province_codes()[parts.province] == rec.region.province


def test_mix_of_kinds_urgency_and_long_names(records: list[dict[str, Any]]) -> None:
    """About 80 % first cards, a few urgent cases, some very long names, all face values."""
    kinds = Counter(r["kind"] for r in records)
    assert 0.7 < kinds["first"] / len(records) < 0.9
    assert 1 <= sum(1 for r in records if r["urgent"]) <= 30
    assert any(len(r["person"]["name"]) > 50 for r in records)
    religions = {r["person"]["religion"] for r in records}
    assert religions <= {"ISLAM", "KRISTEN", "KATOLIK", "HINDU", "BUDDHA", "KONGHUCU"}
    assert {r["person"]["marital_status"] for r in records} == {
        "BELUM KAWIN",
        "KAWIN",
        "CERAI HIDUP",
        "CERAI MATI",
    }
    assert all(r["person"]["address"].startswith("JL. ") for r in records)


def test_photo_and_signature_images(records: list[dict[str, Any]]) -> None:
    """The photo is a small JPEG on a blue background; the signature a small PNG."""
    for raw in records[:20]:
        jpeg = base64.b64decode(raw["photo_jpeg"])
        assert len(jpeg) <= 10_000
        with Image.open(io.BytesIO(jpeg)) as img:
            assert img.format == "JPEG"
            assert img.size == (160, 200)
            r, _g, b = img.convert("RGB").getpixel((3, 3))  # type: ignore[misc]
            assert b > 140
            assert b > r + 60
        png = base64.b64decode(raw["signature_png"])
        with Image.open(io.BytesIO(png)) as img:
            assert img.format == "PNG"


def test_chip_script_writes_layout(records: list[dict[str, Any]]) -> None:
    """The script selects DF 7F10 then writes each EF within its size, about 8 KB at most."""
    for raw in records[:50]:
        rec = PrintReadyRecord.model_validate(raw)
        assert rec.chip_script[0].apdu == "00A4000C027F10"
        files = chip_files(rec.chip_script)
        assert set(files) == set(EF_SIZES)
        for fid, data in files.items():
            assert 0 < len(data) <= EF_SIZES[fid]
        assert sum(len(d) for d in files.values()) <= 8192
        demographic = json.loads(files[0x0101])
        assert demographic["nik"] == rec.person.nik
        assert demographic["province"] == rec.region.province
        assert files[0x0102] == base64.b64decode(raw["photo_jpeg"])[: EF_SIZES[0x0102]]


def test_deterministic_per_seed_and_index() -> None:
    """Same seed gives the same records, in one round or two; another seed differs."""
    one = list(new_records(6, seed=5, now=NOW))
    two = list(new_records(3, seed=5, now=NOW)) + list(
        new_records(3, seed=5, start_index=4, now=NOW)
    )
    assert one == two
    other = list(new_records(6, seed=6, now=NOW))
    assert [r["person"]["nik"] for r in other] != [r["person"]["nik"] for r in one]


def test_key_created_0600_and_reused(tmp_path: Path) -> None:
    """The signing key is created once with mode 0600; central.pub holds its public key."""
    key_id, key = load_or_create_key(tmp_path / "keys")
    key_path = tmp_path / "keys" / "central.key"
    assert key_id == "central-1"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    _, again = load_or_create_key(tmp_path / "keys")
    assert again.private_bytes_raw() == key.private_bytes_raw()
    pub = load_public_key((tmp_path / "keys" / "central.pub").read_text().strip())
    assert pub.public_bytes_raw() == key.public_key().public_bytes_raw()


def test_seeded_records_verify_and_number_on(tmp_path: Path) -> None:
    """Seeded records continue numbering across rounds and verify with central.pub."""
    db, keys = tmp_path / "central.db", tmp_path / "keys"
    assert seed(db, 3, seed=1, key_dir=keys) == ["PRR-000001", "PRR-000002", "PRR-000003"]
    assert seed(db, 2, seed=1, key_dir=keys) == ["PRR-000004", "PRR-000005"]
    trusted = {"central-1": load_public_key((keys / "central.pub").read_text().strip())}
    with CentralServer(db) as server, httpx.Client(base_url=server.url) as http:
        body = http.post("/v1/leases", json={"station_id": "s1", "max": 10}).json()
        assert server.summary().records == 5
    assert len(body["records"]) == 5
    for leased in body["records"]:
        record = verify_record(SignedRecord.model_validate(leased["signed"]), trusted)
        assert record.record_id.startswith("PRR-")


def test_cli_seed_prints_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`central seed N` adds N records and prints the id range."""
    parser = argparse.ArgumentParser()
    add_central_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["central", "seed", "4", "--db", str(tmp_path / "c.db"), "--key-dir", str(tmp_path)]
    )
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == "seeded 4 records (PRR-000001 to PRR-000004)"
