"""The ASGI centre under uvicorn: `station central serve --workers N` serves mutual TLS
from N processes with the station bound to its certificate, refuses clients without one
at the handshake, and stops cleanly on SIGTERM."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from central.asgi_server import AsgiServer
from central.tls import ServerTls
from station.link.client import TlsSettings
from tests.support.pki import Pki, make_pki
from tests.support.serve import SERVE, serve_cli


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def serving(tmp_path: Path, pki: Pki) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`station central serve --workers 2` behind mutual TLS; its process and URL."""
    argv = [
        "--db",
        str(tmp_path / "c.db"),
        "--port",
        "0",
        "--workers",
        "2",
        "--tls-cert",
        str(pki.server_cert),
        "--tls-key",
        str(pki.server_key),
        "--client-ca",
        str(pki.ca),
    ]
    with serve_cli(argv) as (proc, url):
        assert url.startswith("https://127.0.0.1:"), url
        yield proc, url


def workers(pid: int) -> list[str]:
    """The worker processes of ``pid`` (spawned; multiprocessing's resource tracker aside)."""
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [k for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]


def test_workers_serve_mutual_tls_bound_to_the_certificate(
    serving: tuple[subprocess.Popen[str], str], pki: Pki
) -> None:
    """Two worker processes answer; t-01's certificate heartbeats as t-01 and is refused
    403 as t-02; SIGTERM stops them all with status 0."""
    proc, url = serving
    ctx = TlsSettings(pki.ca, pki.client_cert, pki.client_key).context()
    beat = {
        "station_id": "t-01",
        "version": "t",
        "printer_state": "ready",
        "blanks": 1,
        "buffer": 0,
        "outbox": 0,
    }
    with httpx.Client(base_url=url, verify=ctx, timeout=20.0) as http:
        for _ in range(20):
            assert http.post("/v1/heartbeat", json=beat).status_code == 200
        resp = http.post("/v1/heartbeat", json=beat | {"station_id": "t-02"})
        assert resp.status_code == 403
        assert resp.json()["error"] == "the client certificate does not name station 't-02'"
        assert http.get("/v1/summary").json()["heartbeats"] == 20  # every worker counted
    assert len(workers(proc.pid)) == 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_a_client_without_a_certificate_is_refused_at_the_handshake(
    tmp_path: Path, pki: Pki
) -> None:
    """Over real TLS, a client presenting no certificate gets no HTTP answer at all."""
    with AsgiServer(
        tmp_path / "c.db", tls=ServerTls(pki.server_cert, pki.server_key, pki.ca)
    ) as server:
        with pytest.raises(httpx.TransportError):
            httpx.get(
                server.url + "/v1/summary", verify=TlsSettings(pki.ca).context(), timeout=10.0
            )
        ctx = TlsSettings(pki.ca, pki.client_cert, pki.client_key).context()
        ack = httpx.post(
            server.url + "/v1/heartbeat",
            verify=ctx,
            timeout=10.0,
            json={
                "station_id": "t-01",
                "version": "t",
                "printer_state": "ready",
                "blanks": 1,
                "buffer": 0,
                "outbox": 0,
            },
        ).json()
        assert dt.datetime.fromisoformat(ack["server_time"]).tzinfo is not None


def test_serve_without_the_central_extra_names_it(tmp_path: Path) -> None:
    """Without fastapi/uvicorn installed, `serve` says which extra to install, status 2."""
    blocker = (
        "import sys\nclass Block:\n    def find_spec(self, name, path=None, target=None):"
        "\n        if name.split('.')[0] in ('fastapi', 'uvicorn'):"
        "\n            raise ImportError(name=name)\nsys.meta_path.insert(0, Block())\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            blocker + SERVE,
            "central",
            "serve",
            "--db",
            str(tmp_path / "c.db"),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "pip install -e '.[central]'" in proc.stderr
    assert "--server stdlib" in proc.stderr
