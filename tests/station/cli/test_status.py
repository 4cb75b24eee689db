"""station status in the reader's language, from what a running daemon stored as codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from station import i18n
from station.cli.status import render_status
from tests.support.harness import Central, receive, running_station, station_config, wait_for


def _status(config: Path, lang: str) -> list[str]:
    """station status as the technician runs it (its own process, beside the daemon)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "station.cli.main",
            "--config",
            str(config),
            "status",
            "--lang",
            lang,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = out.rstrip("\n").split("\n")
    assert len(lines) <= 24, lines
    assert all(len(line) <= 80 for line in lines), [x for x in lines if len(x) > 80]
    return lines


@pytest.mark.parametrize("written", ["en", "id"])
def test_status_written_in_one_language_reads_in_the_other(
    tmp_path: Path, central: Central, monkeypatch: pytest.MonkeyPatch, written: str
) -> None:
    """A daemon running under either language holds for lack of blanks after a print
    fault; station status --lang id and --lang en each show the hold, its action and the
    last error's action in the reader's language, on one 80 x 24 screen."""
    monkeypatch.setenv("STATION_LANGUAGE", written)
    central.seed(6)
    config = station_config(
        tmp_path,
        central,
        printer={"options": {"hopper": 20, "seed": 3, "faults": {"print_fail": 0.5}}},
        pipeline={"max_attempts": 10},
    )
    receive(config, 4)
    with running_station(config) as station:
        wait_for(
            "the hold for blanks",
            lambda: (
                (station.board.get("state") or {}).get("category") == "paused"
                and "blanks" in station.board.get("state")["message"]
            ),
        )
        assert station.board.get("last_error"), "the seeded fault should have struck"
        indonesian = "\n".join(_status(config, "id"))
        english = "\n".join(_status(config, "en"))
    assert "stasiun:   BERHENTI SEMENTARA — stok blanko habis menurut buku persediaan" in indonesian
    assert "tindakan: catat penerimaan blanko: station blanks receive JUMLAH --batch" in indonesian
    assert "periksa kartu di baki kartu rusak" in indonesian.replace("\n" + " " * 11, " ")
    assert "blanko:    stok 0 (diterima 4," in indonesian
    assert "station:   PAUSED — no blanks in stock per the ledger" in english
    assert "  to do:   receive blanks: station blanks receive COUNT --batch ID" in english
    assert "inspect the card in the reject tray" in english.replace("\n" + " " * 11, " ")


def test_a_long_status_still_fits_one_screen() -> None:
    """Every row a status can have, with long texts, stays within 80 columns and 24
    lines; a row too long for its share is cut, never dropped."""
    counts = {
        "in_stock": 10**6,
        "received": 10**6,
        "used": 10**6,
        "spoiled": 10**5,
        "in_printer": 1,
        "inspection": 3,
        "buffered": 999,
        "outbox": 12345,
        "cards_today": 500,
        "days_left": 1.5,
        "burn_rate_per_day": 80.0,
        "low_stock": True,
    }
    long = "the printer reported a fault with a very long technical detail " * 4
    snap = {
        "counts": counts,
        "printer_state": "cover_open",
        "warning": long,
        "state": {"category": "error", "message": long, "action": long},
        "link": {"up": False, "since": 1.0, "detail": long},
        "last_error": {"at": 1.0, "category": "PrintFailed", "message": long, "action": long},
    }
    i18n.set_language("en")
    lines = render_status(snap).split("\n")
    assert len(lines) <= 24
    assert all(len(line) <= 80 for line in lines)
    for label in (
        "station:",
        "  to do:",
        "printer:",
        "blanks:",
        "buffer:",
        "outbox:",
        "today:",
        "link:",
        "outlook:",
        "warning:",
        "inspect:",
        "last error:",
    ):
        assert any(line.startswith(label) for line in lines), label
