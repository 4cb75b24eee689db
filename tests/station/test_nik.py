"""NIK rules: 16 digits PP KK CC DDMMYY SSSS, women's day + 40, malformed means rejected."""

from __future__ import annotations

import datetime as dt

import pytest

from station.nik import NikError, mask_nik, nik_warnings, parse_nik

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
