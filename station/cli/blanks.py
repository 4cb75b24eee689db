"""The technician's verbs for blanks, spoiled cards and reports."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from pathlib import Path
from typing import Any

from station.cli.common import config, emit, who, with_db
from station.cli.errors import Refused
from station.i18n import N_, Msg, _, os_error, tr
from station.papers.common import Signer, class_label
from station.papers.destruction import serial_label
from station.papers.report import write_report
from station.store import figures, reports
from station.store import ledger as inventory
from station.store.ledger import LedgerError

#: The ledger's kinds of movement, as history shows them.
LEDGER_KINDS = {
    "received": N_("received"),
    "used": N_("used"),
    "spoiled": N_("spoiled"),
    "adjusted": N_("adjusted"),
}


def cmd_receive(args: argparse.Namespace) -> int:
    try:
        got = with_db(
            args, lambda c: inventory.receive(c, args.count, args.batch, args.first_serial)
        )
    except LedgerError as exc:
        raise Refused(str(exc)) from exc
    stock = with_db(args, figures.ledger_totals)["in_stock"]
    text = (
        _("received {count} blanks (batch {batch}, serials {first}-{last}); in stock: {stock}")
        if got["first_serial"]
        else _("received {count} blanks (batch {batch}); in stock: {stock}")
    )
    emit(
        args,
        {**got, "in_stock": stock},
        text.format(
            count=args.count,
            batch=args.batch,
            first=got["first_serial"],
            last=got["last_serial"],
            stock=stock,
        ),
    )
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    try:
        got = with_db(args, lambda c: inventory.physical_count(c, args.physical, who()))
    except LedgerError as exc:
        raise Refused(str(exc)) from exc
    diff = got["discrepancy"]
    text = (
        _("counted {physical}, the ledger expects {expected}: they agree")
        if diff == 0
        else _(
            "counted {physical}, the ledger expects {expected}: DISCREPANCY of {diff} "
            "recorded; find the cause, then correct the stock with: station blanks "
            "adjust {diff} --reason '...'"
        )
    ).format(physical=got["physical"], expected=got["expected"], diff=f"{diff:+d}")
    emit(args, got, text)
    return 0 if diff == 0 else 1


def cmd_adjust(args: argparse.Namespace) -> int:
    try:
        got = with_db(args, lambda c: inventory.adjust(c, args.delta, args.reason, who()))
    except LedgerError as exc:
        raise Refused(str(exc)) from exc
    stock = with_db(args, figures.ledger_totals)["in_stock"]
    emit(
        args,
        {**got, "in_stock": stock},
        _("adjusted {delta} ({reason}); in stock: {stock}").format(
            delta=f"{args.delta:+d}", reason=args.reason, stock=stock
        ),
    )
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    tz = config(args).rationing.tz
    rows = with_db(args, lambda c: inventory.history(c, args.limit))
    lines = []
    for r in rows:
        when = dt.datetime.fromtimestamp(r["at"], tz).strftime("%Y-%m-%d %H:%M")
        extra = " ".join(
            class_label(r[k]) if k == "class" else tr(str(r[k])) if k == "reason" else str(r[k])
            for k in ("batch", "serial", "class", "reason", "who")
            if k in r
        )
        kind = _(LEDGER_KINDS.get(r["kind"], r["kind"]))
        lines.append(f"{when}  {kind:<9} {r['count']:>+6d}  {extra}")
    emit(args, rows, "\n".join(lines) or _("the ledger is empty"))
    return 0


def cmd_spoiled_list(args: argparse.Namespace) -> int:
    tz = config(args).rationing.tz
    rows = with_db(args, inventory.spoiled_pending)
    lines = [
        f"{dt.datetime.fromtimestamp(r['at'], tz):%Y-%m-%d %H:%M}  "
        f"{serial_label(r):<20} {class_label(r['class']):<22} "
        f"{tr(r['detail'] or '')}"
        for r in rows
    ]
    emit(
        args,
        rows,
        "\n".join(
            [
                *lines,
                _("{count} spoiled card(s) in the reject tray, not yet destroyed").format(
                    count=len(rows)
                ),
            ]
        )
        if rows
        else _("no spoiled cards waiting for destruction"),
    )
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    cfg = config(args)
    place = args.place or cfg.office.place or cfg.office.regency or cfg.station_id
    try:
        witnesses = [Signer.parse(w) for w in args.witness]
    except ValueError as exc:
        raise Refused(str(exc)) from exc
    try:
        path, n = inventory.destroy(
            lambda fn: with_db(args, fn),
            witnesses,
            place,
            cfg.station_id,
            cfg.state_dir / "destructions",
            cfg.rationing.tz,
            cfg.office,
            args.pdf,
        )
    except LedgerError as exc:
        raise Refused(str(exc)) from exc
    emit(
        args,
        {"destroyed": n, "document": str(path)},
        _("{count} spoiled card(s) recorded as destroyed; print and sign {path}").format(
            count=n, path=path
        ),
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    cfg = config(args)
    tz = cfg.rationing.tz
    if args.period == "daily":
        day = dt.date.fromisoformat(args.date) if args.date else dt.datetime.now(tz).date()
        report: dict[str, Any] = with_db(
            args, lambda c: reports.daily(c, day, tz, cfg.rationing.burn_window_days)
        )
    else:
        year, month = (int(x) for x in args.month.split("-"))
        report = with_db(
            args, lambda c: reports.monthly(c, year, month, tz, cfg.rationing.burn_window_days)
        )
    if args.pdf:
        try:
            path = write_report(report, cfg.office, cfg.station_id, dt.datetime.now(tz), args.pdf)
        except OSError as exc:
            raise Refused(
                Msg("cannot write {path}: {reason}", path=args.pdf, reason=os_error(exc))
            ) from exc
        print(_("wrote {path}: print it, sign it and send it to the province").format(path=path))
    elif args.csv:
        print(reports.to_csv(report.get("days") or [report]), end="")
    else:
        emit(args, report, reports.to_text(report, cfg.station_id))
    return 0


def _month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a month like 2026-11")
    return text


def add_blank_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def verb(
        parent: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        help_: str,
        func: Any,
    ) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=_(help_))
        p.add_argument("--json", action="store_true", help=_("the output as JSON"))
        p.set_defaults(func=func)
        return p

    blanks = sub.add_parser("blanks", help=_("blank stock")).add_subparsers(
        dest="blanks", required=True
    )
    p = verb(blanks, "receive", N_("record a delivery of blanks"), cmd_receive)
    p.add_argument("count", type=int)
    p.add_argument("--batch", required=True)
    p.add_argument("--first-serial", help=_("serial of the first blank, if the batch has a range"))
    p = verb(
        blanks, "count", N_("record a physical count (never overwrites the ledger)"), cmd_count
    )
    p.add_argument("physical", type=int)
    p = verb(blanks, "adjust", N_("correct the stock by ±N with a reason"), cmd_adjust)
    p.add_argument("delta", type=int)
    p.add_argument("--reason", required=True)
    p = verb(blanks, "history", N_("the ledger, oldest first"), cmd_history)
    p.add_argument("--limit", type=int, default=100)

    spoiled = sub.add_parser("spoiled", help=_("spoiled cards")).add_subparsers(
        dest="spoiled", required=True
    )
    verb(spoiled, "list", N_("spoiled cards not yet destroyed"), cmd_spoiled_list)
    p = verb(
        spoiled, "destroy", N_("record their destruction, write the berita acara"), cmd_destroy
    )
    p.add_argument(
        "--witness",
        action="append",
        required=True,
        metavar="NAME[;NIP[;POSITION]]",
        help=_("a witness who signs (repeat for each)"),
    )
    p.add_argument("--place", help=_("where (default: office.place, else office.regency)"))
    p.add_argument(
        "--pdf",
        type=Path,
        metavar="FILE",
        help=_("write the berita acara here (default: under state_dir/destructions)"),
    )

    report = sub.add_parser("report", help=_("blank reports")).add_subparsers(
        dest="period", required=True
    )
    p = verb(report, "daily", N_("one day"), cmd_report)
    p.add_argument("--date", help=_("YYYY-MM-DD (default: today, office time)"))
    _report_forms(p)
    p = verb(report, "monthly", N_("one month, with its days"), cmd_report)
    p.add_argument("--month", type=_month, required=True)
    _report_forms(p)


def _report_forms(p: argparse.ArgumentParser) -> None:
    p.add_argument("--csv", action="store_true", help=_("the figures as CSV"))
    p.add_argument("--pdf", type=Path, metavar="FILE", help=_("write the A4 report to FILE"))
