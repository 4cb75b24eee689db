"""NIK rules: 16 digits, PP KK CC DDMMYY SSSS (facts in shared/DOMAIN.md)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from station.i18n import N_


class NikError(ValueError):
    """The NIK is malformed; the message says which part (never the NIK itself)."""


@dataclass(frozen=True)
class NikParts:
    province: str
    regency: str
    district: str
    birth_date: dt.date
    female: bool
    serial: int


@cache
def province_codes() -> dict[str, str]:
    text = resources.files("station").joinpath("data/provinces.json").read_text("utf-8")
    codes: dict[str, str] = json.loads(text)
    return codes


def parse_nik(nik: str, *, today: dt.date | None = None) -> NikParts:
    """Split and check a NIK; raises :class:`NikError` naming the bad part."""
    if len(nik) != 16:
        raise NikError(f"NIK must have 16 digits, has {len(nik)} characters")
    if not nik.isascii() or not nik.isdigit():
        raise NikError("NIK must contain digits only")
    province, regency, district = nik[0:2], nik[2:4], nik[4:6]
    if province not in province_codes():
        raise NikError(f"NIK province code {province} is not a known province")
    if regency == "00":
        raise NikError("NIK regency code 00 is not valid")
    if district == "00":
        raise NikError("NIK district code 00 is not valid")
    day, month, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    female = day > 40
    if female:
        day -= 40
    today = today or dt.date.today()  # noqa: DTZ011 - a calendar date is what is wanted
    century = (today.year // 100) * 100
    year = century + yy if century + yy <= today.year else century - 100 + yy
    try:
        birth = dt.date(year, month, day)
    except ValueError:
        raise NikError("NIK birth date (digits 7-12) is not a real date") from None
    serial = int(nik[12:16])
    if serial == 0:
        raise NikError("NIK serial (last 4 digits) must start from 0001")
    return NikParts(province, regency, district, birth, female, serial)


def nik_warnings(nik: str, birth_date: dt.date, female: bool) -> list[str]:
    """Mismatches between a well-formed NIK and the record: warnings, not rejections."""
    parts = parse_nik(nik)
    out = []
    if (parts.birth_date.day, parts.birth_date.month) != (birth_date.day, birth_date.month) or (
        parts.birth_date.year % 100 != birth_date.year % 100
    ):
        out.append(N_("NIK birth date differs from the record's birth date"))
    if parts.female != female:
        out.append(N_("NIK sex (day + 40) differs from the record's sex"))
    return out


def mask_nik(nik: str) -> str:
    """The form of a NIK that may appear in logs and on screens: region only."""
    return nik[:6] + "*" * 10 if len(nik) == 16 else "*" * 16
