"""The four-station kill test against the centre at scale: the queue on PostgreSQL, the
server on 4 uvicorn workers, and the centre itself killed -9 (supervisor and workers) and
restarted mid-run besides the stations. No record ever has two good cards, no result is
lost or counted twice."""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
import structlog

from central.queue_pg import PgQueueDB
from central.seed import PUB_FILE, load_or_create_key, signed_records
from station.link.protocol import ServerSummary
from tests.support.fleet import (
    LEASE_TTL_S,
    RECORDS,
    STATIONS,
    Node,
    assert_one_good_card_each,
    make_node,
    run_chaos,
)
from tests.support.postgres import running_cluster
from tests.support.serve import SERVE

WORKERS = 4


@dataclass
class _Server:
    """The centre as the stations and the chaos loop see it: a URL and its summary."""

    url: str

    def summary(self) -> ServerSummary:
        return ServerSummary.model_validate_json(
            httpx.get(self.url + "/v1/summary", timeout=10.0).content
        )


@dataclass
class PgCentre:
    """``station central serve --db postgresql://… --workers 4`` on a fixed port, in its
    own process group, so that a kill -9 takes the supervisor and its workers."""

    dsn: str
    key_dir: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    server: _Server = field(init=False)

    def __post_init__(self) -> None:
        self.server = _Server(f"http://127.0.0.1:{self.port}")

    @property
    def pub(self) -> Path:
        return self.key_dir / PUB_FILE

    def start(self) -> None:
        argv = [
            "central",
            "serve",
            "--db",
            self.dsn,
            "--port",
            str(self.port),
            "--workers",
            str(WORKERS),
            "--lease-ttl",
            str(LEASE_TTL_S),
            "--key-dir",
            str(self.key_dir),
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVE, *argv], stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + 60  # 4 workers importing FastAPI on a loaded machine
        while True:
            try:
                self.server.summary()
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(
                        f"the centre did not come up: {self.log.read_text()}"
                    ) from None
                time.sleep(0.1)

    def kill(self) -> None:
        """kill -9 of the supervisor and every worker (its process group)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[PgCentre]:
    with running_cluster() as cluster:
        dsn = cluster.new_database()
        key_id, key = load_or_create_key(tmp_path / "central-keys")
        seeder = PgQueueDB(dsn)
        seeder.add_records(signed_records(RECORDS, key, 0, key_id=key_id))
        seeder.close()
        c = PgCentre(dsn, tmp_path / "central-keys", _free_port(), tmp_path / "centre.log")
        c.start()
        try:
            yield c
        finally:
            if c.proc is not None:
                c.kill()


def leased_again(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT record_id FROM leases GROUP BY record_id HAVING COUNT(*) > 1"
        ).fetchall()
    return len(rows)


@pytest.mark.slow
def test_four_stations_four_workers_postgresql_centre_killed(
    tmp_path: Path, centre: PgCentre
) -> None:
    """Four daemons and a 4-worker centre on PostgreSQL, all killed -9 and restarted at
    random: every record comes out as exactly one good card, every result counted once."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    nodes: list[Node] = []
    try:
        nodes = [make_node(tmp_path, centre, i) for i in range(1, STATIONS + 1)]
        done = run_chaos(centre, nodes, random.Random(20261202), kill_centre=centre.restart)
    finally:
        codes = [node.terminate() for node in nodes if node.proc is not None]
    assert codes == [0] * STATIONS
    assert_one_good_card_each(centre.server.summary(), nodes)
    assert done.centre_kills >= 2
    assert done.long_kills >= 2
    assert leased_again(centre.dsn) >= 1, "no lease ever expired"
    assert centre.stop() == 0
    print(  # noqa: T201 - the run's figures, shown with pytest -s
        f"kills={done.kills} long={done.long_kills} centre_kills={done.centre_kills} "
        f"resolved={done.resolved} leased_again={leased_again(centre.dsn)}"
    )
