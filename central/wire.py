"""What every centre server does with a request, whatever carries it: routes, body limits,
validation into the wire models, the certificate check, gzip of large answers."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ValidationError

from central import fleet, metrics, openapi
from central.fleet_cache import FleetCache
from central.http_error import HTTPError as HTTPError  # the servers catch wire.HTTPError
from central.queue_db import QueueDB
from station.link import protocol as p
from station.records import first_error

log = structlog.get_logger(__name__)
M = TypeVar("M", bound=BaseModel)
#: An endpoint: the body's model (None: no body) and what answers the validated body.
Route = tuple[type[BaseModel] | None, Callable[[Any], BaseModel]]

#: Largest request body, as sent and after gzip is undone (1,000 results are ~0.5 MB).
MAX_BODY = 4 * 1024 * 1024
#: Answers at least this long are gzip-compressed when the client accepts gzip.
GZIP_MIN = 1024
GZIP_FAST = 1 << 20


def routes(
    db: QueueDB, lease_ttl_s: float, grant_key: tuple[str, Ed25519PrivateKey]
) -> dict[tuple[str, str], Route]:
    """(method, path) → route, for every endpoint of the protocol."""
    cache = FleetCache(db)
    return {
        ("POST", "/v1/leases"): (p.LeaseRequest, lambda r: db.lease(r, lease_ttl_s, grant_key)),
        ("POST", "/v1/leases/renew"): (p.RenewRequest, lambda r: db.renew(r, lease_ttl_s)),
        ("POST", "/v1/leases/release"): (p.ReleaseRequest, db.release),
        ("POST", "/v1/results"): (p.ResultsRequest, db.results),
        ("POST", "/v1/heartbeat"): (p.Heartbeat, db.heartbeat),
        ("GET", "/v1/summary"): (None, lambda _r: db.summary()),
        ("GET", "/v1/openapi.json"): (None, lambda _r: openapi.answer()),
        ("GET", "/metrics"): (None, lambda _r: cache.metrics()),
        # The fleet pages take a query string and /fleet/<station id> (see resolve).
        ("GET", "/fleet"): (None, lambda query: fleet.fleet_page(cache, query)),
        ("GET", "/fleet/"): (None, lambda target: fleet.station_page(cache, *target)),
    }


def resolve(routes: dict[tuple[str, str], Route], method: str, target: str) -> Route | None:
    """The route of a request target (path and query): the protocol's paths exactly
    (a query string is refused), the fleet pages with their query, /fleet/<station>."""
    path, _, query = target.partition("?")
    if method == "GET" and path == "/fleet":
        _model, page = routes[(method, path)]
        return None, lambda _r: page(query)
    if method == "GET" and path.startswith("/fleet/") and len(path) > len("/fleet/"):
        _model, station = routes[(method, "/fleet/")]
        return None, lambda _r: station((path[len("/fleet/") :], query))
    if path == "/fleet/":
        return None
    return routes.get((method, target))


def serialise(answer: BaseModel) -> tuple[bytes, str]:
    """An answer's bytes and media type: JSON, or a text answer (``/metrics``) as is."""
    if isinstance(answer, metrics.TextAnswer):
        return answer.body, answer.media_type
    return answer.model_dump_json().encode(), "application/json"


def not_found(method: str, path: str) -> HTTPError:
    return HTTPError(HTTPStatus.NOT_FOUND, f"no such endpoint {method} {path[:100]}")


def validate(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        where, rule = first_error(exc, "body")
        raise HTTPError(
            HTTPStatus.BAD_REQUEST, f"invalid {model.__name__}: field {where}: {rule}"
        ) from exc


def content_length(header: str | None) -> int:
    """The announced body length: 411 without one, 413 past :data:`MAX_BODY`."""
    try:
        length = int(header or "")
    except ValueError as exc:
        raise HTTPError(HTTPStatus.LENGTH_REQUIRED, "Content-Length required") from exc
    if length < 0 or length > MAX_BODY:
        raise HTTPError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"body of {length} bytes: at most {MAX_BODY} allowed",
        )
    return length


def decode_body(raw: bytes, content_encoding: str | None) -> Any:
    """The JSON of a body as sent (gzip or identity)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        raw = gunzip(raw)
    elif encoding != "identity":
        raise HTTPError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"Content-Encoding {encoding[:40]!r}: only gzip is accepted",
        )
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise HTTPError(HTTPStatus.BAD_REQUEST, "invalid JSON: nested too deep") from exc


def gunzip(raw: bytes) -> bytes:
    """Undo gzip, never producing more than :data:`MAX_BODY` bytes (413 beyond)."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(raw, MAX_BODY + 1)
    except zlib.error as exc:
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"invalid gzip body: {exc}") from exc
    if len(out) > MAX_BODY or inflater.unconsumed_tail:
        raise HTTPError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"gzip body expands past the {MAX_BODY} bytes allowed",
        )
    if not inflater.eof:
        raise HTTPError(HTTPStatus.BAD_REQUEST, "invalid gzip body: truncated")
    return out


def accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def encode_answer(
    payload: dict[str, str] | bytes, accept_encoding: str
) -> tuple[bytes, str | None]:
    """The answer's bytes and its Content-Encoding (gzip when large and accepted)."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if len(data) >= GZIP_MIN and accepts_gzip(accept_encoding):
        # Level 1 past a megabyte (/metrics of 5,000 stations is 7.5 MB: 0.6 s at level 6,
        # 0.3 s at 1, for 15 % more bytes; bench/fleet.py).
        level = 6 if len(data) < GZIP_FAST else 1
        return gzip.compress(data, compresslevel=level), "gzip"
    return data, None


def check_station(db: QueueDB, req: BaseModel, names: frozenset[str] | None, endpoint: str) -> None:
    """Under mutual TLS (``names``: the client certificate's) the request's station id
    must be one of the names; anything else is refused 403 and written to the audit."""
    claimed = getattr(req, "station_id", None)
    if names is None or not isinstance(claimed, str) or claimed in names:
        return
    peer = ",".join(sorted(names))[:200] or "(no name)"
    db.refuse(
        station_id=claimed,
        endpoint=endpoint[:100],
        peer=peer,
        reason=f"client certificate names {peer}, not station {claimed!r}",
    )
    log.warning("central.station_mismatch", claimed=claimed[:64], peer=peer)
    raise HTTPError(
        HTTPStatus.FORBIDDEN, f"the client certificate does not name station {claimed[:64]!r}"
    )
