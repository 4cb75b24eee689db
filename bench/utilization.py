"""bench/utilization: how much of the printer's time the daemon keeps it busy.

Runs over the same simulated printer timings (default 500 ms a card, no faults): a bare
loop that drives the devices directly with pre-parsed records (once before and once after,
averaged), and the whole station (reference server on loopback, daemon threads, SQLite
with its fsync'd points, decryption, signature checks). utilization = bare seconds /
station seconds for the same number of cards. The station's own overhead per card is
measured inside the station run: the time of a card cycle minus the time spent in the
driver layer (the printer's calls and the chip encoding: script runner and channel), which
the bare loop spends too.

    python bench/utilization.py [--cards 400] [--card-ms 500]

Last line: {"bench": "utilization", "utilization": …, "p50_overhead_ms": …,
"p99_overhead_ms": …, …}
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from bench.outage import start_server_process, stop_server_process
from central.seed import new_records
from drivers.script import ScriptRunner, read_chip_serial
from drivers.sim.encoder import SimChipChannel
from drivers.sim.printer import SimPrinter
from station import logs
from station.cli.main import main as cli
from station.config import load_config
from station.daemon import Station
from station.faces.template import to_print_job
from station.records import parse_record
from tests.support.harness import station_config, wait_for


def timings(card_ms: float) -> dict[str, float]:
    # feed 20 %, print 70 %, eject 10 %: shaped like a real retransfer printer.
    return {
        "feed": card_ms * 0.2,
        "encode_apdu": 0,
        "print": card_ms * 0.7,
        "eject": card_ms * 0.1,
        "reject": 0,
        "status": 0,
    }


class DeviceClock:
    """Accumulates the time spent inside device calls (wrapping the public methods)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._lock = threading.Lock()

    def timed(self, inner: Any) -> Any:
        def timed(*args: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(*args)
            finally:
                with self._lock:
                    self.total += time.perf_counter() - t0

        return timed

    def wrap(self, device: object, names: tuple[str, ...]) -> None:
        for name in names:
            setattr(device, name, self.timed(getattr(device, name)))


PRINTER_CALLS = ("feed", "print_card", "eject", "reject", "status")


def encode(chip: SimChipChannel, record: Any) -> None:
    """The chip's part of a card, as the bare loop does it (timed as device work)."""
    chip.connect(1.0)
    runner = ScriptRunner(chip)
    runner.run(list(record.chip_script))
    runner.verify()
    read_chip_serial(chip)
    chip.disconnect()


def bare_loop(root: Path, records: list[dict[str, Any]], card_ms: float) -> tuple[float, float]:
    """(wall seconds, seconds inside the device calls) of the bare loop."""
    root.mkdir(parents=True, exist_ok=True)
    printer = SimPrinter.from_options(
        {
            "state_file": str(root / "bare.json"),
            "hopper": len(records) + 5,
            "timings_ms": timings(card_ms),
        }
    )
    chip = SimChipChannel(printer)
    parsed = [parse_record(r) for r in records]
    jobs = [to_print_job(r) for r in parsed]  # faces rendered before the clock starts
    printer.open()
    clock = DeviceClock()
    clock.wrap(printer, PRINTER_CALLS)
    timed_encode = clock.timed(encode)
    t0 = time.perf_counter()
    for record, job in zip(parsed, jobs, strict=True):
        printer.feed()
        timed_encode(chip, record)
        printer.print_card(job)
        printer.eject()
    return time.perf_counter() - t0, clock.total


@dataclass
class StationRun:
    """What one station run measured; every figure in seconds unless named ``_ms``."""

    station_s: float  # first card start to the last card's boundary
    device_s: float  # of which inside the device calls (the bare loop's work)
    overheads_ms: list[float]  # per card: cycle minus device time
    startup_s: float  # Station.start() called to the first card start
    first_card_s: float  # the first card's cycle
    drain_s: float  # last card's boundary to every result acknowledged by the centre


@dataclass
class CycleMarks:
    """(wall, device seconds so far) at each card start, and at each card boundary's end."""

    clock: DeviceClock
    cycles: list[tuple[float, float]]
    ends: list[tuple[float, float]]

    def per_card(self, cards: int) -> list[tuple[float, float]]:
        """The start of each of the first ``cards`` cards, then the end of the last one
        (when the boundary that writes its result returns)."""
        last_start = self.cycles[cards - 1][0]
        return [*self.cycles[:cards], next(m for m in self.ends if m[0] > last_start)]


def instrument(station: Station) -> CycleMarks:
    """Time a built (not started) station's card cycles and its device calls."""
    marks = CycleMarks(DeviceClock(), [], [])
    clock = marks.clock
    clock.wrap(station.printer, PRINTER_CALLS)
    # The chip encoding (drivers/script.py's runner over the channel) is driver-layer
    # work the bare loop does too: counted as device time, not station overhead.
    clock.wrap(station.pipeline, ("_encode",))
    inner = station.pipeline.print_one

    def print_one(buffered: Any) -> Any:
        marks.cycles.append((time.perf_counter(), clock.total))
        return inner(buffered)

    station.pipeline.print_one = print_one  # type: ignore[method-assign,assignment]
    boundary = station.pipeline.card_boundary

    def card_boundary(*args: Any, **kwargs: Any) -> Any:
        try:
            return boundary(*args, **kwargs)
        finally:
            marks.ends.append((time.perf_counter(), clock.total))

    station.pipeline.card_boundary = card_boundary  # type: ignore[method-assign]
    return marks


def overheads_ms(points: list[tuple[float, float]]) -> list[float]:
    """Per card: its cycle's wall time minus the time inside the device calls."""
    return [(w1 - w0 - (d1 - d0)) * 1000 for (w0, d0), (w1, d1) in itertools.pairwise(points)]


def station_run(root: Path, cards: int, card_ms: float) -> StationRun:
    server, central = start_server_process(root, cards)
    try:
        config = station_config(
            root,
            central,
            central={
                "buffer_target": cards,
                "lease_batch": min(cards, 1000),
                "sync_interval_s": 0.5,
            },
            printer={"options": {"hopper": cards + 5, "timings_ms": timings(card_ms)}},
        )
        cli(["--config", str(config), "blanks", "receive", str(cards + 5), "--batch", "B"])
        cfg = load_config(config)
        logs.setup(cfg.log_level, cfg.log_format)  # as `station run` does
        station = Station.build(cfg)
        marks = instrument(station)
        started = time.perf_counter()
        station.start()
        try:
            wait_for(
                "the whole buffer",
                lambda: (
                    station.db.run(
                        lambda c: c.execute("SELECT COUNT(*) FROM records").fetchone()[0]
                    )
                    >= cards
                ),
                timeout=120,
            )
            wait_for(
                "every card",
                lambda: (
                    len(marks.cycles) >= cards
                    and station.db.run(
                        lambda c: c.execute(
                            "SELECT COUNT(*) FROM attempts WHERE state='done'"
                        ).fetchone()[0]
                    )
                    >= cards
                ),
                timeout=cards * card_ms / 1000 * 3 + 60,
                every=0.01,
            )
            wait_for(
                "every result acknowledged",
                lambda: (
                    station.db.run(
                        lambda c: c.execute(
                            "SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL"
                        ).fetchone()[0]
                    )
                    == 0
                ),
                timeout=60,
                every=0.01,
            )
            acked = time.perf_counter()
        finally:
            station.stop()
    finally:
        stop_server_process(server)
    points = marks.per_card(cards)
    overheads = overheads_ms(points)
    return StationRun(
        station_s=points[-1][0] - points[0][0],
        device_s=points[-1][1] - points[0][1],
        overheads_ms=overheads,
        startup_s=points[0][0] - started,
        first_card_s=points[1][0] - points[0][0],
        drain_s=max(0.0, acked - points[-1][0]),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cards", type=int, default=400)
    ap.add_argument("--card-ms", type=float, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        records = list(new_records(args.cards, seed=0))
        (root / "s").mkdir()
        # The bare loop runs before and after the station and its mean is used, so a
        # machine that slows down or speeds up during the run does not tilt the ratio.
        bare_before, device_before = bare_loop(root / "before", records, args.card_ms)
        run = station_run(root / "s", args.cards, args.card_ms)
        bare_after, device_after = bare_loop(root / "after", records, args.card_ms)
        bare_s = (bare_before + bare_after) / 2
        bare_device_s = (device_before + device_after) / 2
    overheads = sorted(run.overheads_ms)
    p99 = overheads[min(len(overheads) - 1, int(len(overheads) * 0.99))]
    figures = {
        "bench": "utilization",
        "cards": args.cards,
        "card_ms": args.card_ms,
        "bare_s": round(bare_s, 3),
        "bare_before_s": round(bare_before, 3),
        "bare_after_s": round(bare_after, 3),
        "station_s": round(run.station_s, 3),
        "utilization": round(bare_s / run.station_s, 4),
        "p50_overhead_ms": round(statistics.median(overheads), 3),
        "p99_overhead_ms": round(p99, 3),
        "max_overhead_ms": round(overheads[-1], 3),
        # Where station_s - bare_s goes: the station's own work between device calls,
        # summed over the cards, and the device calls themselves running slower beside
        # the station's other threads than in the bare loop (same calls, same timings).
        "gap_s": round(run.station_s - bare_s, 3),
        "overhead_total_s": round(sum(overheads) / 1000, 3),
        "mean_overhead_ms": round(statistics.fmean(overheads), 3),
        "device_s": round(run.device_s, 3),
        "bare_device_s": round(bare_device_s, 3),
        "device_slowdown_s": round(run.device_s - bare_device_s, 3),
        # Outside station_s: what it costs before the first card and after the last.
        "startup_s": round(run.startup_s, 3),
        "first_card_s": round(run.first_card_s, 3),
        "drain_s": round(run.drain_s, 3),
    }
    print(
        f"bare loop {bare_s:.2f} s, station {run.station_s:.2f} s for {args.cards} cards; "
        f"overhead per card p50 {figures['p50_overhead_ms']} ms, p99 {p99:.2f} ms; gap "
        f"{figures['gap_s']} s = station work {figures['overhead_total_s']} s + device "
        f"calls slower by {figures['device_slowdown_s']} s"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
