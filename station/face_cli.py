"""Technician verbs for the card face and the devices.

    station preview RECORD [--out card.png]   render a record's face to a PNG
    station doctor                            check the configured printer and encoder

``RECORD`` is a JSON file holding a print-ready record or a signed record (its
signature is not checked: the preview prints nothing). ``doctor`` reports the printer's
model, serial, firmware, supplies and sensors, then one line per problem found; it
exits 0 when none was found, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from drivers.base import CHIP_DRIVERS, PRINTER_DRIVERS, CardPosition, PrinterState, load_driver
from drivers.errors import DeviceError, NoCard
from station.cli_common import config
from station.face import FaceError, render_face
from station.records import RecordError, parse_record


def add_face_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("preview", help="render a record's card face to a PNG")
    p.add_argument("record", type=Path, help="JSON file of a print-ready or signed record")
    p.add_argument("--out", type=Path, default=Path("card.png"))
    p.set_defaults(func=cmd_preview)
    p = sub.add_parser("doctor", help="check the configured printer and encoder")
    p.set_defaults(func=cmd_doctor)


def cmd_preview(args: argparse.Namespace) -> int:
    try:
        data: Any = json.loads(args.record.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.record}: {exc}")
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
        print(f"cannot render {args.record}: {exc}")
        return 1
    print(f"wrote {args.out} ({face.colour.width}x{face.colour.height})")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    cfg = config(args)
    problems: list[str] = []
    try:
        printer = load_driver(PRINTER_DRIVERS, cfg.printer.driver).from_options(
            cfg.printer.options)
    except ValueError as exc:
        print(f"PROBLEM printer options: {exc}")
        return 1
    print(f"printer driver:  {cfg.printer.driver}")
    try:
        _printer_report(printer, problems)
        _chip_report(cfg.chip.driver, cfg.chip.options, printer, problems)
    finally:
        try:
            printer.close()
        except DeviceError as exc:
            problems.append(f"printer: close failed: {exc}")
    for line in problems:
        print(f"PROBLEM {line}")
    print("no problem found" if not problems else f"{len(problems)} problem(s) found")
    return 1 if problems else 0


def _printer_report(printer: Any, problems: list[str]) -> None:
    try:
        info = printer.open()
        print(f"model:           {info.model}\nserial:          {info.serial}\n"
              f"firmware:        {info.firmware}")
        status = printer.status()
    except DeviceError as exc:
        problems.append(f"printer: {exc} -> {exc.action}")
        return
    left = "unknown" if status.ribbon_left is None else str(status.ribbon_left)
    print(f"state:           {status.state}\nribbon left:     {left}")
    print(f"cover:           {'open' if status.state is PrinterState.COVER_OPEN else 'closed'}")
    feeder = "empty" if status.hopper == 0 else (
        "cards present" if status.hopper is None else f"{status.hopper} cards")
    print(f"feeder:          {feeder}\ncard in path:    {status.card}")
    diagnostics = getattr(printer, "diagnostics", None)
    if callable(diagnostics):
        try:
            for key, value in diagnostics().items():
                print(f"{key + ':':<17}{value}")
        except DeviceError as exc:
            problems.append(f"printer counters: {exc}")
    if status.state is not PrinterState.READY:
        problems.append(f"printer is {status.state}: {_ACTIONS.get(status.state, '')}".rstrip())
    if status.card is not CardPosition.NONE:
        problems.append(f"a card is in the printer ({status.card}): the daemon rejects it "
                        "at start; or remove it by hand")


_ACTIONS = {
    PrinterState.COVER_OPEN: "close the printer cover",
    PrinterState.FEEDER_EMPTY: "load blanks into the input hopper",
    PrinterState.RIBBON_OUT: "replace the ribbon",
    PrinterState.JAM: "open the printer and remove the jammed card",
}


def _chip_report(driver: str, options: dict[str, Any], printer: Any,
                 problems: list[str]) -> None:
    print(f"encoder driver:  {driver}")
    try:
        chip = load_driver(CHIP_DRIVERS, driver).from_options(options, printer=printer)
    except (ValueError, ImportError) as exc:
        problems.append(f"encoder: {exc}")
        return
    try:
        chip.connect(timeout=0.5)
        print("encoder:         reachable, a card is at the station")
        chip.disconnect()
    except NoCard:
        print("encoder:         reachable, no card at the station")
    except DeviceError as exc:
        problems.append(f"encoder: {exc} -> {exc.action}")
