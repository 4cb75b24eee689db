"""The reference central queue server: real HTTP (stdlib) over its own SQLite database."""

from __future__ import annotations

import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog

from central import wire
from central.engines import default_key_dir, open_queue
from central.queue_db import DEFAULT_LEASE_HOLD_S
from central.seed import load_or_create_key
from central.tls import HANDSHAKE_TIMEOUT_S, ServerTls, certificate_names
from central.wire import GZIP_MIN, MAX_BODY
from station.link import protocol as p
from station.records import SignedRecord

log = structlog.get_logger(__name__)
__all__ = ["GZIP_MIN", "MAX_BODY", "CentralServer"]


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.0"  # one request per connection: no idle handler threads
    timeout = 30.0  # a client that stops sending mid-request does not hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("central.http", line=format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        central = self.server.central
        if not central._enter():
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "server is stopping"})
            return
        try:
            forced = central._take_failure()
            if forced is not None:
                self._send(HTTPStatus(forced), {"error": "injected failure"})
                return
            route = wire.resolve(central._routes, self.command, self.path)
            if route is None:
                raise wire.not_found(self.command, self.path)
            model, handle = route
            req = None if model is None else wire.validate(model, self._read_json())
            if req is not None:
                wire.check_station(central.db, req, self._peer_names(), self.path)
            self._send(HTTPStatus.OK, *wire.serialise(handle(req)))
        except wire.HTTPError as exc:
            self._send(exc.status, {"error": exc.message})
        except sqlite3.Error as exc:
            log.warning("central.db_error", error=type(exc).__name__)
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "database unavailable"})
        finally:
            central._leave()

    def _peer_names(self) -> frozenset[str] | None:
        """Names in the verified client certificate; None without one (plain HTTP, or
        HTTPS that does not ask for client certificates)."""
        conn = self.connection
        if not isinstance(conn, ssl.SSLSocket):
            return None
        cert = conn.getpeercert()
        return certificate_names(cert) if cert else None

    def _read_json(self) -> Any:
        length = wire.content_length(self.headers.get("Content-Length"))
        return wire.decode_body(self.rfile.read(length), self.headers.get("Content-Encoding"))

    def _send(
        self,
        status: HTTPStatus,
        payload: dict[str, str] | bytes,
        media_type: str = "application/json",
    ) -> None:
        data, encoding = wire.encode_answer(payload, self.headers.get("Accept-Encoding", ""))
        try:
            self.send_response(status)
            self.send_header("Content-Type", media_type)
            if encoding is not None:
                self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (OSError, ssl.SSLError):
            # The client hung up; whatever committed stays committed, it will ask again.
            log.debug("central.client_gone", path=self.path[:100], status=int(status))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, addr: tuple[str, int], central: CentralServer, tls: ssl.SSLContext | None
    ) -> None:
        self.central = central
        self.tls = tls
        super().__init__(addr, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs on the connection's thread: the TLS handshake first, when serving HTTPS."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        sock: socket.socket = request
        sock.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            tls_sock = self.tls.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            # No certificate, an untrusted one, a plain-HTTP client, a silent one: refused.
            log.info(
                "central.tls_refused",
                error=type(exc).__name__,
                reason=getattr(exc, "reason", None) or str(exc)[:120],
            )
            return
        try:
            super().finish_request(tls_sock, client_address)
            tls_sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            log.debug("central.tls_closed", error=type(exc).__name__)
        finally:
            tls_sock.close()


class CentralServer:
    """The reference queue server: ``start()``, ``url``, ``stop()`` (or ``with``).

    ``lease_ttl_s``: lease time granted and renewed. ``lease_hold_s``: how long an expired
    lease stays held for a station never heard from again (see ``queue_db``).
    """

    def __init__(
        self,
        db_path: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        lease_ttl_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        tls: ServerTls | None = None,
        lease_hold_s: float = DEFAULT_LEASE_HOLD_S,
        key_dir: Path | None = None,
    ) -> None:
        self.lease_ttl_s = lease_ttl_s
        # Grants are signed with the centre's key: ``key_dir``, by default ``keys/`` beside
        # the database (where ``station central seed`` keeps it).
        self._grant_key = load_or_create_key(key_dir or default_key_dir(db_path))
        self.scheme = "https" if tls is not None else "http"
        context = tls.context() if tls is not None else None
        self.db = open_queue(db_path, clock=clock, lease_hold_s=lease_hold_s)
        try:
            self._httpd = _HTTPServer((host, port), self, context)
        except OSError:
            self.db.close()
            raise
        self._thread: threading.Thread | None = None
        self._state = threading.Condition()
        self._inflight = 0
        self._stopping = False
        self._fail_left = 0
        self._fail_status = 503
        self._routes = wire.routes(self.db, lease_ttl_s, self._grant_key)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        host_s = host.decode() if isinstance(host, bytes) else host
        return f"{self.scheme}://{host_s}:{port}"

    def start(self) -> CentralServer:
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"central-server:{self._httpd.server_address[1]}",
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, wait for requests in flight (up to ``timeout``), close the DB."""
        with self._state:
            if self._stopping:
                return
            self._stopping = True
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()
        with self._state:
            self._state.wait_for(lambda: self._inflight == 0, timeout=timeout)
        self.db.close()
        log.debug("central.stopped")

    def __enter__(self) -> CentralServer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def fail_next(self, n: int, status: int = 503) -> None:
        """The next ``n`` requests answer ``status`` without touching any state."""
        HTTPStatus(status)  # ValueError for a status that does not exist
        with self._state:
            self._fail_left, self._fail_status = n, status

    def summary(self) -> p.ServerSummary:
        return self.db.summary()

    def results_for(self, record_id: str) -> list[p.CardResult]:
        return self.db.results_for(record_id)

    def add_records(self, records: Iterable[SignedRecord]) -> list[str]:
        return self.db.add_records(records)

    def record_state(self, record_id: str) -> str | None:
        return self.db.record_state(record_id)

    def _enter(self) -> bool:
        with self._state:
            if self._stopping:
                return False
            self._inflight += 1
            return True

    def _leave(self) -> None:
        with self._state:
            self._inflight -= 1
            self._state.notify_all()

    def _take_failure(self) -> int | None:
        with self._state:
            if self._fail_left <= 0:
                return None
            self._fail_left -= 1
            return self._fail_status
