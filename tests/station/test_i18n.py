"""The station speaks Bahasa Indonesia by default and English on request."""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from station import i18n
from station.cli.main import build_parser, main
from tests.support.harness import Central, receive, station_config

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "station/locale/id/LC_MESSAGES/station.po"
_PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")


def _catalog() -> dict[str, str]:
    with PO.open("rb") as fh:
        return {str(m.id): str(m.string) for m in read_po(fh) if m.id}


def _used_ids() -> set[str]:
    ids: set[str] = set()
    for package in ("station", "drivers", "central"):
        for _file, _line, message, _comments, _ctx in extract_from_dir(
            ROOT / package,
            # The centre's fleet pages are Jinja2 templates (babel.cfg).
            method_map=[("**.py", "python"), ("templates/**.html", "jinja2.ext:babel_extract")],
            keywords={**DEFAULT_KEYWORDS, "Msg": None},
        ):
            ids.add(message if isinstance(message, str) else message[0])
    return ids


def test_committed_mo_is_the_compiled_po() -> None:
    """The .mo shipped in the package is exactly what Babel compiles from the .po."""
    with PO.open("rb") as fh:
        catalog = read_po(fh)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    assert PO.with_suffix(".mo").read_bytes() == buf.getvalue(), (
        "run: pybabel compile -d station/locale -D station"
    )


def test_every_message_in_the_code_has_an_indonesian_translation() -> None:
    """Each message id marked in the code has a non-empty Indonesian text with the same
    placeholders, so no English-only or broken message reaches an operator."""
    catalog = _catalog()
    used = _used_ids()
    assert used, "no marked messages found"
    missing = sorted(m for m in used if not catalog.get(m))
    assert not missing, f"untranslated: {missing}"
    wrong = sorted(
        m
        for m in used
        if sorted(_PLACEHOLDER.findall(m)) != sorted(_PLACEHOLDER.findall(catalog[m]))
    )
    assert not wrong, f"placeholders differ: {wrong}"


def test_the_language_is_chosen_by_flag_then_config_then_locale() -> None:
    """--lang beats the config, the config beats LANG, and without either it is id."""
    assert i18n.choose("en", "id", {"LANG": "id_ID.UTF-8"}) == "en"
    assert i18n.choose(None, "en", {"LANG": "id_ID.UTF-8"}) == "en"
    assert i18n.choose(None, None, {"LANG": "en_US.UTF-8"}) == "en"
    assert i18n.choose(None, None, {"LANG": "en_US.UTF-8", "LC_MESSAGES": "id_ID"}) == "id"
    assert i18n.choose(None, None, {"LC_ALL": "C.UTF-8", "LANG": "en_US.UTF-8"}) == "id"
    assert i18n.choose(None, None, {"LANG": "fr_FR.UTF-8"}) == "id"
    assert i18n.choose(None, None, {}) == "id"


def _inspect(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out.strip()


def test_every_verb_takes_lang_and_the_config_sets_the_default(
    tmp_path: Path,
    central: Central,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A station with no language set speaks Indonesian; language = "en" in the config,
    --lang before or after the verb, and LANG each change it."""
    monkeypatch.delenv("STATION_LANGUAGE")
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    config = station_config(tmp_path, central)
    receive(config, 1)
    c = str(config)
    assert _inspect(capsys, "--config", c, "inspect") == "tidak ada kartu yang perlu diperiksa"
    assert _inspect(capsys, "--config", c, "inspect", "--lang", "en") == "nothing needs inspection"
    assert _inspect(capsys, "--config", c, "--lang", "en", "inspect") == "nothing needs inspection"
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert _inspect(capsys, "--config", c, "inspect") == "nothing needs inspection"
    english = station_config(tmp_path, central, language="en")
    monkeypatch.setenv("LANG", "id_ID.UTF-8")
    assert _inspect(capsys, "--config", str(english), "inspect") == "nothing needs inspection"
    assert (
        _inspect(capsys, "--config", str(english), "inspect", "--lang", "id")
        == "tidak ada kartu yang perlu diperiksa"
    )


def _verbs(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [parser]
    return [verb for a in subs for sub in a.choices.values() for verb in _verbs(sub)]


def test_lang_is_accepted_by_every_verb() -> None:
    """--lang is an option of every verb the station has (it is added in one place)."""
    verbs = _verbs(build_parser())
    assert len(verbs) > 15
    for verb in verbs:
        assert any("--lang" in a.option_strings for a in verb._actions), verb.prog


def test_a_built_wheel_carries_the_compiled_catalog(tmp_path: Path) -> None:
    """pip install on a fresh machine gets the Indonesian catalog (no build step)."""
    src = tmp_path / "src"
    for part in ("station", "drivers"):
        shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, src / part)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(src)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("ektp_station-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "station/locale/id/LC_MESSAGES/station.mo" in names
    assert "station/locale/id/LC_MESSAGES/station.po" in names


def test_a_config_error_reads_in_indonesian(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad key stops the verb with one line naming the key, in the reader's language
    (the config cannot say which: --lang does), and the exit code stays 78."""
    path = tmp_path / "station.toml"
    path.write_text(
        'station_id = "t-01"\nlangauge = "id"\n[central]\nurl = "http://x"\n'
        'trusted_keys = { k = "k.pub" }\n'
    )
    assert main(["--config", str(path), "status", "--lang", "id"]) == 78
    assert capsys.readouterr().err.strip() == (
        f"kesalahan konfigurasi: kunci langauge di {path} tidak dikenal: hapus atau periksa "
        "ejaannya"
    )
    assert main(["--config", str(path), "status", "--lang", "en"]) == 78
    assert capsys.readouterr().err.strip() == (
        f"config error: unknown key langauge in {path}: remove it or check its spelling"
    )


def test_help_and_argument_errors_follow_the_language(capsys: pytest.CaptureFixture[str]) -> None:
    """--help and argparse's own errors are in the language asked for."""
    with pytest.raises(SystemExit):
        main(["spoiled", "destroy", "--help", "--lang", "id"])
    out = capsys.readouterr().out
    assert out.startswith("cara pakai: station spoiled destroy")
    assert "saksi yang menandatangani (ulangi untuk setiap saksi)" in out
    with pytest.raises(SystemExit):
        main(["blanks", "receive", "--lang", "id"])
    assert "galat: argumen berikut wajib diisi: count, --batch" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["blanks", "receive", "--lang", "en"])
    assert "error: the following arguments are required: count, --batch" in capsys.readouterr().err
