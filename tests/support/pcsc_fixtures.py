"""Fixtures for the PC/SC suite: a real pcscd, virtual cards plugged in through vpcd.

Everything started here is stopped here: pcscd by PID at the session's end, each card's
thread at its test's end (the root conftest fails a test that leaves a thread running).
Without pcscd, vpcd or pyscard the suite is skipped with the reason; under CI (``CI``
set) a missing piece fails instead, so CI can never pass by skipping.

For an end-to-end test of the daemon with ``chip.driver = "pcsc"``, use ``pcsc_env``: a
running pcscd, a virtual card that is a fresh blank at every power-on (each connect of
the station), and ``pcsc_env.options`` to put under ``[chip.options]``.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.pcscd import (
    Pcscd,
    PcscdUnavailable,
    PcscEnv,
    find_pcscd,
    find_vpcd,
    pcsc_environment,
    shared_pcscd,
    stop_shared_pcscd,
    wait_card,
)
from tests.support.vcard import CardModel, VirtualCard

if TYPE_CHECKING:
    from drivers.pcsc.channel import PcscChipChannel


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PC/SC tests cannot run in CI: {reason}")
    pytest.skip(reason)


def require_pyscard() -> None:
    """Call at the top of a test module, before importing drivers.pcsc.channel."""
    if importlib.util.find_spec("smartcard") is None:
        reason = "pyscard is not installed (pip install -e '.[pcsc]')"
        if os.environ.get("CI"):
            pytest.fail(f"PC/SC tests cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="session")
def pcscd_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pcscd]:
    """One real pcscd for the whole session (its own vpcd ports and reader names)."""
    if find_pcscd() is None or find_vpcd() is None:
        _unavailable(
            "pcscd or vpcd is not installed "
            "(apt-get install pcscd vsmartcard-vpcd vsmartcard-vpicc)"
        )
    try:
        daemon = shared_pcscd(tmp_path_factory.mktemp("pcscd"))
    except PcscdUnavailable as exc:
        _unavailable(str(exc))
        raise
    yield daemon
    stop_shared_pcscd()


@pytest.fixture
def pcscd(pcscd_session: Pcscd) -> Pcscd:
    """The session's pcscd, restarted first if an earlier test stopped it."""
    if pcscd_session.proc is None or pcscd_session.proc.poll() is not None:
        pcscd_session.proc = None
        pcscd_session.start()
    return pcscd_session


PlugCard = Callable[..., VirtualCard]


@pytest.fixture
def plug(pcscd: Pcscd) -> Iterator[PlugCard]:
    """Plug a virtual card into slot 0 (or ``slot=1``) and wait until pcscd sees it."""
    cards: list[VirtualCard] = []

    def plug_card(
        factory: Callable[[], CardModel], *, slot: int = 0, wait: bool = True, **kwargs: Any
    ) -> VirtualCard:
        card = VirtualCard(pcscd.ports[slot], factory, **kwargs).start()
        cards.append(card)
        if wait:
            wait_card(pcscd.readers[slot])
        return card

    yield plug_card
    for card in cards:
        card.stop()
    if pcscd.proc is not None and pcscd.proc.poll() is None:
        for slot in {pcscd.ports.index(card.port) for card in cards}:
            wait_card(pcscd.readers[slot], present=False)  # the next test starts clean


@pytest.fixture
def pcsc_env(pcscd: Pcscd, tmp_path: Path) -> Iterator[PcscEnv]:
    """pcscd + a fresh-blank-per-power-on virtual card (+ the SAM): for daemon end-to-end."""
    with pcsc_environment(tmp_path, with_sam=True) as env:
        wait_card(pcscd.readers[0])
        yield env


@pytest.fixture
def encoder(pcscd: Pcscd) -> Iterator[PcscChipChannel]:
    """A PcscChipChannel on slot 0 with the SAM reader on slot 1 (1 s APDU deadline)."""
    from drivers.pcsc.channel import PcscChipChannel

    channel = PcscChipChannel.from_options(encoder_options(pcscd))
    yield channel
    channel.close()


def encoder_options(pcscd: Pcscd, **extra: object) -> dict[str, object]:
    """The ``[chip.options]`` table for the two vpcd slots of ``pcscd``."""
    return {
        "reader": f"^{re.escape(pcscd.readers[0])}$",
        "sam_reader": f"^{re.escape(pcscd.readers[1])}$",
        "transmit_timeout_s": 1.0,
        "poll_s": 0.02,
        **extra,
    }
