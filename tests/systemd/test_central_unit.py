"""The centre's systemd unit: a sandbox systemd rates OK, and a command line the centre's
CLI accepts (the queue on PostgreSQL, mutual TLS, 4 workers)."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from central.cli import add_central_commands, cmd_serve
from central.engines import is_dsn

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "ektp-central.service"
#: The exposure figure quoted in the README (systemd 252 on Debian 12).
TARGET = 1.5


def exec_start() -> list[str]:
    text = UNIT.read_text().replace("\\\n", " ")
    [line] = [x for x in text.splitlines() if x.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def test_systemd_rates_the_central_unit_ok() -> None:
    """`systemd-analyze security` rates the centre's sandbox at most 1.5."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(
        r"Overall exposure level for ektp-central\.service: ([\d.]+) (\w+)", proc.stdout
    )
    assert found, proc.stdout + proc.stderr
    assert float(found[1]) <= TARGET, proc.stdout


def test_the_units_command_is_one_the_centre_accepts() -> None:
    """ExecStart is `station central serve` on a PostgreSQL DSN with mutual TLS and 4
    workers, under the unit's state and configuration directories."""
    argv = exec_start()
    assert argv[0] == "/usr/local/bin/station"
    parser = argparse.ArgumentParser()
    add_central_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv[1:])
    assert args.func is cmd_serve
    assert is_dsn(args.db)
    assert (args.workers, args.server) == (4, "asgi")
    assert str(args.key_dir).startswith("/var/lib/ektp-central/")
    assert all(
        str(p).startswith("/etc/ektp-central/")
        for p in (args.tls_cert, args.tls_key, args.client_ca)
    )
