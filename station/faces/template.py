"""The KTP-el card face, rendered at the station from a print-ready record."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter

from PIL import Image, ImageDraw, ImageFont, ImageOps

from drivers.base import PrintJob
from station.images import PHOTO, SIGNATURE, ImageFault, ImageRules, decode_image
from station.records import PrintReadyRecord

Box = tuple[int, int, int, int]  # left, top, right, bottom (exclusive)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


class FaceError(ValueError):
    """The record cannot be laid out on the card (a message safe to log)."""


#: (label, getter) in the official order; Jenis Kelamin carries Gol. Darah on its line.
FIELDS: tuple[tuple[str, Callable[[PrintReadyRecord], str]], ...] = (
    ("Nama", lambda r: r.person.name),
    ("Tempat/Tgl Lahir", lambda r: f"{r.person.birth_place}, {r.person.birth_date:%d-%m-%Y}"),
    ("Jenis Kelamin", lambda r: r.person.sex),
    ("Alamat", lambda r: r.person.address),
    ("RT/RW", lambda r: r.person.rt_rw),
    ("Kel/Desa", lambda r: r.person.kel_desa),
    ("Kecamatan", lambda r: r.person.kecamatan),
    ("Agama", lambda r: r.person.religion),
    ("Status Perkawinan", lambda r: r.person.marital_status),
    ("Pekerjaan", lambda r: r.person.occupation),
    ("Kewarganegaraan", lambda r: r.person.nationality),
    ("Berlaku Hingga", lambda r: r.person.valid_until),
)


@dataclass(frozen=True)
class FaceTemplate:
    """Every position and size of the face, in pixels at 300 dpi (adjust here only)."""

    size: tuple[int, int] = (1016, 648)
    safe_margin: int = 24  # 2 mm: nothing is drawn closer to the edge
    font_file: str | None = None  # None: Pillow's bundled FreeType font
    header_box: Box = (40, 30, 976, 100)  # two centred lines
    header_size: int = 30
    nik_box: Box = (40, 108, 740, 152)
    nik_size: int = 38
    fields_box: Box = (40, 160, 736, 624)  # label column, colon, value column
    colon_x: int = 270
    value_x: int = 286
    blood_type_x: int = 520  # "Gol. Darah" on the Jenis Kelamin line
    field_size: int = 24  # the largest field font; shrunk until the block fits
    field_min_size: int = 12
    line_spacing: float = 1.22
    photo_box: Box = (768, 112, 968, 362)  # 4:5
    issue_place_y: int = 376
    issue_date_y: int = 408
    issue_size: int = 22
    signature_box: Box = (776, 444, 960, 530)


TEMPLATE = FaceTemplate()


@dataclass(frozen=True)
class FaceImages:
    colour: Image.Image  # RGB, the photo on white
    black: Image.Image  # mode 1, 0 = ink

    def composite(self) -> Image.Image:
        """The face as one RGB image: black ink as (0, 0, 0) over the colour layer."""
        out = self.colour.copy()
        out.paste((0, 0, 0), mask=ImageOps.invert(self.black.convert("L")))
        return out

    def png(self) -> bytes:
        buf = io.BytesIO()
        # Fast deflate: the PNG only travels from this process to the printer driver, and
        # the renderer runs for every card (optimize=True costs ~5x the time).
        self.composite().save(buf, "PNG", compress_level=1)
        return buf.getvalue()


@lru_cache(maxsize=64)
def _font(size: int, font_file: str | None) -> Font:
    if font_file:
        return ImageFont.truetype(font_file, size)
    return ImageFont.load_default(size=size)


def _wrap(text: str, font: Font, width: int) -> list[str]:
    """Greedy word wrap; a word wider than the line is split, never cut."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for ch in word:
            if font.getlength(line + ch) > width and line:
                lines.append(line)
                line = ""
            line += ch
    if line:
        lines.append(line)
    return lines or [""]


def _fitted(text: str, width: int, size: int, tpl: FaceTemplate, min_size: int = 10) -> Font:
    """The largest font up to ``size`` that puts ``text`` on one line of ``width``."""
    for s in range(size, min_size - 1, -1):
        font = _font(s, tpl.font_file)
        if font.getlength(text) <= width:
            return font
    raise FaceError(f"text of {len(text)} characters does not fit a {width}px line")


def _decode(b64: str, rules: ImageRules, what: str) -> Image.Image:
    try:
        return decode_image(b64, rules)
    except ImageFault as exc:
        raise FaceError(f"the record's {what} {exc}") from exc


Rows = list[tuple[str, list[str]]]


def _field_values(record: PrintReadyRecord) -> list[tuple[str, str]]:
    return [(label, get(record).upper()) for label, get in FIELDS]


def _fields_at(
    values: list[tuple[str, str]], size: int, tpl: FaceTemplate
) -> tuple[Font, int, Rows] | None:
    """The field block laid out at font ``size``: (font, line step, wrapped rows), or None
    when it does not fit the fields box at that size."""
    _, top, right, bottom = tpl.fields_box
    font = _font(size, tpl.font_file)
    step = round(size * tpl.line_spacing)
    if not _labels_fit(size, tpl):
        return None
    rows = [(lb, _wrap(v, font, right - tpl.value_x)) for lb, v in values]
    return (font, step, rows) if sum(len(ls) for _, ls in rows) * step <= bottom - top else None


@lru_cache(maxsize=64)
def _labels_fit(size: int, tpl: FaceTemplate) -> bool:
    font = _font(size, tpl.font_file)
    return all(font.getlength(lb) <= tpl.colon_x - tpl.fields_box[0] - 4 for lb, _ in FIELDS)


@lru_cache(maxsize=8192)
def _char_width(ch: str, size: int, font_file: str | None) -> float:
    return _font(size, font_file).getlength(ch)


def _surely_fits(values: list[tuple[str, str]], tpl: FaceTemplate) -> bool:
    """A cheap upper bound on the field block's lines at the smallest font: greedy wrapping
    fills any two consecutive lines past the line width, so a value of width W takes at
    most 2W/width + 1 lines (widths from single characters, 10% for kerning)."""
    size = tpl.field_min_size
    width = tpl.fields_box[2] - tpl.value_x
    lines = 0
    for _, value in values:
        w = 1.1 * sum(_char_width(ch, size, tpl.font_file) for ch in value)
        lines += int(2 * w / width) + 1
    box = tpl.fields_box[3] - tpl.fields_box[1]
    return _labels_fit(size, tpl) and lines * round(size * tpl.line_spacing) <= box


def _header_lines(record: PrintReadyRecord) -> tuple[str, str]:
    return (f"PROVINSI {record.region.province.upper()}", _regency_line(record.region.regency))


def _issue_width(tpl: FaceTemplate) -> int:
    return tpl.photo_box[2] - tpl.photo_box[0] + 40


MIN_LINE_SIZE = 10  # the smallest font a one-line value is shrunk to

#: The card's free-text fields (what the font must be able to draw).
TEXT_FIELDS = (
    "person.name",
    "person.birth_place",
    "person.address",
    "person.kel_desa",
    "person.kecamatan",
    "person.occupation",
    "person.nationality",
    "region.regency",
    "issue_place",
)


@lru_cache(maxsize=4096)
def has_glyph(ch: str, font_file: str | None) -> bool:
    """Whether the font draws ``ch`` as itself, not as its "missing glyph" box."""
    if ch == " ":
        return True
    font = _font(24, font_file)

    def mask(text: str) -> tuple[tuple[int, int], bytes]:
        m = font.getmask(text)
        return m.size, bytes(m)

    return mask(ch) != mask("\uffff")


def check_fits(record: PrintReadyRecord, template: FaceTemplate = TEMPLATE) -> None:
    """FaceError "invalid field <name>: ..." when a value cannot be laid out on the face,
    from font metrics only (cheap enough for every record as it arrives)."""
    tpl = template
    for field in TEXT_FIELDS:
        value: str = attrgetter(field)(record)
        for ch in dict.fromkeys(value.upper()):  # in order: the first one is named
            if not has_glyph(ch, tpl.font_file):
                raise FaceError(
                    f"invalid field {field}: the card's font has no glyph for "
                    f"U+{ord(ch):04X} (it would print as a box)"
                )
    small = _font(MIN_LINE_SIZE, tpl.font_file)
    width = tpl.header_box[2] - tpl.header_box[0]
    for field, text, room in (
        ("region.province", _header_lines(record)[0], width),
        ("region.regency", _header_lines(record)[1], width),
        ("issue_place", record.issue_place.upper(), _issue_width(tpl)),
    ):
        if small.getlength(text) > room:
            raise FaceError(
                f"invalid field {field}: too wide for the card even at the smallest font"
            )
    values = _field_values(record)
    if not _surely_fits(values, tpl) and _fields_at(values, tpl.field_min_size, tpl) is None:
        raise FaceError(
            "invalid field person: the fields do not fit the card even at the smallest font"
        )


class _Painter:
    def __init__(self, tpl: FaceTemplate) -> None:
        self.tpl = tpl
        self.colour = Image.new("RGB", tpl.size, (255, 255, 255))
        self.black = Image.new("1", tpl.size, 1)
        self.ink = ImageDraw.Draw(self.black)
        self.ink.fontmode = "1"  # no anti-aliasing: every ink pixel is pure black

    def text(
        self,
        xy: tuple[float, float],
        text: str,
        font: Font,
        *,
        anchor: str = "la",
        bold: bool = False,
    ) -> None:
        self.ink.text(
            xy, text, font=font, fill=0, anchor=anchor, stroke_width=int(bold), stroke_fill=0
        )

    def fields(self, record: PrintReadyRecord) -> None:
        tpl = self.tpl
        left, top, _, bottom = tpl.fields_box
        values = _field_values(record)
        for size in range(tpl.field_size, tpl.field_min_size - 1, -1):
            layout = _fields_at(values, size, tpl)
            if layout is not None:
                font, step, rows = layout
                break
        else:
            raise FaceError("the record's fields do not fit the card even at the smallest font")
        gap = (bottom - top - sum(len(ls) for _, ls in rows) * step) // len(rows)
        y = top
        for label, lines in rows:
            self.text((left, y), label, font)
            self.text((tpl.colon_x, y), ":", font)
            for i, line in enumerate(lines):
                self.text((tpl.value_x, y + i * step), line, font)
            if label == "Jenis Kelamin":
                self.text((tpl.blood_type_x, y), f"Gol. Darah : {record.person.blood_type}", font)
            y += len(lines) * step + min(gap, step // 2)

    def photo(self, record: PrintReadyRecord) -> None:
        left, top, right, bottom = self.tpl.photo_box
        img = ImageOps.fit(
            _decode(record.photo_jpeg, PHOTO, "photo").convert("RGB"),
            (right - left, bottom - top),
            Image.Resampling.LANCZOS,
        )
        self.colour.paste(img.point(lambda v: max(v, 1)), (left, top))  # never pure black

    def signature(self, record: PrintReadyRecord) -> None:
        left, top, right, bottom = self.tpl.signature_box
        sig = _decode(record.signature_png, SIGNATURE, "signature").convert("L")
        sig = ImageOps.contain(sig, (right - left, bottom - top), Image.Resampling.LANCZOS)
        x = left + (right - left - sig.width) // 2
        y = top + (bottom - top - sig.height) // 2
        self.black.paste(sig.point(lambda v: 0 if v < 128 else 255).convert("1"), (x, y))


def _regency_line(regency: str) -> str:
    name = regency.upper()
    return name if name.startswith("KOTA ") else f"KABUPATEN {name}"


def render_face(record: PrintReadyRecord, template: FaceTemplate = TEMPLATE) -> FaceImages:
    """The card face of ``record`` as its black and colour layers (module docstring)."""
    tpl = template
    p = _Painter(tpl)
    left, top, right, bottom = tpl.header_box
    cx, width = (left + right) / 2, right - left
    for i, line in enumerate(_header_lines(record)):
        font = _fitted(line, width, tpl.header_size, tpl)
        p.text((cx, top + i * (bottom - top) / 2), line, font, anchor="ma", bold=True)
    left, top, right, bottom = tpl.nik_box
    font = _fitted(f"NIK   :   {record.person.nik}", right - left, tpl.nik_size, tpl)
    p.text((left, top), "NIK", font, bold=True)
    p.text((left + font.getlength("NIK   "), top), ":", font, bold=True)
    p.text((left + font.getlength("NIK   :   "), top), record.person.nik, font, bold=True)
    p.fields(record)
    p.photo(record)
    pl, _, pr, _ = tpl.photo_box
    for text, y in (
        (record.issue_place.upper(), tpl.issue_place_y),
        (f"{record.issue_date:%d-%m-%Y}", tpl.issue_date_y),
    ):
        p.text(
            ((pl + pr) / 2, y),
            text,
            _fitted(text, _issue_width(tpl), tpl.issue_size, tpl),
            anchor="ma",
        )
    p.signature(record)
    _check_margin(p, tpl)
    return FaceImages(colour=p.colour, black=p.black)


def _check_margin(p: _Painter, tpl: FaceTemplate) -> None:
    m = tpl.safe_margin
    inside = (m, m, tpl.size[0] - m, tpl.size[1] - m)
    for layer in (p.black.convert("L"), p.colour.convert("L")):
        box = ImageOps.invert(layer).getbbox()  # where anything is not white
        if box is not None and not (
            box[0] >= inside[0]
            and box[1] >= inside[1]
            and box[2] <= inside[2]
            and box[3] <= inside[3]
        ):
            raise FaceError(f"the layout draws outside the {m}px safe margin: {box}")


def to_print_job(record: PrintReadyRecord, template: FaceTemplate = TEMPLATE) -> PrintJob:
    """The job for the printer: the composed face PNG as ``front`` (no back)."""
    return PrintJob(label=record.record_id, front=render_face(record, template).png())
