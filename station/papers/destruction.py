"""The berita acara of the destruction of spoiled blanks, as an A4 PDF to sign and file."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from station.config import OfficeConfig
from station.i18n import _
from station.papers.common import (
    CLASS_LABELS,
    ROMAN,
    Paper,
    Signer,
    class_label,
    clock,
    long_date,
    weekday,
)


@dataclass(frozen=True)
class Destruction:
    destruction_id: int
    at: dt.datetime  # local time of the office
    place: str
    station_id: str
    witnesses: list[Signer]
    cards: list[dict[str, Any]]  # ledger rows: serial, class, at, detail

    @property
    def number(self) -> str:
        """e.g. 007/BA-KTP-EL/t-01/XII/2026 (running number / kind / station / month / year)."""
        return (
            f"{self.destruction_id:03d}/BA-KTP-EL/{self.station_id}/"
            f"{ROMAN[self.at.month - 1]}/{self.at.year}"
        )


def write_berita_acara(record: Destruction, office: OfficeConfig, path: Path) -> Path:
    pdf = Paper(
        office, record.station_id, _("Berita acara no. {number}").format(number=record.number)
    )
    pdf.letterhead()
    pdf.heading(
        _("RECORD OF DESTRUCTION OF SPOILED KTP-EL BLANKS"),
        _("Number: {number}").format(number=record.number),
    )
    day = record.at.date()
    pdf.line_of(
        _(
            "On {weekday}, {date}, at {time}, at {place}, we the undersigned destroyed "
            "{count} spoiled KTP-el blank(s) of print station {station}, by burning, so that "
            "none can be used again. The blanks destroyed are:"
        ).format(
            weekday=weekday(day),
            date=long_date(day),
            time=clock(record.at),
            place=record.place,
            count=len(record.cards),
            station=record.station_id,
        ),
        align="J",
    )
    pdf.ln(2)
    _cards_table(pdf, record)
    pdf.ln(3)
    # Totals, closing and signatures stay together on the last page.
    pdf.keep_together(
        pdf.LINE * (len(CLASS_LABELS) + 4) + 12 + 42 * ((len(record.witnesses) + 2) // 3) + 48
    )
    _totals(pdf, record.cards)
    pdf.ln(2)
    pdf.line_of(_("This record is made truthfully, to be used as required."), align="J")
    pdf.ln(4)
    _signatures(pdf, record)
    return pdf.write_to(path)


def serial_label(card: dict[str, Any]) -> str:
    """A spoiled card's serial as the lists show it, or why it is unknown."""
    return str(card["serial"] or card.get("serial_note") or _("(unknown)"))


def _cards_table(pdf: Paper, record: Destruction) -> None:
    tz = record.at.tzinfo
    columns = [
        (_("No."), 10, "R"),
        (_("Blank serial"), 40, "L"),
        (_("Class of spoilage"), 36, "L"),
        (_("Date ({zone})").format(zone=record.at.tzname()), 30, "L"),
        (_("Detail"), 54, "L"),
    ]
    rows = []
    for i, card in enumerate(record.cards, 1):
        when = dt.datetime.fromtimestamp(card["at"], tz)
        rows.append(
            [
                str(i),
                serial_label(card),
                class_label(card["class"]),
                f"{when:%d/%m/%Y} {clock(when).split()[0]}",
                card["detail"] or "-",
            ]
        )
    pdf.grid(columns, rows)


def totals_by_class(cards: list[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(card["class"] or "failed print" for card in cards)
    return {klass: counts.get(klass, 0) for klass in CLASS_LABELS}


def _totals(pdf: Paper, cards: list[dict[str, Any]]) -> None:
    pdf.line_of(_("Totals by class of spoilage:"), bold=True)
    rows = [
        (f"   {class_label(k)}", _("{count} card(s)").format(count=n))
        for k, n in totals_by_class(cards).items()
    ]
    rows.append(("   " + _("Total destroyed"), _("{count} card(s)").format(count=len(cards))))
    pdf.fields(rows, label_width=70)


def _signatures(pdf: Paper, record: Destruction) -> None:
    third, half = pdf.width / 3, pdf.width / 2
    top = pdf.get_y()
    pdf.line_of(_("Witnesses:"), bold=True)
    for i, witness in enumerate(record.witnesses):
        column = i % 3
        if column == 0:
            pdf.keep_together(42)
            top = pdf.get_y()
        pdf.set_y(top)
        position = witness.position or "." * 24
        bottom = pdf.sign_block(
            pdf.MARGIN + column * third,
            third,
            [_("Witness {n}").format(n=i + 1), position],
            witness,
            space=14,
        )
        if column == 2 or i == len(record.witnesses) - 1:
            pdf.set_y(bottom + 4)
    pdf.keep_together(48)
    pdf.sign_block(
        pdf.MARGIN + half,
        half,
        [pdf.place_and_date(record.at.date()), _("Approved by,"), pdf.head_title()],
        pdf.head_of_office(),
    )
