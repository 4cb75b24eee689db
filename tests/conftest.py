"""Suite-wide fixtures: every test must leave no thread, server or device behind."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.support.harness import Central, running_central

#: The PC/SC fixtures (a real pcscd, virtual cards) serve the driver, contract and
#: scenario tests alike.
pytest_plugins = ["tests.support.pcsc_fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--hardware",
        action="store_true",
        default=False,
        help="run the driver contract on the real printer/encoder (EKTP_HW_* variables)",
    )


def hardware_enabled(config: pytest.Config) -> bool:
    """``--hardware`` given (or EKTP_HARDWARE=1 when this conftest is not an initial one)."""
    flag = bool(config.getoption("--hardware", default=False))
    return flag or os.environ.get("EKTP_HARDWARE") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hardware_enabled(config):
        return
    skip = pytest.mark.skip(reason="needs --hardware and a real device")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread (server, worker, sync loop) running."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"test left threads running: {[t.name for t in leaked]}"


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts and ends with structlog's defaults (a test may configure it)."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _english_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's assertions are written in English: the station's own default is
    Indonesian, so tests speak English unless they ask (``--lang id``, or delenv)."""
    monkeypatch.setenv("STATION_LANGUAGE", "en")


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Central]:
    """A reference queue server on loopback with its own database and signing key."""
    with running_central(tmp_path) as c:
        yield c


@pytest.fixture
def failing_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fsync of the station's WAL fails as a dying disk's does (EIO)."""

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("station.store.db.os.fdatasync", broken)
