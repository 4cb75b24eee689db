"""The daily and monthly blank reports as A4 PDFs, in the shape an office sends up to the
province."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from station.config import OfficeConfig
from station.i18n import _, decimal
from station.papers.common import (
    CLASS_LABELS,
    Paper,
    Signer,
    class_label,
    clock,
    long_date,
    month_name,
)


def write_report(
    report: dict[str, Any], office: OfficeConfig, station_id: str, made_at: dt.datetime, path: Path
) -> Path:
    """``report`` is :func:`station.store.reports.daily` or its ``monthly``."""
    monthly = "days" in report
    if monthly:
        year, month = (int(x) for x in report["period"].split("-"))
        title = _("MONTHLY REPORT ON THE USE OF KTP-EL BLANKS")
        period = month_name(year, month)
        reference = _("Monthly blank report {period}").format(period=report["period"])
    else:
        title = _("DAILY REPORT ON THE USE OF KTP-EL BLANKS")
        period = long_date(dt.date.fromisoformat(report["period"]))
        reference = _("Daily blank report {period}").format(period=report["period"])
    pdf = Paper(office, station_id, reference)
    pdf.letterhead()
    pdf.heading(title, _("Period: {period}").format(period=period))
    pdf.fields(
        [
            (_("Province"), office.province or "." * 30),
            (_("Regency/City"), office.regency or "." * 30),
            (_("Reporting unit"), office.name),
            (_("Print station"), station_id),
            (_("Made on"), f"{long_date(made_at.date())} {clock(made_at)}"),
        ]
    )
    pdf.ln(3)
    pdf.line_of(_("A. Recapitulation"), bold=True)
    pdf.grid(
        [(_("No."), 12, "R"), (_("Item"), 120, "L"), (_("Count"), 38, "R")],
        _recap_rows(report),
        size=9.5,
        height=6,
    )
    if monthly:
        pdf.ln(4)
        pdf.keep_together(40)
        pdf.line_of(_("B. Figures of each day"), bold=True)
        _days(pdf, report["days"])
    pdf.ln(6)
    _signatures(pdf, made_at.date())
    return pdf.write_to(path)


def _recap_rows(report: dict[str, Any]) -> list[list[str]]:
    days_left = report.get("days_left")
    rows = [
        ["1", _("Stock of blanks at the start of the period"), str(report["stock_start"])],
        ["2", _("Blanks received"), str(report["received"])],
        ["3", _("Adjustments (+/-)"), f"{report['adjusted']:+d}"],
        ["4", _("KTP-el printed"), str(report["printed"])],
        ["5", _("Blanks spoiled"), str(report["spoiled"])],
    ]
    letters = "abcdefgh"
    rows += [
        ["", f"   {letters[i]}. {class_label(klass)}", str(report[f"spoiled_{klass}"])]
        for i, klass in enumerate(CLASS_LABELS)
    ]
    rows += [
        ["6", _("Spoiled blanks destroyed (berita acara)"), str(report["destroyed"])],
        ["7", _("Records deferred (no blank or quota left)"), str(report["deferred"])],
        ["8", _("Stock of blanks at the end of the period"), str(report["stock_end"])],
        [
            "9",
            _("Days of stock left at the recent rate of use"),
            "-" if days_left is None else _("{days} day(s)").format(days=decimal(days_left)),
        ],
    ]
    return rows


def _days(pdf: Paper, days: list[dict[str, Any]]) -> None:
    columns = [
        (_("Date"), 20, "L"),
        (_("Start"), 16, "R"),
        (_("Received"), 19, "R"),
        (_("Adjusted"), 22, "R"),
        (_("Printed"), 18, "R"),
        (_("Spoiled"), 16, "R"),
        (_("Destroyed"), 23, "R"),
        (_("Deferred"), 18, "R"),
        (_("End"), 18, "R"),
    ]
    rows = [
        [
            f"{dt.date.fromisoformat(d['period']):%d/%m/%Y}",
            str(d["stock_start"]),
            str(d["received"]),
            f"{d['adjusted']:+d}" if d["adjusted"] else "0",
            str(d["printed"]),
            str(d["spoiled"]),
            str(d["destroyed"]),
            str(d["deferred"]),
            str(d["stock_end"]),
        ]
        for d in days
    ]
    rows.append(
        [
            _("Total"),
            str(days[0]["stock_start"]) if days else "0",
            *(
                str(sum(d[k] for d in days))
                for k in ("received", "adjusted", "printed", "spoiled", "destroyed", "deferred")
            ),
            str(days[-1]["stock_end"]) if days else "0",
        ]
    )
    pdf.grid(columns, rows, size=8.5, height=5)


def _signatures(pdf: Paper, day: dt.date) -> None:
    half = pdf.width / 2
    pdf.keep_together(50)
    top = pdf.get_y()
    pdf.sign_block(
        pdf.MARGIN, half, ["", _("Made by,"), _("Operator of the print station")], Signer("")
    )
    pdf.set_y(top)
    pdf.sign_block(
        pdf.MARGIN + half,
        half,
        [pdf.place_and_date(day), _("Approved by,"), pdf.head_title()],
        pdf.head_of_office(),
    )
