"""Fixtures for whole-station tests: a seeded reference server and a station config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.station.harness import Central, start_central


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Central]:
    """A reference queue server on loopback with its own database and signing key."""
    c = start_central(tmp_path)
    try:
        yield c
    finally:
        c.server.stop()
