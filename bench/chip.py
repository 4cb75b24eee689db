"""bench/chip: an 8 KB personalisation script, station driver vs a bare pyscard loop.

Starts its own pcscd (private vpcd ports) and the project's strict virtual card, by
default in a child process (as a real chip is not in our interpreter; ``--card-in-process``
runs it as a thread). Then, on the same card, alternating round by round:

* **station** — ``ScriptRunner(PcscChipChannel).run(steps)``: step parsing, T=0/T=1
  ``transceive``, frame tracing, the per-APDU deadline (worker thread hand-over);
* **bare** — pyscard's high-level ``connection.transmit(apdu)`` over the same APDUs,
  pre-converted to lists, checking only SW1 SW2 (what a minimal pyscard script does);
* **raw** — ``smartcard.scard.SCardTransmit`` in a loop (the floor: no Python layer);
* the station again with ``deadline="thread"`` (a worker-thread hand-over per APDU).

``ratio`` = median station round / median bare round (target ≤ 1.1). The last stdout line
is one JSON object. Run from the repository root: ``python bench/chip.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from smartcard import scard  # noqa: E402
from smartcard.System import readers as pyscard_readers  # noqa: E402

from drivers import ktpel_layout as layout  # noqa: E402
from drivers.pcsc.channel import PcscChipChannel  # noqa: E402
from drivers.script import ScriptRunner, build_write_script  # noqa: E402
from tests.support.pcscd import Pcscd, wait_card  # noqa: E402
from tests.support.vcard import VirtualCard, strict_card  # noqa: E402


def script_files(seed: int) -> dict[int, bytes]:
    """8 KB of random content filling every EF of the layout."""
    rng = random.Random(seed)
    return {fid: rng.randbytes(size) for fid, size in layout.EF_SIZES.items()}


def plug_card(
    daemon: Pcscd, *, in_process: bool, t0: bool, latency_ms: float = 0.0
) -> tuple[object, float]:
    """Start the card; returns (handle, seconds until pcscd saw it)."""
    start = time.perf_counter()
    handle: object
    if in_process:
        handle = VirtualCard(
            daemon.ports[0], lambda: strict_card(1, t0=t0), latency_s=latency_ms / 1000
        ).start()
    else:
        cmd = [
            sys.executable,
            "-m",
            "tests.support.vcard",
            "--port",
            str(daemon.ports[0]),
            "--latency-ms",
            str(latency_ms),
        ]
        handle = subprocess.Popen(
            [*cmd, "--t0"] if t0 else cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
    wait_card(daemon.readers[0], timeout=10.0)
    return handle, time.perf_counter() - start


def unplug_card(handle: object) -> None:
    if isinstance(handle, VirtualCard):
        handle.stop()
    elif isinstance(handle, subprocess.Popen):
        handle.terminate()
        handle.wait(timeout=5)


def run(rounds: int, *, in_process: bool, t0: bool, latency_ms: float = 0.0) -> dict[str, object]:
    steps = build_write_script(script_files(seed=1))
    apdus = [bytes.fromhex(s.apdu) for s in steps]
    lists = [list(a) for a in apdus]
    payload = sum(len(a) - 5 for a in apdus if a[1] == 0xD6)
    with tempfile.TemporaryDirectory(prefix="bench-chip-") as tmp:
        daemon = Pcscd(Path(tmp)).start()
        card: object = None
        channel: PcscChipChannel | None = None
        threaded: PcscChipChannel | None = None
        bare = None
        try:
            card, seen_s = plug_card(daemon, in_process=in_process, t0=t0, latency_ms=latency_ms)
            options = {"reader": f"^{daemon.readers[0]}$", "poll_s": 0.01}
            channel = PcscChipChannel.from_options(options)
            t = time.perf_counter()
            channel.connect(timeout=5.0)
            connect_s = time.perf_counter() - t
            threaded = PcscChipChannel.from_options({**options, "deadline": "thread"})
            threaded.connect(timeout=5.0)
            bare = next(r for r in pyscard_readers() if str(r) == daemon.readers[0])
            bare = bare.createConnection()
            bare.connect()
            protocol = bare.getProtocol()
            hcard, pci = bare.component.hcard, (scard.SCARD_PCI_T0 if t0 else scard.SCARD_PCI_T1)
            station_t, bare_t, raw_t, verify_t, thread_t = [], [], [], [], []
            for _ in range(rounds):
                t = time.perf_counter()
                runner = ScriptRunner(channel)
                runner.run(steps)
                station_t.append(time.perf_counter() - t)
                t = time.perf_counter()
                runner.verify()
                verify_t.append(time.perf_counter() - t)
                t = time.perf_counter()
                ScriptRunner(threaded).run(steps)
                thread_t.append(time.perf_counter() - t)
                t = time.perf_counter()
                for a in lists:
                    _, sw1, _ = bare.transmit(a, protocol)
                    if sw1 not in (0x90, 0x61):
                        raise RuntimeError(f"bare loop: SW1 {sw1:02X}")
                bare_t.append(time.perf_counter() - t)
                t = time.perf_counter()
                for a in lists:
                    hresult, _ = scard.SCardTransmit(hcard, pci, a)
                    if hresult != scard.SCARD_S_SUCCESS:
                        raise RuntimeError(f"raw loop: 0x{hresult & 0xFFFFFFFF:08X}")
                raw_t.append(time.perf_counter() - t)
        finally:
            if bare is not None:
                bare.disconnect()
                bare.release()
            for chan in (channel, threaded):
                if chan is not None:
                    chan.close()
            if card is not None:
                unplug_card(card)
            daemon.stop()
    station, bare_m, raw, thread = (
        statistics.median(x) for x in (station_t, bare_t, raw_t, thread_t)
    )
    n = len(apdus)
    return {
        "bench": "chip",
        "ratio": round(station / bare_m, 3),
        "ratio_raw": round(station / raw, 3),
        "apdus_per_s": round(n / station),
        "apdus": n,
        "payload_bytes": payload,
        "station_ms": round(station * 1000, 2),
        "bare_ms": round(bare_m * 1000, 2),
        "raw_ms": round(raw * 1000, 2),
        "station_thread_deadline_ms": round(thread * 1000, 2),
        "verify_ms": round(statistics.median(verify_t) * 1000, 2),
        "per_apdu_us": {
            "station": round(station / n * 1e6, 1),
            "bare": round(bare_m / n * 1e6, 1),
            "raw": round(raw / n * 1e6, 1),
        },
        "connect_ms": round(connect_s * 1000, 2),
        "card_seen_ms": round(seen_s * 1000, 1),
        "rounds": rounds,
        "card": "thread" if in_process else "process",
        "protocol": "T=0" if t0 else "T=1",
        "card_latency_ms": latency_ms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--card-in-process", action="store_true")
    parser.add_argument("--t0", action="store_true", help="T=0 card (61xx on case 4)")
    parser.add_argument(
        "--card-latency-ms",
        type=float,
        default=0.0,
        help="the card waits this long per APDU (a real chip: ms)",
    )
    args = parser.parse_args()
    result = run(
        args.rounds, in_process=args.card_in_process, t0=args.t0, latency_ms=args.card_latency_ms
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
