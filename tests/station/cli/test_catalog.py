"""No English-only line reaches an Indonesian operator: every technician verb, run with
--lang id on a station that has printed, spoiled and held cards, prints only words of the
Indonesian catalog, the values the operator gave, and the devices' own technical details
(English by design, as the logs)."""

from __future__ import annotations

import argparse
import getpass
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from drivers.errors import DeviceError
from station.cli.main import build_parser, main
from tests.support.harness import Central, running_station, station_config, wait_for

ROOT = Path(__file__).resolve().parents[3]
PO = ROOT / "station/locale/id/LC_MESSAGES/station.po"
#: What the operator typed in this test (names, reasons, batch numbers, places).
GIVEN = "Siti Rahma Operator SIAK Budi Santoso lent Kec Ciomas BAST KTP Halaman Kantor"
#: Command words and units that read the same in both languages.
SHARED = "station systemctl ektp journalctl WIB WITA WIT NIK NIP PDF PNG pid min"
#: The simulated printer's identity and driver name (as a real printer reports its own).
DEVICE = "ektp-station simulator sim"


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[\w+ *\] ")


def _error_codes() -> list[str]:
    """The devices' error codes status and the spoiled rows show in brackets (the error's
    class name, as in the log): a code, not a sentence."""
    found, todo = [], [DeviceError]
    while todo:
        cls = todo.pop()
        found.append(cls.__name__)
        todo += cls.__subclasses__()
    return found


def _cli_words() -> list[str]:
    """The CLI's verbs, options and metavars (they stay as they are in both languages)."""
    words, todo = [], [build_parser()]
    while todo:
        parser = todo.pop()
        for action in parser._actions:
            words += [*action.option_strings, str(action.metavar or ""), action.dest]
            if isinstance(action, argparse._SubParsersAction):
                words += list(action.choices)
                todo += action.choices.values()
    return words


def _vocabulary() -> set[str]:
    with PO.open("rb") as fh:
        texts = [str(m.string) for m in read_po(fh) if m.id]
    words = " ".join(
        [*texts, GIVEN, SHARED, DEVICE, *_error_codes(), *_cli_words(), getpass.getuser()]
    )
    return {w.lower() for w in re.findall(r"[A-Za-z]{3,}", words)}


def _words(line: str) -> list[str]:
    line = re.sub(r"\S*[/\\]\S*", " ", line)  # paths and URLs
    line = re.sub(r"\b\w+(?:[_.]\w+)+\b", " ", line)  # config keys, their variables
    line = re.sub(r"\b[\w.-]*\d[\w.-]*\b", " ", line)  # ids, serials, numbers, dates
    line = re.sub(r"\b[A-Za-z0-9+/=]{40,}\b", " ", line)  # keys
    return [w.lower() for w in re.findall(r"[A-Za-z]{3,}", line)]


def test_every_verb_speaks_indonesian(
    tmp_path: Path,
    central: Central,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each output line of every technician verb under --lang id is made of catalog words,
    given values and device details only; a new untranslated message fails here."""
    central.seed(20)
    config = station_config(
        tmp_path,
        central,
        pipeline={"max_attempts": 10},
        rationing={"daily_quota": 12, "urgent_reserve": 1},
        printer={
            "options": {"hopper": 60, "seed": 11, "faults": {"print_fail": 0.15, "chip_dead": 0.1}}
        },
    )
    outputs: list[tuple[str, str]] = []

    def verb(*argv: str, ok: bool = True, cfg: Path = config, code: int | None = None) -> None:
        capsys.readouterr()
        try:
            got_code = main(["--config", str(cfg), *argv, "--lang", "id"])
        except SystemExit as exc:  # --help
            got_code = int(exc.code or 0)
        assert (got_code == 0) is ok, (argv, got_code)
        assert code is None or got_code == code, (argv, got_code)
        got = capsys.readouterr()
        outputs.append((" ".join(argv), got.out + got.err))

    verb("blanks", "receive", "40", "--batch", "BAST-7", "--first-serial", "KTP0001001")
    verb("blanks", "receive", "10", "--batch", "BAST-8", "--first-serial", "KTP0001005", ok=False)
    verb("blanks", "adjust", "-2", "--reason", "lent to Kec. Ciomas")
    verb("blanks", "adjust", "0", "--reason", "x", ok=False)
    with running_station(config) as station:
        wait_for(
            "the daily quota",
            lambda: (station.board.get("state") or {}).get("category") == "paused",
        )
        verb("status")
    verb("status")
    verb("inspect")
    verb("resolve", "999", "--good", ok=False)
    verb("reload", ok=False)
    verb("blanks", "count", "7", ok=False)
    verb("blanks", "history")
    verb("spoiled", "list")
    verb(
        "spoiled",
        "destroy",
        "--witness",
        "Siti Rahma;198701012010012001;Operator SIAK",
        "--witness",
        "Budi Santoso",
        "--place",
        "Halaman Kantor",
        "--pdf",
        str(tmp_path / "ba.pdf"),
    )
    verb("spoiled", "list")
    verb("spoiled", "destroy", "--witness", "Budi Santoso", ok=False)
    verb("report", "daily")
    verb("report", "monthly", "--month", "2026-11")
    verb("report", "daily", "--pdf", str(tmp_path / "d.pdf"))
    verb("doctor")
    verb("preview", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x.png"), ok=False)
    verb("batch", "key")
    verb("batch", "export", str(tmp_path / "results.json"))
    verb("batch", "import", str(tmp_path / "missing.json"), ok=False)
    # The reference server's verbs: their help, and a refusal.
    for path in (["central"], ["central", "serve"], ["central", "seed"], ["central", "batch"]):
        verb(*path, "--help")
    for path in (["register"], ["create"], ["ingest"]):
        verb("central", "batch", *path, "--help")
    verb("central", "seed", "0", "--db", str(tmp_path / "q.db"), "--key-dir", "k", ok=False, code=2)
    # A centre that cannot be reached: the link's reason in the status.
    (tmp_path / "off").mkdir()
    off = station_config(tmp_path / "off", central, url="http://127.0.0.1:9")
    with running_station(off) as station:
        wait_for("the link down", lambda: (station.board.get("link") or {}).get("up") is False)
        verb("status", cfg=off)
    # A config value out of range: pydantic's reason, in Indonesian.
    bad = tmp_path / "bad.toml"
    bad.write_text(config.read_text().replace("max_attempts = 10", "max_attempts = 0"))
    assert bad.read_text() != config.read_text()
    verb("status", cfg=bad, ok=False, code=78)

    allowed = _vocabulary()
    english = []
    for argv, text in outputs:
        assert text.strip(), argv
        for line in text.splitlines():
            if LOG_LINE.match(line):
                continue  # the log: English and structured by design
            stray = [w for w in _words(line) if w not in allowed]
            if stray:
                english.append(f"{argv}: {line!r} {stray}")
    assert not english, "\n".join(english)
    monkeypatch.delenv("STATION_LANGUAGE")
