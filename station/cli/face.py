"""Technician verbs for the card face and the devices."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from drivers.base import (
    CHIP_DRIVERS,
    PRINTER_DRIVERS,
    CardPosition,
    CardPrinter,
    PrinterState,
    load_driver,
)
from drivers.errors import DeviceError, NoCard
from station.cli.common import config
from station.faces.template import FaceError, render_face
from station.i18n import N_, Msg, _, os_error, tr
from station.records import RecordError, parse_record
from station.status import PRINTER_WORDS


def add_face_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("preview", help=_("render a record's card face to a PNG"))
    p.add_argument("record", type=Path, help=_("JSON file of a print-ready or signed record"))
    p.add_argument("--out", type=Path, default=Path("card.png"))
    p.set_defaults(func=cmd_preview)
    p = sub.add_parser("doctor", help=_("check the configured printer and encoder"))
    p.set_defaults(func=cmd_doctor)


def cmd_preview(args: argparse.Namespace) -> int:
    try:
        data: Any = json.loads(args.record.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        error = tr(os_error(exc)) if isinstance(exc, OSError) else str(exc)
        print(_("cannot read {path}: {error}").format(path=args.record, error=error))
        return 1
    if isinstance(data, dict) and "record" in data and "signature" in data:
        data = data["record"]
    try:
        face = render_face(parse_record(data if isinstance(data, dict) else {}))
        face.composite().save(args.out, "PNG")
    except RecordError as exc:
        print(f"{args.record}: {exc.reason}")
        return 1
    except (FaceError, OSError) as exc:
        print(_("cannot render {path}: {error}").format(path=args.record, error=exc))
        return 1
    print(
        _("wrote {path} ({width}x{height})").format(
            path=args.out, width=face.colour.width, height=face.colour.height
        )
    )
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    cfg = config(args)
    problems: list[str] = []
    try:
        printer = load_driver(PRINTER_DRIVERS, cfg.printer.driver).from_options(cfg.printer.options)
    except ValueError as exc:
        print(_("PROBLEM printer options: {error}").format(error=exc))
        print(_VERDICT_BAD.format(count=1))
        return 1
    _row(N_("printer driver:"), cfg.printer.driver)
    try:
        _printer_report(printer, problems)
        _chip_report(cfg.chip.driver, cfg.chip.options, printer, problems)
    finally:
        try:
            printer.close()
        except DeviceError as exc:
            problems.append(Msg("printer: close failed: {error}", error=str(exc)))
    for line in problems:
        print(_("PROBLEM {problem}").format(problem=tr(line)))
    # The verdict: always the last line, one line.
    print(
        _VERDICT_BAD.format(count=len(problems))
        if problems
        else _("verdict: no problem found; the printer and the encoder are ready")
    )
    return 1 if problems else 0


_VERDICT_BAD = N_(
    "verdict: {count} problem(s) found: fix each PROBLEM line above, then run station doctor again"
)


def _row(label: str, value: object) -> None:
    print(f"{_(label):<17}{value}")


def _printer_report(printer: CardPrinter, problems: list[str]) -> None:
    try:
        info = printer.open()
        _row(N_("model:"), info.model)
        _row(N_("serial:"), info.serial)
        _row(N_("firmware:"), info.firmware)
        status = printer.status()
    except DeviceError as exc:
        problems.append(Msg("printer: {error} -> {action}", error=str(exc), action=Msg(exc.action)))
        return
    left = _("unknown") if status.ribbon_left is None else str(status.ribbon_left)
    _row(N_("state:"), _(PRINTER_WORDS.get(status.state, str(status.state))))
    _row(N_("ribbon left:"), left)
    _row(N_("cover:"), _("open") if status.state is PrinterState.COVER_OPEN else _("closed"))
    feeder = (
        _("empty")
        if status.hopper == 0
        else (
            _("cards present")
            if status.hopper is None
            else _("{count} cards").format(count=status.hopper)
        )
    )
    _row(N_("feeder:"), feeder)
    _row(N_("card in path:"), _(CARD_POSITIONS.get(status.card, str(status.card))))
    diagnostics = getattr(printer, "diagnostics", None)
    if callable(diagnostics):
        try:
            for key, value in diagnostics().items():
                print(f"{key + ':':<17}{value}")
        except DeviceError as exc:
            problems.append(Msg("printer counters: {error}", error=str(exc)))
    if status.state is not PrinterState.READY:
        problems.append(
            Msg(
                "printer is {state}: {action}",
                state=str(status.state),
                action=Msg(_ACTIONS.get(status.state, "")),
            )
        )
    if status.card is not CardPosition.NONE:
        problems.append(
            Msg(
                "a card is in the printer ({position}): the daemon rejects it at "
                "start; or remove it by hand",
                position=str(status.card),
            )
        )


#: Where the card is (drivers.base.CardPosition), as doctor shows it.
CARD_POSITIONS = {
    "none": N_("none"),
    "contact": N_("at the encoder"),
    "print": N_("under the print head"),
    "jammed": N_("jammed"),
}
_ACTIONS = {
    PrinterState.COVER_OPEN: N_("close the printer cover"),
    PrinterState.FEEDER_EMPTY: N_("load blanks into the input hopper"),
    PrinterState.RIBBON_OUT: N_("replace the ribbon"),
    PrinterState.JAM: N_("open the printer and remove the jammed card"),
}


def _chip_report(
    driver: str, options: dict[str, Any], printer: CardPrinter, problems: list[str]
) -> None:
    _row(N_("encoder driver:"), driver)
    try:
        chip = load_driver(CHIP_DRIVERS, driver).from_options(options, printer=printer)
    except (ValueError, ImportError) as exc:
        problems.append(Msg("encoder: {error}", error=str(exc)))
        return
    try:
        chip.connect(timeout=0.5)
        _row(N_("encoder:"), _("reachable, a card is at the station"))
        chip.disconnect()
    except NoCard:
        _row(N_("encoder:"), _("reachable, no card at the station"))
    except DeviceError as exc:
        problems.append(Msg("encoder: {error} -> {action}", error=str(exc), action=Msg(exc.action)))
