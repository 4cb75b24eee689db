"""``station demo``: the whole station on one machine, on config/demo.toml."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from station import i18n
from station.cli.status import cmd_status
from station.config import StationConfig, config_path, load_config
from station.i18n import _
from station.store import figures
from station.store import ledger as inventory
from station.store.db import connect, migrate, transaction

if TYPE_CHECKING:
    from central.server import CentralServer

DEMO_CONFIG = "config/demo.toml"


def add_demo_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help=_("run the demo: server + daemon + simulated printer"))
    p.add_argument("--cards", type=int, default=100)
    p.add_argument("--fresh", action="store_true", help=_("start from an empty var/demo"))
    p.add_argument("--verbose", action="store_true", help=_("show the daemon's log"))
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from central.seed import seed
    from central.server import CentralServer
    from station import logs

    logs.setup("warning", "console")  # the in-process server stays quiet; progress shows
    path = config_path(args.config or DEMO_CONFIG)
    cfg = load_config(path)
    i18n.set_language(i18n.choose(args.lang, cfg.language))
    root = cfg.state_dir.parent
    if args.fresh and root.exists():
        import shutil

        shutil.rmtree(root)
    central_dir = root / "central"
    central_dir.mkdir(parents=True, exist_ok=True)
    url = urlparse(cfg.central.url)
    server = CentralServer(
        central_dir / "queue.db",
        host=url.hostname or "127.0.0.1",
        port=url.port or 8765,
        lease_ttl_s=600,
    )
    seed(central_dir / "queue.db", args.cards, seed=1, key_dir=central_dir / "keys")
    _receive(cfg, args.cards + 20)
    server.start()
    print(
        _("reference server on {url}, {count} records seeded").format(
            url=server.url, count=args.cards
        )
    )
    env = dict(os.environ, STATION_CONFIG=str(path))
    daemon = subprocess.Popen(
        [sys.executable, "-m", "station.cli.main", "run"],
        env=env,
        stderr=subprocess.DEVNULL if not args.verbose else None,
    )
    try:
        _progress(server, daemon, args.cards)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        server.stop()
    print()
    return cmd_status(argparse.Namespace(config=str(path), lang=i18n.language(), json=False))


def _receive(cfg: StationConfig, count: int) -> None:
    conn = connect(cfg.db_path)
    try:
        migrate(conn)
        have = transaction(conn, figures.ledger_totals)["received"]
        if have == 0:
            transaction(conn, lambda c: inventory.receive(c, count, "DEMO-1"))
            print(_("received {count} blanks (batch {batch})").format(count=count, batch="DEMO-1"))
    finally:
        conn.close()


def _progress(server: CentralServer, daemon: subprocess.Popen[bytes], cards: int) -> None:
    start = time.monotonic()
    while daemon.poll() is None:
        s = server.summary()
        done = s.printed + s.failed
        bar = "#" * (30 * done // max(cards, 1))
        rate = s.printed / max(time.monotonic() - start, 1e-3) * 60
        print(
            f"\r[{bar:<30}] "
            + _("{printed}/{cards} printed, {failed} failed, {rate} cards/min").format(
                printed=s.printed, cards=cards, failed=s.failed, rate=f"{rate:5.0f}"
            ),
            end="",
            flush=True,
        )
        if done >= cards and s.ready == 0:
            return
        time.sleep(0.5)
    print(
        "\n" + _("the daemon exited with code {code}").format(code=daemon.returncode),
        file=sys.stderr,
    )
