"""NIK rules: 16 digits PP KK CC DDMMYY SSSS, women's day + 40, malformed means rejected."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from central.seed import load_or_create_key, make_record
from station.cli.main import main
from station.config import load_config
from station.crypto import load_data_key
from station.daemon import trusted_keys
from station.grants import sign_grant
from station.nik import NikError, mask_nik, nik_warnings, parse_nik
from station.records import sign_record
from station.store import buffer
from station.store.db import connect, migrate, transaction
from station.store.ingest import buffer_signed
from tests.support.harness import Central, station_config

TODAY = dt.date(2025, 6, 1)
MAN = "3273011505900001"  # KOTA BANDUNG, born 15 May 1990
WOMAN = "3273015505900002"  # same day, day + 40


def test_man_parts() -> None:
    """A well-formed NIK splits into region codes, birth date, sex and serial."""
    parts = parse_nik(MAN, today=TODAY)
    assert (parts.province, parts.regency, parts.district) == ("32", "73", "01")
    assert parts.birth_date == dt.date(1990, 5, 15)
    assert parts.female is False
    assert parts.serial == 1


def test_woman_day_plus_40() -> None:
    """A birth day of 41-71 means a woman born on day minus 40."""
    parts = parse_nik(WOMAN, today=TODAY)
    assert parts.female is True
    assert parts.birth_date == dt.date(1990, 5, 15)


@pytest.mark.parametrize("nik", ["327301150590001", "32730115059000012", ""])
def test_length(nik: str) -> None:
    """Anything but 16 characters is refused with a message about the length."""
    with pytest.raises(NikError, match="16 digits"):
        parse_nik(nik, today=TODAY)


@pytest.mark.parametrize("nik", ["32730115059000a1", "3273-11505900001", "３２73011505900001"])
def test_digits_only(nik: str) -> None:
    """Letters, punctuation and non-ASCII digits are refused."""
    with pytest.raises(NikError, match="digits only"):
        parse_nik(nik, today=TODAY)


@pytest.mark.parametrize("prov", ["00", "10", "20", "99", "37"])
def test_unknown_province(prov: str) -> None:
    """A province code not in the province table is refused."""
    with pytest.raises(NikError, match="province"):
        parse_nik(prov + MAN[2:], today=TODAY)


def test_papua_2022_provinces_known() -> None:
    """The provinces created in 2022 (from data, not code) are accepted."""
    for prov in ("92", "93", "95", "96"):
        assert parse_nik(prov + MAN[2:], today=TODAY).province == prov


def test_zero_regency_or_district() -> None:
    """Regency 00 and district 00 are not valid codes."""
    with pytest.raises(NikError, match="regency"):
        parse_nik("3200011505900001", today=TODAY)
    with pytest.raises(NikError, match="district"):
        parse_nik("3273001505900001", today=TODAY)


@pytest.mark.parametrize(
    "ddmmyy",
    [
        "320590",  # day 32
        "720590",  # woman, day 32
        "000590",  # day 0
        "400590",  # woman, day 0
        "151390",  # month 13
        "150090",  # month 0
        "310490",  # 31 April
        "290201",  # 29 February 2001
        "690201",  # woman, 29 February 2001
    ],
)
def test_impossible_date(ddmmyy: str) -> None:
    """A birth date that does not exist (day 32, day 72, 31 April, ...) is refused."""
    with pytest.raises(NikError, match="not a real date"):
        parse_nik(f"327301{ddmmyy}0001", today=TODAY)


def test_leap_day_2000() -> None:
    """29 February 2000 exists."""
    assert parse_nik("3273012902000001", today=TODAY).birth_date == dt.date(2000, 2, 29)


def test_century_is_latest_not_in_future() -> None:
    """YY maps to the latest century that does not put the birth date in the future."""
    assert parse_nik("3273011505240001", today=TODAY).birth_date.year == 2024
    assert parse_nik("3273011505260001", today=TODAY).birth_date.year == 1926


def test_serial_zero() -> None:
    """Serial numbers start from 0001."""
    with pytest.raises(NikError, match="serial"):
        parse_nik("3273011505900000", today=TODAY)


@pytest.mark.parametrize(
    "nik", ["3273013205901234", "9973011505901234", "3273011505900000", "327301150590123"]
)
def test_error_message_never_echoes_nik(nik: str) -> None:
    """Error messages name the bad part but never contain the NIK."""
    with pytest.raises(NikError) as info:
        parse_nik(nik, today=TODAY)
    assert nik not in str(info.value)
    assert nik[6:] not in str(info.value)


def test_warnings_on_mismatch_only() -> None:
    """A NIK disagreeing with the record's birth date or sex gives warnings, not errors."""
    assert nik_warnings(MAN, dt.date(1990, 5, 15), female=False) == []
    assert nik_warnings(WOMAN, dt.date(1990, 5, 15), female=True) == []
    assert len(nik_warnings(MAN, dt.date(1990, 5, 16), female=True)) == 2


def test_mask_nik() -> None:
    """The loggable form keeps only the region digits."""
    assert mask_nik(MAN) == "327301**********"
    assert mask_nik("123") == "*" * 16


def _buffer(tmp_path: Path, central: Central, record: dict[str, Any]) -> Path:
    """Buffer ``record`` (signed by the centre's key) as a lease answer would; the config."""
    config = station_config(tmp_path, central)
    cfg = load_config(config)
    key_id, key = load_or_create_key(central.key_dir)
    conn = connect(cfg.db_path)
    try:
        migrate(conn)
        lease = buffer.Lease(
            record["record_id"], "L-1", time.time() + 600, time.monotonic() + 600, "boot"
        )
        grant = sign_grant(
            key,
            key_id,
            record_id=lease.record_id,
            station_id=cfg.station_id,
            lease_id=lease.lease_id,
            expires_at=lease.deadline,
        )
        assert transaction(
            conn,
            lambda c: buffer_signed(
                c,
                sign_record(record, key, key_id),
                lease,
                trusted_keys(cfg),
                load_data_key(cfg.key_path),
                grant=grant,
                station_id=cfg.station_id,
            ),
        )
    finally:
        conn.close()
    return config


def test_a_nik_disagreeing_with_the_record_is_buffered_with_a_warning_shown_by_inspect(
    tmp_path: Path, central: Central, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record whose NIK says another birth day and sex is buffered to print, an audit
    row 'nik_warning' names both mismatches without the NIK, and `station inspect` shows
    the record id with the warning."""
    record = make_record(5)
    nik = record["person"]["nik"]
    birth = dt.date.fromisoformat(record["person"]["birth_date"])
    other_day = birth - dt.timedelta(days=1) if birth.day > 1 else birth + dt.timedelta(days=1)
    record["person"]["birth_date"] = other_day.isoformat()
    record["person"]["sex"] = (
        "LAKI-LAKI" if record["person"]["sex"] == "PEREMPUAN" else ("PEREMPUAN")
    )
    config = _buffer(tmp_path, central, record)
    conn = sqlite3.connect(load_config(config).db_path)
    try:
        rows = conn.execute(
            "SELECT record_id, detail FROM audit WHERE event='nik_warning'"
        ).fetchall()
        status = conn.execute("SELECT status FROM records").fetchall()
    finally:
        conn.close()
    assert status == [("queued",)]
    assert rows == [
        (
            "PRR-000005",
            "NIK birth date differs from the record's birth date; "
            "NIK sex (day + 40) differs from the record's sex",
        )
    ]
    assert nik not in rows[0][1]
    capsys.readouterr()
    assert main(["--config", str(config), "inspect"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("nothing needs inspection\n\nNIK warnings")
    assert "record PRR-000005" in out
    assert "NIK sex (day + 40) differs" in out
    assert nik not in out


def test_a_nik_agreeing_with_the_record_gives_no_warning(
    tmp_path: Path, central: Central, capsys: pytest.CaptureFixture[str]
) -> None:
    """A seeded record (NIK consistent with birth date and sex) leaves no warning."""
    config = _buffer(tmp_path, central, make_record(6))
    capsys.readouterr()
    assert main(["--config", str(config), "inspect"]) == 0
    assert capsys.readouterr().out.strip() == "nothing needs inspection"
