"""A light HTTP/1.1 client for load generators: one keep-alive connection on asyncio
streams, JSON in and gzip or JSON out, as a station's client asks; nothing else (no pool,
no redirects, no TLS).

httpx cost the bench ~5 ms of CPU a request on this 2-core machine, as much as the centre
it measured; this costs a fraction of that, so the load generator competes less with the
server for the cores.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from typing import Any
from urllib.parse import urlsplit

#: Reconnect before reusing a connection idle this long (the centre keeps one 5 s).
IDLE_S = 4.0


class HttpError(Exception):
    """The connection failed or timed out, or the answer was not HTTP."""


class Connection:
    """One keep-alive connection to ``url`` (http only); ``post`` one request at a time."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._used = 0.0

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        """POST ``body`` as JSON; (status, the answer's JSON)."""
        try:
            return await asyncio.wait_for(self._post(path, body), self.timeout)
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ValueError,
        ) as exc:
            self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc

    async def _post(self, path: str, body: Any) -> tuple[int, Any]:
        if self._streams is None or time.monotonic() - self._used > IDLE_S:
            self.close()
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        data = json.dumps(body).encode()
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Accept-Encoding: gzip\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        answer = await reader.readexactly(int(headers.get("content-length", "0")))
        self._used = time.monotonic()
        if headers.get("connection", "").lower() == "close":
            self.close()
        if headers.get("content-encoding") == "gzip":
            answer = gzip.decompress(answer)
        return status, json.loads(answer) if answer else None

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None
