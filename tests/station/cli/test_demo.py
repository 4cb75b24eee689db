"""station demo speaks Bahasa Indonesia by default and English with --lang en."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import FAST_TIMINGS, toml_dumps


def _demo_config(root: Path) -> Path:
    """config/demo.toml with its state under ``root``, a free port and fast timings."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = {
        "station_id": "demo-01",
        "state_dir": root / "demo/station",
        "log_level": "warning",
        "log_format": "console",
        "central": {
            "url": f"http://127.0.0.1:{port}",
            "sync_interval_s": 0.1,
            "trusted_keys": {"central-1": root / "demo/central/keys/central.pub"},
        },
        "printer": {
            "driver": "sim",
            "options": {
                "state_file": root / "demo/printer.json",
                "hopper": 50,
                "seed": 7,
                "timings_ms": dict(FAST_TIMINGS),
            },
        },
        "chip": {"driver": "sim"},
    }
    path = root / "demo.toml"
    path.write_text(toml_dumps(cfg))
    return path


@pytest.mark.parametrize(
    ("flag", "words"),
    [
        (
            [],
            [
                "server antrean contoh",
                "3 data contoh disiapkan",
                "diterima 23 blanko",
                "3/3 tercetak",
                "stasiun:   BERHENTI — layanan dihentikan",
                "hari ini:  3 KTP-el tercetak",
            ],
        ),
        (
            ["--lang", "en"],
            [
                "reference server on",
                "3 records seeded",
                "received 23 blanks",
                "3/3 printed",
                "station:   STOPPED — stopped",
                "today:     3 cards printed",
            ],
        ),
    ],
)
def test_the_demo_in_both_languages(tmp_path: Path, flag: list[str], words: list[str]) -> None:
    """Three cards through the whole demo: progress and the final status are Indonesian
    on a machine that asks for no language, English with --lang en."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("STATION_LANGUAGE", "LANG", "LC_ALL", "LC_MESSAGES")
    }
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "station.cli.main",
            "--config",
            str(_demo_config(tmp_path)),
            "demo",
            "--cards",
            "3",
            *flag,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
        cwd=tmp_path,
    ).stdout
    for text in words:
        assert text in out, (text, out)
