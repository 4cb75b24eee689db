"""The blank ledger as the technician works it: receipts, physical counts, adjustments,
history, and the destruction of spoiled cards with its berita acara."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from station.config import OfficeConfig
from station.i18n import Msg, os_error
from station.papers.common import Signer
from station.papers.destruction import Destruction, write_berita_acara
from station.store.audit import audit
from station.store.figures import ledger_totals

_SERIAL = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")


class LedgerError(ValueError):
    """A ledger operation refused; the message is the line the technician sees."""


@dataclass(frozen=True)
class SerialRange:
    prefix: str
    first: int
    last: int
    width: int

    @classmethod
    def of(cls, first_serial: str, count: int) -> SerialRange:
        m = _SERIAL.match(first_serial)
        if m is None:
            raise LedgerError(
                Msg(
                    "serial {serial} does not end in digits: give the first "
                    "blank's serial as printed, e.g. KTP0012001",
                    serial=repr(first_serial),
                )
            )
        number = m.group("number")
        return cls(m.group("prefix"), int(number), int(number) + count - 1, len(number))

    def label(self, n: int) -> str:
        return f"{self.prefix}{n:0{self.width}d}"

    def overlaps(self, other: SerialRange) -> bool:
        return self.prefix == other.prefix and self.first <= other.last and other.first <= self.last


def receive(
    conn: sqlite3.Connection, count: int, batch: str, first_serial: str | None = None
) -> dict[str, Any]:
    """Record a delivery; a serial range overlapping one already received is refused."""
    if count <= 0:
        raise LedgerError(Msg("COUNT must be a positive number of blanks"))
    if not batch.strip():
        raise LedgerError(Msg("--batch must name the delivery (e.g. the BAST number)"))
    first = last = None
    if first_serial:
        new = SerialRange.of(first_serial, count)
        for row in conn.execute(
            "SELECT first_serial, last_serial, batch FROM ledger "
            "WHERE kind='received' AND first_serial IS NOT NULL"
        ):
            old_first, old_last = SerialRange.of(row[0], 1), SerialRange.of(row[1], 1)
            old = SerialRange(old_first.prefix, old_first.first, old_last.first, old_first.width)
            if new.overlaps(old):
                raise LedgerError(
                    Msg(
                        "serials {first}-{last} overlap batch {batch} ({old_first}-{old_last}) "
                        "already received: check the delivery note",
                        first=new.label(new.first),
                        last=new.label(new.last),
                        batch=row[2],
                        old_first=row[0],
                        old_last=row[1],
                    )
                )
        first, last = new.label(new.first), new.label(new.last)
    conn.execute(
        "INSERT INTO ledger(kind, count, batch, first_serial, last_serial, at) "
        "VALUES ('received', ?, ?, ?, ?, ?)",
        (count, batch, first, last, time.time()),
    )
    audit(conn, "blanks_received", detail=f"{count} batch {batch}")
    return {"count": count, "batch": batch, "first_serial": first, "last_serial": last}


def physical_count(conn: sqlite3.Connection, physical: int, who: str | None) -> dict[str, int]:
    """Record a physical count against the ledger; never changes the stock by itself."""
    if physical < 0:
        raise LedgerError(Msg("PHYSICAL must be the number of blanks counted (0 or more)"))
    totals = ledger_totals(conn)
    expected = totals["in_stock"] + totals["in_printer"]
    conn.execute(
        "INSERT INTO physical_counts(at, physical, expected, who) VALUES (?,?,?,?)",
        (time.time(), physical, expected, who),
    )
    audit(conn, "blanks_counted", detail=f"physical {physical} expected {expected}")
    return {"physical": physical, "expected": expected, "discrepancy": physical - expected}


def adjust(conn: sqlite3.Connection, delta: int, reason: str, who: str) -> dict[str, Any]:
    if delta == 0:
        raise LedgerError(Msg("an adjustment of 0 changes nothing: give +N or -N"))
    if len(reason.strip()) < 3:
        raise LedgerError(Msg("--reason must say why the stock is adjusted"))
    if delta < 0 and ledger_totals(conn)["in_stock"] + delta < 0:
        raise LedgerError(
            Msg(
                "cannot remove {count} blanks: the ledger has only {stock} in stock",
                count=-delta,
                stock=ledger_totals(conn)["in_stock"],
            )
        )
    conn.execute(
        "INSERT INTO ledger(kind, count, reason, who, at) VALUES ('adjusted',?,?,?,?)",
        (delta, reason, who, time.time()),
    )
    audit(conn, "blanks_adjusted", detail=f"{delta:+d} by {who}: {reason}")
    return {"adjusted": delta, "reason": reason, "who": who}


def history(conn: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT entry_id, at, kind, count, batch, first_serial, last_serial, serial, class, "
        "detail, reason, who, attempt_id, destruction_id FROM ledger "
        "ORDER BY entry_id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    # sqlite3.Row iterates its values: keys() is needed for the column names.
    return [
        {k: r[k] for k in r.keys() if r[k] is not None}  # noqa: SIM118
        for r in reversed(rows)
    ]


def spoiled_pending(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Spoiled cards still in the reject tray (not yet destroyed)."""
    rows = conn.execute(
        "SELECT entry_id, at, serial, serial_note, class, detail, attempt_id FROM ledger "
        "WHERE kind='spoiled' AND destruction_id IS NULL ORDER BY entry_id"
    ).fetchall()
    return [dict(r) for r in rows]


def destroy(
    run: Callable[[Callable[[sqlite3.Connection], Any]], Any],
    witnesses: list[Signer],
    place: str,
    station_id: str,
    out_dir: Path,
    tz: dt.timezone,
    office: OfficeConfig | None = None,
    pdf: Path | None = None,
) -> tuple[Path, int]:
    """Record the destruction of every spoiled card not yet destroyed, with its berita
    acara (an A4 PDF the office prints, signs and files: ``pdf``, else one under
    ``out_dir``). ``run`` runs a function as one transaction.

    The PDF (seconds for hundreds of cards) is written before the short transaction that
    records the destruction, so a running daemon is not held up; it is moved into place
    only once that is committed, and if it cannot be written nothing is recorded. A card
    spoiled meanwhile stays waiting for the next destruction. Returns path and count."""
    if not witnesses:
        raise LedgerError(Msg("a destruction needs at least one --witness NAME"))
    cards, did = run(lambda c: (spoiled_pending(c), _next_destruction_id(c)))
    if not cards:
        raise LedgerError(Msg("no spoiled cards are waiting for destruction"))
    now = time.time()
    local = dt.datetime.fromtimestamp(now, tz)
    path = pdf or out_dir / f"berita-acara-{local:%Y%m%d}-{did}.pdf"
    tmp = path.with_name(path.name + ".tmp")
    try:
        write_berita_acara(
            Destruction(did, local, place, station_id, witnesses, cards),
            office or OfficeConfig(),
            tmp,
        )
    except OSError as exc:
        raise LedgerError(
            Msg(
                "cannot write the berita acara to {path}: {reason}; nothing was recorded",
                path=path,
                reason=os_error(exc),
            )
        ) from exc

    def record(conn: sqlite3.Connection) -> None:
        still = {c["entry_id"] for c in spoiled_pending(conn)}
        if _next_destruction_id(conn) != did or not {c["entry_id"] for c in cards} <= still:
            raise LedgerError(
                Msg("another destruction was recorded meanwhile: run the command again")
            )
        conn.execute(
            "INSERT INTO destructions(destruction_id, at, place, witnesses, "
            "document) VALUES (?,?,?,?,?)",
            (did, now, place, json.dumps([w.name for w in witnesses]), str(path)),
        )
        conn.executemany(
            "UPDATE ledger SET destruction_id=? WHERE entry_id=?",
            [(did, c["entry_id"]) for c in cards],
        )
        audit(conn, "spoiled_destroyed", detail=f"{len(cards)} cards, record {did}")

    try:
        run(record)
    except LedgerError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path, len(cards)


def _next_destruction_id(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='destructions'").fetchone()
    return int(row[0]) + 1 if row else 1
