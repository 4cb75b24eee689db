"""`station central serve` as a child process for tests: started, its "listening on URL"
line read, and always killed and reaped at the end."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: Runs only the ``central`` commands (no station config needed).
SERVE = """
import argparse, sys
from central.cli import add_central_commands
from station.cli.main import run_verb
parser = argparse.ArgumentParser()
add_central_commands(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
sys.exit(run_verb(args))
"""


@contextmanager
def serve_cli(argv: list[str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``central serve`` with ``argv`` (after ``central serve``): the process and its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "central", "serve", *argv], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on "), first
        yield proc, first.removeprefix("listening on ")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
