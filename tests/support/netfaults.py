"""A fault-injecting TCP proxy on loopback, between a station and the centre.

    with FaultProxy(server.url) as proxy:       # station's central.url = proxy.url
        proxy.set_mode(Mode.LOST)               # new connections get this fault
        proxy.set_mode(Mode.LOST, only="/v1/leases")  # only requests to this path
        ...
        proxy.set_mode(Mode.PASS)

Modes (each applies to connections accepted while it is set):

* ``pass``      bytes forwarded both ways.
* ``refuse``    the connection is reset at once (RST), nothing reaches the server (with
  ``only``, the request is read first to learn its path, then reset).
* ``blackhole`` the request is read and never answered: the client times out.
* ``reset``     the request reaches the server, half its answer reaches the client, then RST.
* ``503``       the proxy answers ``HTTP 503`` itself; the server never sees the request.
* ``trickle``   the answer is forwarded ``trickle_bytes`` every ``trickle_every_s``.
* ``lost``      the server answers in full (it committed), the client gets nothing but RST.

The reference server speaks HTTP/1.0 (one request per connection), so every connection is
one exchange; :attr:`FaultProxy.exchanges` keeps its path, mode and bytes each way (what
actually crossed the wire to the client). :meth:`stop` closes every socket and joins
every thread it started (each connection ends within ``TICK`` of it).
"""

from __future__ import annotations

import contextlib
import enum
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlparse

CHUNK = 64 * 1024
TICK = 0.05  # how often blocked loops look at the stop flag
SEND_TIMEOUT_S = 10.0


class Mode(enum.StrEnum):
    PASS = "pass"
    REFUSE = "refuse"
    BLACKHOLE = "blackhole"
    RESET = "reset"
    HTTP_503 = "503"
    TRICKLE = "trickle"
    LOST = "lost"


@dataclass
class Exchange:
    mode: Mode
    at: float = field(default_factory=time.monotonic)  # when the connection was accepted
    path: str = ""  # request path ("" when the proxy did not read the request)
    up: int = 0  # request bytes forwarded to the server
    down: int = 0  # response bytes delivered to the client
    done: bool = False


def _rst(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0) rather than an orderly FIN."""
    with contextlib.suppress(OSError):  # already gone
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _request_path(head: bytes) -> str:
    line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace").split(" ")
    return line[1] if len(line) >= 2 else ""


class FaultProxy:
    def __init__(
        self, target_url: str, *, trickle_bytes: int = 2048, trickle_every_s: float = 0.05
    ) -> None:
        parsed = urlparse(target_url)
        self.target = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.trickle_bytes = trickle_bytes
        self.trickle_every_s = trickle_every_s
        self._mode = Mode.PASS
        self._only: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(TICK)
        self._threads: list[threading.Thread] = []
        self.exchanges: list[Exchange] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="netfaults-accept")

    # -- control -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def mode(self) -> Mode:
        with self._lock:
            return self._mode

    def set_mode(self, mode: Mode | str, *, only: str | None = None) -> None:
        """The fault for connections accepted from now on; with ``only``, requests to other
        paths pass untouched."""
        with self._lock:
            self._mode, self._only = Mode(mode), only

    def start(self) -> FaultProxy:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Close the listener and every open connection; join every thread."""
        self._stop.set()
        if self._acceptor.is_alive():
            self._acceptor.join()
        self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def count(self, mode: Mode, path: str | None = None) -> int:
        """Connections handled in ``mode`` (only those to ``path``, if given)."""
        with self._lock:
            return sum(
                1 for x in self.exchanges if x.mode == mode and (path is None or x.path == path)
            )

    def bytes_by_path(self) -> dict[str, tuple[int, int, int]]:
        """path → (exchanges, request bytes, response bytes), over finished exchanges."""
        out: dict[str, tuple[int, int, int]] = {}
        with self._lock:
            for x in self.exchanges:
                if x.done:
                    n, up, down = out.get(x.path, (0, 0, 0))
                    out[x.path] = (n + 1, up + x.up, down + x.down)
        return out

    # -- machinery ---------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                ex = Exchange(self._mode)
                self.exchanges.append(ex)
                t = threading.Thread(
                    target=self._serve, args=(client, ex, self._only), name=f"netfaults-{ex.mode}"
                )
                self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def _serve(self, client: socket.socket, ex: Exchange, only: str | None) -> None:
        client.settimeout(SEND_TIMEOUT_S)  # a client that stops reading cannot hold us
        upstream: socket.socket | None = None
        reset = False
        try:
            if ex.mode == Mode.REFUSE and only is None:
                reset = True
                return
            head, body = self._read_request(client)
            ex.path = _request_path(head)
            if only is not None and ex.path != only:
                ex.mode = Mode.PASS
            if ex.mode == Mode.REFUSE:
                reset = True
                return
            if ex.mode == Mode.BLACKHOLE:
                self._drain_until_closed(client)
                return
            if ex.mode == Mode.HTTP_503:
                payload = b'{"error": "injected by the fault proxy"}'
                client.sendall(
                    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: "
                    b"application/json\r\nContent-Length: "
                    + str(len(payload)).encode()
                    + b"\r\n\r\n"
                    + payload
                )
                ex.down = len(payload)
                return
            try:
                upstream = socket.create_connection(self.target, timeout=SEND_TIMEOUT_S)
            except OSError:
                reset = True  # the server itself is down: the client sees a reset
                return
            upstream.sendall(head + body)
            ex.up = len(head) + len(body)
            reset = self._answer(client, upstream, ex)
        except OSError:
            reset = True
        finally:
            ex.done = True
            if upstream is not None:
                upstream.close()
            if reset:
                _rst(client)
            else:
                client.close()

    def _recv(self, sock: socket.socket) -> bytes | None:
        """Up to CHUNK bytes; b"" at EOF; None when stopping."""
        while not self._stop.is_set():
            ready, _, _ = select.select([sock], [], [], TICK)
            if ready:
                return sock.recv(CHUNK)
        return None

    def _read_request(self, client: socket.socket) -> tuple[bytes, bytes]:
        """The request head and its body (by Content-Length)."""
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = self._recv(client)
            if not data:
                raise ConnectionAbortedError("client left before its request was complete")
            buf += data
        head, _, body = buf.partition(b"\r\n\r\n")
        head += b"\r\n\r\n"
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip() or 0)
        while len(body) < length:
            data = self._recv(client)
            if not data:
                raise ConnectionAbortedError("client left mid-body")
            body += data
        return head, body

    def _drain_until_closed(self, client: socket.socket) -> None:
        while (data := self._recv(client)) is not None and data:
            pass

    def _answer(self, client: socket.socket, upstream: socket.socket, ex: Exchange) -> bool:
        """Deliver the server's answer per mode; True when the client must get a reset."""
        if ex.mode in (Mode.PASS, Mode.TRICKLE):
            while (data := self._recv(upstream)) is not None and data:
                if ex.mode == Mode.PASS:
                    client.sendall(data)
                    ex.down += len(data)
                    continue
                for i in range(0, len(data), self.trickle_bytes):
                    if self._stop.wait(self.trickle_every_s):
                        return True
                    piece = data[i : i + self.trickle_bytes]
                    client.sendall(piece)
                    ex.down += len(piece)
            return self._stop.is_set()
        answer = b""
        while (data := self._recv(upstream)) is not None and data:
            answer += data  # the server has committed by the time it answers
        if ex.mode == Mode.RESET and answer:
            half = answer[: max(1, len(answer) // 2)]
            client.sendall(half)
            ex.down = len(half)
            time.sleep(0.01)  # let the half reach the client before the reset
        return True  # RESET and LOST both end with a reset
