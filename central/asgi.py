"""The reference centre as an ASGI application (FastAPI), served by uvicorn."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from central import wire
from central.engines import default_key_dir, open_queue
from central.queue_db import DEFAULT_LEASE_HOLD_S
from central.seed import load_or_create_key
from central.tls import certificate_names

log = structlog.get_logger(__name__)
#: The key in ``scope["state"]`` holding the client certificate's names (None: none).
PEER_NAMES = "ektp_peer_names"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class PeerCertProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, passing the verified client certificate's names on."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        cert = ssl_object.getpeercert() if ssl_object is not None else None
        # app_state is copied into every request's scope["state"] on this connection.
        self.app_state = {**self.app_state, PEER_NAMES: certificate_names(cert) if cert else None}


class Centre:
    """The queue behind the ASGI application: its database, grant key and routes, and
    failures injected for tests (:meth:`fail_next`)."""

    def __init__(
        self,
        db: Path | str,
        *,
        lease_ttl_s: float = 600.0,
        lease_hold_s: float = DEFAULT_LEASE_HOLD_S,
        key_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        grant_key = load_or_create_key(key_dir or default_key_dir(db))
        self.db = open_queue(db, clock=clock, lease_hold_s=lease_hold_s)
        self._routes = wire.routes(self.db, lease_ttl_s, grant_key)
        self._lock = threading.Lock()
        self._fail_left = 0
        self._fail_status = 503

    def fail_next(self, n: int, status: int = 503) -> None:
        """The next ``n`` requests answer ``status`` without touching any state."""
        HTTPStatus(status)  # ValueError for a status that does not exist
        with self._lock:
            self._fail_left, self._fail_status = n, status

    def _take_failure(self) -> int | None:
        with self._lock:
            if self._fail_left <= 0:
                return None
            self._fail_left -= 1
            return self._fail_status

    async def dispatch(self, request: Request) -> Response:
        accept = request.headers.get("accept-encoding", "")
        forced = self._take_failure()
        if forced is not None:
            return _json(HTTPStatus(forced), {"error": "injected failure"}, accept)
        try:
            method, path = request.method, request.url.path
            target = path + ("?" + request.url.query if request.url.query else "")
            route = wire.resolve(self._routes, method, target)
            if route is None:
                raise wire.not_found(method, path)
            model, handle = route
            req = None if model is None else wire.validate(model, await _read_json(request))
            names = request.scope.get("state", {}).get(PEER_NAMES)

            def answer() -> tuple[bytes, str]:
                if req is not None:
                    wire.check_station(self.db, req, names, path)
                return wire.serialise(handle(req))

            data, media_type = await run_in_threadpool(answer)
            return _json(HTTPStatus.OK, data, accept, media_type)
        except wire.HTTPError as exc:
            return _json(exc.status, {"error": exc.message}, accept)
        except sqlite3.Error as exc:
            log.warning("central.db_error", error=type(exc).__name__)
            return _json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "database unavailable"}, accept)

    def app(self) -> FastAPI:
        """The ASGI application; the database closes when it shuts down."""

        @asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            yield
            self.db.close()

        # The contract is docs/openapi.json (served by the routes), not FastAPI's own.
        application = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
        application.add_api_route(
            "/{path:path}", self.dispatch, methods=_METHODS, include_in_schema=False
        )
        return application


async def _read_json(request: Request) -> Any:
    length = wire.content_length(request.headers.get("content-length"))
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > length:
            raise wire.HTTPError(HTTPStatus.BAD_REQUEST, "body longer than its Content-Length")
    return wire.decode_body(bytes(raw), request.headers.get("content-encoding"))


def _json(
    status: HTTPStatus,
    payload: dict[str, str] | bytes,
    accept: str,
    media_type: str = "application/json",
) -> Response:
    data, encoding = wire.encode_answer(payload, accept)
    headers = {"Content-Encoding": encoding} if encoding is not None else None
    return Response(data, status_code=int(status), media_type=media_type, headers=headers)
