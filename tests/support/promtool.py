"""Debian's promtool (package ``prometheus``) for the metrics and alert-rule tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian package prometheus; .ci/run installs it)",
)


def promtool(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool; its output in the assertion message when it fails."""
    assert PROMTOOL is not None
    proc = subprocess.run(
        [PROMTOOL, *map(str, args)],
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc
