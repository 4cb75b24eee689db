"""Running the ASGI centre (:mod:`central.asgi`) under uvicorn."""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from central.asgi import Centre, PeerCertProtocol
from central.engines import default_key_dir, open_queue
from central.queue_db import DEFAULT_LEASE_HOLD_S
from central.seed import load_or_create_key
from central.tls import ServerTls
from station.logs import info_unless_configured

#: The environment variable carrying :class:`Settings` to worker processes (JSON).
SETTINGS_ENV = "STATION_CENTRAL_ASGI"


@dataclass(frozen=True)
class Settings:
    """What a worker needs to open the queue (paths as strings: JSON in the env)."""

    db: str
    lease_ttl_s: float = 600.0
    lease_hold_s: float = DEFAULT_LEASE_HOLD_S
    key_dir: str | None = None

    def centre(self, clock: Callable[[], float] = time.time) -> Centre:
        return Centre(
            self.db,
            lease_ttl_s=self.lease_ttl_s,
            lease_hold_s=self.lease_hold_s,
            clock=clock,
            key_dir=Path(self.key_dir) if self.key_dir else None,
        )


def worker_app() -> FastAPI:
    """The application of one worker process (uvicorn factory), from :data:`SETTINGS_ENV`."""
    info_unless_configured()  # as the parent (central/cli.py): no debug line a request
    return Settings(**json.loads(os.environ[SETTINGS_ENV])).centre().app()


def _tls_context(config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """The centre's own context (uvicorn's ``ssl_context_factory``, run in each worker)."""
    ca = config.ssl_ca_certs
    return ServerTls(
        Path(config.ssl_certfile or ""), Path(config.ssl_keyfile or ""), Path(ca) if ca else None
    ).context()


def _config(
    app: FastAPI | str, host: str, port: int, tls: ServerTls | None, workers: int = 1
) -> uvicorn.Config:
    tls_args: dict[str, Any] = {}
    if tls is not None:
        tls.context()  # a file that cannot be loaded fails here, named (TlsConfigError)
        tls_args = {
            "ssl_certfile": str(tls.cert),
            "ssl_keyfile": str(tls.key),
            "ssl_ca_certs": str(tls.client_ca) if tls.client_ca else None,
            "ssl_context_factory": _tls_context,
        }
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=PeerCertProtocol,
        lifespan="on",
        factory=isinstance(app, str),
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=5,
        server_header=False,
        **tls_args,
    )


def prepare(settings: Settings) -> None:
    """Migrate the database and create the grant key once, before any worker starts."""
    load_or_create_key(Path(settings.key_dir) if settings.key_dir else default_key_dir(settings.db))
    open_queue(settings.db).close()


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    tls: ServerTls | None,
    workers: int,
    on_listening: Callable[[str], None],
) -> None:
    """Serve until SIGTERM/SIGINT (uvicorn's own handlers); ``on_listening(url)`` once the
    socket is bound."""
    prepare(settings)
    if workers <= 1:
        config = _config(settings.centre().app(), host, port, tls)
    else:
        os.environ[SETTINGS_ENV] = json.dumps(asdict(settings))
        config = _config(f"{__name__}:worker_app", host, port, tls, workers)
    sock = config.bind_socket()
    sock.listen(config.backlog)  # connections wait in the backlog while workers start
    bound_host, bound_port = sock.getsockname()[:2]
    on_listening(f"{'https' if tls else 'http'}://{bound_host}:{bound_port}")
    if workers <= 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        Multiprocess(config, sockets=[sock]).run()


class AsgiServer:
    """The ASGI centre on a thread of this process: ``start()``, ``url``, ``stop()``."""

    def __init__(
        self,
        db_path: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        lease_ttl_s: float = 600.0,
        tls: ServerTls | None = None,
        lease_hold_s: float = DEFAULT_LEASE_HOLD_S,
        key_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings = Settings(
            str(db_path), lease_ttl_s, lease_hold_s, str(key_dir) if key_dir else None
        )
        self.centre = settings.centre(clock)
        self.db = self.centre.db
        self.fail_next = self.centre.fail_next
        self.scheme = "https" if tls is not None else "http"
        self._sock = socket.create_server((host, port))
        self._server = uvicorn.Server(_config(self.centre.app(), host, port, tls))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"{self.scheme}://{host}:{port}"

    def start(self, timeout: float = 10.0) -> AsgiServer:
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"central-asgi:{self._sock.getsockname()[1]}",
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the ASGI server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (requests in flight finish, up to ``timeout``), close the DB."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._sock.close()
        self.db.close()

    def __enter__(self) -> AsgiServer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
