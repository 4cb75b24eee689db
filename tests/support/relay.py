"""An HTTP relay on loopback that forwards to the centre and rewrites its lease answers.

    with LeaseRewriter(server.url, rewrite) as relay:   # station's central.url = relay.url
        ...

``rewrite(item)`` is called on every item of every ``/v1/leases`` answer (a dict, changed
in place); the answer goes back as JSON that may carry ``Infinity``/``NaN`` tokens, as a
broken or hostile centre might send. Everything else is relayed unchanged.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx

Rewrite = Callable[[dict[str, Any]], None]


class LeaseRewriter:
    def __init__(self, target: str, rewrite: Rewrite) -> None:
        self.target = target.rstrip("/")
        self.rewrite = rewrite
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                answer = httpx.post(
                    relay.target + self.path,
                    content=body,
                    timeout=10.0,
                    headers={"content-type": "application/json"},
                )
                data = answer.content
                if self.path == "/v1/leases" and answer.status_code == 200:
                    doc = json.loads(data)
                    for item in doc.get("records", []):
                        relay.rewrite(item)
                    data = json.dumps(doc).encode()
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="relay")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LeaseRewriter:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
