"""Print-ready records as the station reads them: content checks before any blank is fed."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from central.seed import make_record
from station.faces import template as face
from station.faces.template import FIELDS, TEMPLATE, FaceError, check_fits, has_glyph, render_face
from station.records import RecordError, parse_record


def test_a_seeded_record_parses() -> None:
    """A record from the reference seeder is accepted as it is."""
    assert parse_record(make_record(3)).chip_script


def test_a_malformed_chip_step_fails_the_record_naming_the_step() -> None:
    """A record whose third chip step is malformed is rejected with that step named."""
    record = make_record(3)
    record["chip_script"][2]["apdu"] = "00A4000C0501"
    with pytest.raises(RecordError, match=r"chip_script\.2: malformed APDU"):
        parse_record(record)


def test_a_bad_status_word_pattern_fails_the_record() -> None:
    """An expect_sw that is not four hex digits or x names the step and the pattern."""
    record = make_record(3)
    record["chip_script"][0]["expect_sw"] = ["90"]
    with pytest.raises(RecordError, match=r"chip_script\.0\.expect_sw\.0"):
        parse_record(record)


def _with(**changes: Any) -> dict[str, Any]:
    """Seeded record 3 with ``changes`` ("person.name" style paths)."""
    record = make_record(3)
    for path, value in changes.items():
        head, _, last = path.replace("__", ".").rpartition(".")
        (record[head] if head else record)[last] = value
    return record


def refused(**changes: Any) -> str:
    with pytest.raises(RecordError) as info:
        parse_record(_with(**changes))
    return info.value.reason


def test_letters_with_diacritics_are_accepted_and_nfc_normalised() -> None:
    """A name with Latin diacritics is accepted; one written with a combining accent is
    stored as the precomposed letter."""
    assert parse_record(_with(person__name="ANDRÉ MÜLLER")).person.name == "ANDRÉ MÜLLER"
    assert parse_record(_with(person__name="JOSE\u0301")).person.name == "JOS\u00c9"


@pytest.mark.parametrize(
    ("char", "kind"),
    [
        ("\x00", "control character"),
        ("\x1b", "control character"),
        ("\n", "control"),
        ("\u202e", "bidirectional control"),
        ("\u2066", "bidirectional control"),
        ("\u200b", "invisible"),
        ("\ufeff", "byte order mark"),
        ("\ue000", "private-use"),
        ("\U000e0041", "tag character"),
        ("\u0301" * 40, "combining mark"),
        ("\u0663", "non-ASCII digit"),
    ],
)
def test_invisible_and_control_characters_are_refused_naming_the_field(
    char: str, kind: str
) -> None:
    """NUL, ESC, LF, bidi overrides, zero-width, BOM, private-use, tag characters, stacked
    combining marks and non-ASCII digits are refused with the field and the kind named."""
    reason = refused(person__address="JL. " + char + "MAWAR")
    assert reason.startswith("invalid field person.address: ")
    assert kind in reason
    assert "MAWAR" not in reason


def test_rt_rw_digits_are_ascii() -> None:
    """RT/RW in Arabic-Indic digits is refused (``\\d`` would have matched them)."""
    assert refused(person__rt_rw="\u0660\u0660\u0661/\u0660\u0660\u0662").startswith(
        "invalid field person.rt_rw: "
    )
    assert parse_record(_with(person__rt_rw="001/002")).person.rt_rw == "001/002"


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        ("person.birth_date", "2999-01-01", "in the future"),
        ("person.birth_date", "1899-12-31", "before 1900-01-01"),
        ("issue_date", "2099-06-01", "in the future"),
        ("issue_date", "1900-01-01", "KTP-el did not exist"),
        ("enrolled_at", "2099-01-01T00:00:00+00:00", "in the future"),
        ("enrolled_at", "2024-01-01T10:00:00", "timezone"),
        ("enrolled_at", "2008-06-01T10:00:00+07:00", "KTP-el did not exist"),
        ("person.birth_date", 946684800, "YYYY-MM-DD"),
    ],
)
def test_dates_outside_plausible_ranges_are_refused(path: str, value: Any, says: str) -> None:
    """Birth in the future or before 1900, issue or enrolment in the future or before
    KTP-el, a naive enrolment time, a number for a date: refused naming the field."""
    reason = refused(**{path.replace(".", "__"): value})
    assert reason.startswith(f"invalid field {path}: ")
    assert says in reason


def test_issue_before_birth_is_refused() -> None:
    """An issue date before the holder's birth date is refused as issue_date."""
    today = dt.datetime.now(dt.UTC).date()
    reason = refused(
        person__birth_date=today.isoformat(), issue_date=(today - dt.timedelta(days=1)).isoformat()
    )
    assert reason == "invalid field issue_date: is before the holder's birth date"


def test_closed_vocabularies() -> None:
    """Religion and marital status take only the card's words."""
    assert refused(person__religion="ATHEIS").startswith(
        "invalid field person.religion: must be one of: ISLAM, "
    )
    assert refused(person__marital_status="MENIKAH").startswith(
        "invalid field person.marital_status: "
    )
    assert parse_record(_with(person__religion="KEPERCAYAAN TERHADAP TUHAN YME"))


def test_validity_follows_nationality() -> None:
    """A foreign resident's card carries a date within 10 years of issue; a citizen's is
    for life."""
    today = dt.datetime.now(dt.UTC).date()
    until = (today + dt.timedelta(days=700)).strftime("%d-%m-%Y")
    ok = parse_record(
        _with(person__nationality="WNA", person__valid_until=until, issue_date=today.isoformat())
    )
    assert ok.person.valid_until == until
    assert refused(person__valid_until=until).startswith("invalid field person.valid_until: ")


def test_longest_values_allowed_still_fit_the_face() -> None:
    """Every text field at its longest, in the widest letters and worst word lengths, lays
    out on the card (the length bounds are what fits)."""
    worst = {
        "person__name": 120,
        "person__birth_place": 60,
        "person__address": 200,
        "person__kel_desa": 60,
        "person__kecamatan": 60,
        "person__occupation": 60,
        "person__nationality": 40,
    }
    for word in (1, 5, 21, 40):
        values = {k: (("W" * word + " ") * 200)[:n].strip() for k, n in worst.items()}
        values["person__nationality"] = "W" * 40
        later = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
        values["person__valid_until"] = later.strftime("%d-%m-%Y")
        record = parse_record(_with(**values))
        check_fits(record)
        render_face(record)


def test_an_issue_place_too_wide_for_the_card_is_refused() -> None:
    """A 40-letter issue place of wide letters is refused by the layout check, by name."""
    record = parse_record(_with(issue_place="W" * 40))
    with pytest.raises(FaceError, match=r"^invalid field issue_place: too wide"):
        check_fits(record)
    check_fits(parse_record(_with(issue_place="PENUKAL ABAB LEMATANG ILIR")))


def _photo(size: tuple[int, int]) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, (20, 60, 170)).save(buf, "JPEG")
    return base64.b64encode(buf.getvalue()).decode()


def test_a_bomb_photo_is_refused_from_its_header_before_pillow_opens_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A JPEG whose frame header claims 20000 x 25000 pixels is refused as photo_jpeg
    without Pillow ever opening it (no DecompressionBombError anywhere)."""
    small = base64.b64decode(_photo((160, 200)))
    pos = small.index(b"\xff\xc0")
    bomb = small[: pos + 5] + struct.pack(">HH", 25000, 20000) + small[pos + 9 :]

    def no_open(*_: object, **__: object) -> None:
        raise AssertionError("Pillow was handed the image")

    record = _with(photo_jpeg=base64.b64encode(bomb).decode())
    monkeypatch.setattr(Image, "open", no_open)
    with pytest.raises(RecordError) as info:
        parse_record(record)
    assert info.value.reason == (
        "invalid field photo_jpeg: JPEG image is 20000x25000 pixels; allowed 100x125 to 1200x1600"
    )


@pytest.mark.parametrize(
    ("size", "says"), [((200, 160), "aspect ratio"), ((60, 75), "pixels"), ((200, 200), "aspect")]
)
def test_photo_dimensions_and_aspect_are_checked(size: tuple[int, int], says: str) -> None:
    """A landscape, square or tiny photo is refused as photo_jpeg."""
    reason = refused(photo_jpeg=_photo(size))
    assert reason.startswith("invalid field photo_jpeg: ")
    assert says in reason
    assert parse_record(_with(photo_jpeg=_photo((300, 400))))


def test_a_png_photo_or_a_jpeg_signature_is_refused() -> None:
    """The photo must be a JPEG and the signature a PNG."""
    record = make_record(3)
    assert "is not a JPEG" in refused(photo_jpeg=record["signature_png"])
    assert "is not a PNG" in refused(signature_png=record["photo_jpeg"])


def test_a_truncated_photo_is_refused_when_read() -> None:
    """A JPEG cut in half fails at parse time (decoded in full), not at printing."""
    data = base64.b64decode(make_record(3)["photo_jpeg"])
    half = base64.b64encode(data[: len(data) // 2]).decode()
    assert refused(photo_jpeg=half).startswith(
        "invalid field photo_jpeg: JPEG image is a damaged JPEG image"
    )


DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def test_a_letter_the_card_font_cannot_draw_is_refused_before_printing() -> None:
    """A name with a letter the face's font has no glyph for (it would print as a box) is
    refused by the layout check, naming the field and the code point; with a font that
    has the letter, the same record fits."""
    record = parse_record(_with(person__name="ANDRÉ MÜLLER"))
    if has_glyph("É", TEMPLATE.font_file):
        pytest.skip("the face's font draws É")
    with pytest.raises(
        FaceError,
        match=r"^invalid field person\.name: the card's font has "
        r"no glyph for U\+00C9",
    ):
        check_fits(record)
    if DEJAVU.exists():
        check_fits(record, dataclasses.replace(TEMPLATE, font_file=str(DEJAVU)))


def test_the_quick_fit_bound_never_passes_what_the_layout_refuses() -> None:
    """Over 300 seeded field blocks of random words and letters, whenever the cheap bound
    says the fields fit, the real layout at the smallest font fits too."""
    rng = random.Random(11)
    passed = refused = 0
    for _ in range(300):
        values = []
        cap = rng.choice((40, 80, 800))  # short, medium and overlong blocks
        for label, _get in FIELDS:
            words = [rng.choice("WMAIL.-/") * rng.randint(1, 45) for _ in range(rng.randint(1, 12))]
            values.append((label, " ".join(words)[: rng.randint(1, cap)]))
        fits = face._fields_at(values, TEMPLATE.field_min_size, TEMPLATE) is not None
        refused += not fits
        if face._surely_fits(values, TEMPLATE):
            passed += 1
            assert fits
    assert passed > 20  # the bound is used, not only the slow path
    assert refused > 20  # and the blocks include ones that do not fit
