"""bench/wire: bytes on the wire per record, measured between station and centre.

A fault proxy in pass mode sits on the link and counts the bytes each request and answer
carries (HTTP headers and bodies; TCP/IP and TLS framing not included). The station leases,
prints and reports ``--records`` records (seeded like real ones: a JPEG photo, a signature,
a chip script of about 9 KB of APDUs). bytes_per_record = every byte both ways on every
endpoint / records printed; the lease answers are gzip-compressed by the centre when the
client accepts it (httpx does).

    python bench/wire.py [--records 200]

Last line: {"bench": "wire", "bytes_per_record": …, …}
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.outage import quiet_logs, start_server_process, stop_server_process
from central.seed import load_or_create_key, signed_records
from station.cli.main import main as cli
from station.config import load_config
from station.daemon import Station
from station.link.protocol import LeasedRecord
from tests.support.harness import db_counts, station_config, wait_for
from tests.support.netfaults import FaultProxy

FAST = {"feed": 0, "encode_apdu": 0, "print": 0, "eject": 0, "reject": 0, "status": 0}


def json_bytes_per_record(key_dir: Path, n: int) -> float:
    """The same records as plain JSON lease items, without compression."""
    _, key = load_or_create_key(key_dir)
    sizes = [
        len(LeasedRecord(lease_id="0" * 32, ttl_s=600.0, signed=s).model_dump_json())
        for s in signed_records(n, key, seed=0)
    ]
    return sum(sizes) / n


def main() -> None:
    quiet_logs()
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200)
    args = ap.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server, central = start_server_process(root, n)
        proxy = FaultProxy(central.server.url).start()
        try:
            config = station_config(
                root,
                central,
                url=proxy.url,
                central={
                    "buffer_target": 50,
                    "lease_batch": 50,
                    "outbox_batch": 200,
                    "sync_interval_s": 0.5,
                    "renew_every_s": 60.0,
                    "heartbeat_every_s": 30.0,
                },
                printer={"options": {"hopper": n + 5, "timings_ms": FAST}},
            )
            cli(["--config", str(config), "blanks", "receive", str(n + 5), "--batch", "W"])
            cfg = load_config(config)
            station = Station.build(cfg)
            station.start()
            try:
                wait_for(
                    "every record printed and reported",
                    lambda: (c := db_counts(cfg.db_path))["used"] == n and c["outbox"] == 0,
                    timeout=600,
                    every=0.1,
                )
            finally:
                station.stop()
        finally:
            proxy.stop()
            stop_server_process(server)
        raw = json_bytes_per_record(central.key_dir, min(n, 50))
    by_path = proxy.bytes_by_path()
    total = sum(up + down for _, up, down in by_path.values())
    leases = by_path.get("/v1/leases", (0, 0, 0))
    results = by_path.get("/v1/results", (0, 0, 0))
    figures = {
        "bench": "wire",
        "records": n,
        "bytes_per_record": round(total / n),
        "lease_bytes_per_record": round((leases[1] + leases[2]) / n),
        "result_bytes_per_record": round((results[1] + results[2]) / n),
        "uncompressed_record_json_bytes": round(raw),
        "requests": {path: count for path, (count, _, _) in sorted(by_path.items())},
    }
    print(
        f"{figures['bytes_per_record']} bytes on the wire per record "
        f"({figures['lease_bytes_per_record']} leasing it, "
        f"{figures['result_bytes_per_record']} reporting it)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
