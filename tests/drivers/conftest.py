"""Driver fixtures: a fast simulated printer on a temporary state file."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pytest

from drivers.sim.encoder import SimChipChannel
from drivers.sim.printer import SimFaults, SimPrinter, SimTimings

#: Fast but not zero: steps still sleep, so ordering and timing bugs can show.
FAST = SimTimings(feed=1, encode_apdu=0, print=2, eject=1, reject=1, status=0)


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "sim-printer.json"


@pytest.fixture
def printer(state_file: Path) -> SimPrinter:
    return SimPrinter(state_file, timings=FAST, hopper=5)


@pytest.fixture
def card(printer: SimPrinter) -> SimChipChannel:
    """An encoder connected to a freshly fed blank."""
    printer.feed()
    channel = SimChipChannel(printer)
    channel.connect(timeout=0.5)
    return channel


class MakeSim(Protocol):
    def __call__(self, *, seed: int = 0, hopper: int = 5, **faults: float) -> SimPrinter: ...


@pytest.fixture
def make_sim(state_file: Path) -> MakeSim:
    """Build a fast SimPrinter on the test's state file with the given fault rates."""

    def make(*, seed: int = 0, hopper: int = 5, **faults: float) -> SimPrinter:
        return SimPrinter(
            state_file, timings=FAST, faults=SimFaults(**faults), seed=seed, hopper=hopper
        )

    return make
