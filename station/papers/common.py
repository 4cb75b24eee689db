"""A4 papers an office prints, signs and files: what every paper shares."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from station.config import OfficeConfig
from station.i18n import N_, _, language

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
MONTHS = (
    N_("January"),
    N_("February"),
    N_("March"),
    N_("April"),
    N_("May"),
    N_("June"),
    N_("July"),
    N_("August"),
    N_("September"),
    N_("October"),
    N_("November"),
    N_("December"),
)
WEEKDAYS = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)
ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")
#: The spoilage classes of the ledger (station.store.states.SPOIL_CLASSES), as papers name them.
CLASS_LABELS = {
    "failed encode": N_("failed encode"),
    "failed print": N_("failed print"),
    "physically damaged": N_("physically damaged"),
    "chip dead/invalid": N_("chip dead/invalid"),
}


def long_date(day: dt.date) -> str:
    """1 Desember 2026 (Indonesian) or 1 December 2026."""
    return f"{day.day} {_(MONTHS[day.month - 1])} {day.year}"


def month_name(year: int, month: int) -> str:
    return f"{_(MONTHS[month - 1])} {year}"


def weekday(day: dt.date) -> str:
    return _(WEEKDAYS[day.weekday()])


def clock(at: dt.datetime) -> str:
    """14.30 WIB in Indonesian (the period is the Indonesian time separator), 14:30 WIB."""
    sep = "." if language() == "id" else ":"
    return f"{at:%H}{sep}{at:%M} {at.tzname()}"


def class_label(klass: str | None) -> str:
    return _(CLASS_LABELS.get(klass or "", klass or "")) if klass else "-"


@dataclass(frozen=True)
class Signer:
    """Someone who signs: name, NIP (civil servant number) and position, any may be blank."""

    name: str
    nip: str = ""
    position: str = ""

    @classmethod
    def parse(cls, text: str) -> Signer:
        """``NAME[;NIP[;POSITION]]`` as given to ``--witness``."""
        parts = [p.strip() for p in text.split(";")]
        if not parts[0]:
            raise ValueError("a witness needs a name: --witness 'NAME[;NIP[;POSITION]]'")
        if len(parts) > 3:
            raise ValueError("--witness takes at most NAME;NIP;POSITION")
        parts += [""] * (3 - len(parts))
        if parts[1] and not parts[1].replace(" ", "").isdigit():
            raise ValueError("the NIP in --witness NAME;NIP;POSITION must be digits")
        return cls(parts[0], parts[1], parts[2])


class Paper(FPDF):
    """An A4 portrait page with the office's letterhead on page 1 and numbered pages."""

    MARGIN = 20.0
    LINE = 5.5

    def __init__(self, office: OfficeConfig, station_id: str, reference: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.office, self.station_id, self.reference = office, station_id, reference
        self.set_margins(self.MARGIN, 15, self.MARGIN)
        self.set_auto_page_break(auto=True, margin=18)
        self.unicode = (DEJAVU / "DejaVuSans.ttf").exists()
        if self.unicode:
            self.add_font("body", "", str(DEJAVU / "DejaVuSans.ttf"))
            self.add_font("body", "B", str(DEJAVU / "DejaVuSans-Bold.ttf"))
            self.family = "body"
        else:
            self.family = "helvetica"
        self.set_title(reference)
        self.set_creator("ektp-station")
        self.add_page()

    @property
    def width(self) -> float:
        return self.w - 2 * self.MARGIN

    def safe(self, text: str) -> str:
        """Text the font can draw (the core font has Latin-1 only)."""
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def use_font(self, size: float = 10, bold: bool = False) -> None:
        self.set_font(self.family, "B" if bold else "", size)

    def line_of(
        self,
        text: str,
        size: float = 10,
        *,
        bold: bool = False,
        align: str = "L",
        height: float | None = None,
    ) -> None:
        self.use_font(size, bold)
        self.multi_cell(
            self.width,
            height or self.LINE,
            self.safe(text),
            align=align,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )

    def footer(self) -> None:
        self.set_y(-13)
        self.use_font(8)
        self.cell(self.width / 2, 5, self.safe(self.reference))
        self.cell(
            self.width / 2,
            5,
            self.safe(_("page {page} of {pages}").format(page=self.page_no(), pages="{nb}")),
            align="R",
        )

    def letterhead(self) -> None:
        """The kop surat: government, office, station; a double rule under it."""
        office = self.office
        government = (
            _("GOVERNMENT OF {regency}").format(regency=office.regency.upper())
            if office.regency
            else ""
        )
        for text, size in (
            (government, 12),
            (office.name.upper(), 12),
            (
                _("PROVINCE OF {province}").format(province=office.province.upper())
                if office.province
                else "",
                9,
            ),
            (_("KTP-el print station {station}").format(station=self.station_id), 9),
        ):
            if text:
                self.line_of(text, size, bold=size > 10, align="C")
        y = self.get_y() + 1.5
        self.set_line_width(0.8)
        self.line(self.MARGIN, y, self.w - self.MARGIN, y)
        self.set_line_width(0.2)
        self.line(self.MARGIN, y + 1.2, self.w - self.MARGIN, y + 1.2)
        self.set_y(y + 5)

    def heading(self, text: str, subtitle: str = "") -> None:
        self.line_of(text, 12, bold=True, align="C")
        if subtitle:
            self.line_of(subtitle, 10, align="C")
        self.ln(3)

    def grid(
        self,
        columns: Sequence[tuple[str, float, str]],
        rows: Iterable[Sequence[str]],
        *,
        size: float = 8.5,
        height: float = 5.0,
    ) -> None:
        """A ruled table: ``columns`` (heading, width in mm, align L/R/C); the headings
        are drawn again at the top of every page the rows run onto. One line a cell
        (single-line cells keep 500 rows to a fraction of a second); text that does not
        fit its column is cut with an ellipsis."""

        def headings() -> None:
            self.use_font(size - 1, bold=True)
            self.set_fill_color(225, 225, 225)
            for title, width, _align in columns:
                self.cell(width, height + 1, self.fit(title, width), border=1, align="C", fill=True)
            self.ln(height + 1)

        headings()
        self.use_font(size)
        for row in rows:
            if self.get_y() + height > self.page_break_trigger:
                self.add_page()
                headings()
                self.use_font(size)
            for text, (_title, width, align) in zip(row, columns, strict=True):
                self.cell(width, height, self.fit(text, width), border=1, align=align)
            self.ln(height)

    def fit(self, text: str, width: float) -> str:
        """``text`` cut to fit ``width`` mm (with the cell's padding) in the current font."""
        text = self.safe(text)
        room = width - 2 * self.c_margin
        if self.get_string_width(text) <= room:
            return text
        while text and self.get_string_width(text + "...") > room:
            text = text[:-1]
        return text + "..."

    def fields(self, rows: list[tuple[str, str]], label_width: float = 45) -> None:
        """Label : value lines, as the heading of a form."""
        for label, value in rows:
            self.use_font(10)
            self.cell(label_width, self.LINE, self.safe(label))
            self.cell(4, self.LINE, ":")
            self.multi_cell(
                self.width - label_width - 4,
                self.LINE,
                self.safe(value),
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )

    def place_and_date(self, day: dt.date) -> str:
        return f"{self.signing_place()}, {long_date(day)}"

    def signing_place(self) -> str:
        return self.office.place or self.office.regency or self.station_id

    def sign_block(
        self, x: float, width: float, heading: list[str], signer: Signer, *, space: float = 20
    ) -> float:
        """A signature block at ``x`` from the current line; returns its bottom."""
        y = self.get_y()
        self.set_xy(x, y)
        for text in heading:
            self.use_font(10)
            self.multi_cell(
                width, self.LINE, self.safe(text), align="C", new_x=XPos.LEFT, new_y=YPos.NEXT
            )
        self.set_x(x)
        self.ln(space)
        self.set_x(x)
        self.use_font(10, bold=True)
        name = signer.name or "(" + "." * 40 + ")"
        self.multi_cell(
            width, self.LINE, self.safe(name), align="C", new_x=XPos.LEFT, new_y=YPos.NEXT
        )
        self.use_font(10)
        self.set_x(x)
        self.multi_cell(
            width,
            self.LINE,
            self.safe(f"NIP. {signer.nip or '.' * 24}"),
            align="C",
            new_x=XPos.LEFT,
            new_y=YPos.NEXT,
        )
        return self.get_y()

    def keep_together(self, height: float) -> None:
        """Start a new page unless ``height`` mm still fit on this one."""
        if self.get_y() + height > self.h - self.b_margin:
            self.add_page()

    def head_of_office(self) -> Signer:
        return Signer(self.office.head_name, self.office.head_nip)

    def head_title(self) -> str:
        office = self.office
        return " ".join(p for p in (office.head_title, office.name, office.regency) if p)

    def write_to(self, path: Path) -> Path:
        """Write the PDF next to ``path`` first, then move it in place (never half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(bytes(self.output()))
        tmp.replace(path)
        return path
