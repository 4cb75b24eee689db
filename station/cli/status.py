"""``station status`` as text: one screen (80 × 24) in the reader's language."""

from __future__ import annotations

import argparse
import json
import sqlite3
import textwrap
import time
from typing import Any

from station.cli.common import config, read_db
from station.disk import DiskGuard
from station.i18n import N_, _, decimal, show
from station.policy import RationingConfig, stock_outlook
from station.status import PRINTER_WORDS, live_state
from station.store import status as status_table

WIDTH, HEIGHT = 80, 24
LABEL = 11
CATEGORIES = {
    "starting": N_("STARTING"),
    "ready": N_("READY"),
    "printing": N_("PRINTING"),
    "paused": N_("PAUSED"),
    "error": N_("ERROR"),
    "stopped": N_("STOPPED"),
}


def ago(epoch: float | None) -> str:
    if not epoch:
        return _("never")
    secs = int(time.time() - epoch)
    if secs < 120:
        return _("{n}s ago").format(n=secs)
    if secs < 7200:
        return _("{n} min ago").format(n=secs // 60)
    return _("{n} h ago").format(n=secs // 3600)


def text_of(entry: dict[str, Any], key: str, code_key: str) -> str:
    """The entry's message in the reader's language (its code), else its stored text."""
    if entry.get(code_key):
        return show(entry[code_key])
    return show(str(entry.get(key) or "")) if entry.get(key) else ""


def status_snapshot(
    conn: sqlite3.Connection, rationing: RationingConfig | None = None
) -> dict[str, Any]:
    snap = status_table.get_status(conn)
    snap["state"] = live_state(snap)
    snap["counts"] = stock_outlook(conn, rationing or RationingConfig())
    return snap


def cmd_status(args: argparse.Namespace) -> int:
    """``station status [--json]``: the snapshot the daemon wrote, as it is now."""
    cfg = config(args)
    snap = read_db(args, lambda c: status_snapshot(c, cfg.rationing))
    snap["state"] = DiskGuard(cfg.state_dir, cfg.storage.reserve_mb).overlay(snap["state"])
    if args.json:
        print(json.dumps(snap, indent=2, sort_keys=True))
        return 0
    print(render_status(snap))
    return 0


def render_status(snap: dict[str, Any]) -> str:
    c = snap["counts"]
    state = snap.get("state") or {
        "category": "stopped",
        "msg": {"code": N_("the daemon has never run")},
    }
    link = snap.get("link") or {}
    category = _(CATEGORIES.get(state["category"], state["category"])).upper()
    rows: list[tuple[str, str]] = [
        (_("station:"), f"{category} — {text_of(state, 'message', 'msg')}")
    ]
    action = text_of(state, "action", "act")
    if action:
        rows.append((_("  to do:"), action))
    printer = str(snap.get("printer_state") or "unknown")
    rows += [
        (_("printer:"), show(PRINTER_WORDS.get(printer, printer))),
        (
            _("blanks:"),
            _(
                "{in_stock} in stock ({received} received, {used} used, {spoiled} "
                "spoiled, {in_printer} in the printer, {inspection} awaiting "
                "inspection)"
            ).format(**c),
        ),
        (_("buffer:"), _("{buffered} records ready to print").format(**c)),
        (_("outbox:"), _("{outbox} results not yet acknowledged").format(**c)),
        (_("today:"), _("{cards_today} cards printed").format(**c)),
    ]
    if link:
        line = (_("up since {ago}") if link.get("up") else _("DOWN since {ago}")).format(
            ago=ago(link.get("since"))
        )
        detail = text_of(link, "detail", "detail_msg")
        rows.append((_("link:"), line + (f" ({detail})" if detail else "")))
    else:
        rows.append((_("link:"), _("unknown")))
    if c.get("days_left") is not None:
        line = _("{days_left} days of blanks left at {burn_rate_per_day} a day").format(
            days_left=decimal(c["days_left"]), burn_rate_per_day=decimal(c["burn_rate_per_day"])
        )
        if c["low_stock"]:
            line += " — " + _("LOW STOCK: ask the regency for blanks")
        rows.append((_("outlook:"), line))
    if snap.get("warning"):
        rows.append((_("warning:"), text_of(snap, "warning", "warning_msg")))
    if c["inspection"]:
        rows.append(
            (_("inspect:"), _("{inspection} attempt(s) need a person: station inspect").format(**c))
        )
    err = snap.get("last_error")
    if err:
        rows.append(
            (
                _("last error:"),
                f"{ago(err['at'])} [{err['category']}] "
                f"{text_of(err, 'message', 'msg')} — {text_of(err, 'action', 'act')}",
            )
        )
    return "\n".join(_fit(rows))


def _fit(rows: list[tuple[str, str]]) -> list[str]:
    """Label and value lines wrapped to 80 columns; never more than 24 lines (the value
    of a long row is cut, the rows themselves are kept: each says something different)."""
    lines: list[str] = []
    budget = HEIGHT - len(rows)  # extra lines the wrapping may take
    for label, value in rows:
        pad = max(LABEL, len(label) + 1)  # a label as long as LABEL still gets its space
        wrapped = textwrap.wrap(value, WIDTH - pad) or [""]
        extra = min(len(wrapped) - 1, max(budget, 0))
        budget -= extra
        keep = wrapped[: extra + 1]
        if len(keep) < len(wrapped):
            keep[-1] = keep[-1][: WIDTH - pad - 1] + "…"
        lines.append(f"{label:<{pad}}{keep[0]}")
        lines += [" " * LABEL + more for more in keep[1:]]
    return lines
