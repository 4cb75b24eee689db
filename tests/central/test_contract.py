"""The published contract: docs/openapi.json is what the protocol models generate, and
every answer of the running centre (each server, behind real mutual TLS on loopback),
success or error, is one the document lists, with a body its schema accepts."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from central import openapi
from central.asgi_server import AsgiServer
from central.seed import make_record
from central.server import MAX_BODY, CentralServer
from central.tls import ServerTls
from station.link.client import TlsSettings
from station.records import sign_record
from tests.support.pki import Pki, make_pki
from tests.support.queue import KEY, NOW

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
Centre = CentralServer | AsgiServer
DOC: dict[str, Any] = json.loads(COMMITTED.read_text(encoding="utf-8"))
_REGISTRY: Registry[Any] = Registry().with_resource(
    "urn:contract", Resource.from_contents(DOC, default_specification=DRAFT202012)
)
POSTS = ["/v1/leases", "/v1/leases/renew", "/v1/leases/release", "/v1/results", "/v1/heartbeat"]


def conforms(resp: httpx.Response) -> Any:
    """Assert ``resp`` is an answer the document lists for its method and path (404 for
    any other path), JSON its schema accepts; the body."""
    method, path = resp.request.method.lower(), resp.request.url.path
    op = DOC["paths"].get(path, {}).get(method)
    listed = (
        op["responses"] if op is not None else {"404": DOC["components"]["responses"]["NotFound"]}
    )
    assert str(resp.status_code) in listed, (
        f"{method.upper()} {path} answered {resp.status_code}, not in the document: {resp.text}"
    )
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    schema = listed[str(resp.status_code)]["content"]["application/json"]["schema"]
    ref = {"$ref": "urn:contract" + schema["$ref"]} if "$ref" in schema else schema
    errors = [e.message for e in Draft202012Validator(ref, registry=_REGISTRY).iter_errors(body)]
    assert errors == [], f"{method.upper()} {path} {resp.status_code}: {errors}"
    return body


def error(resp: httpx.Response, status: int) -> str:
    """The error text of an answer that must be ``status`` and within the document."""
    assert resp.status_code == status, resp.text
    return str(conforms(resp)["error"])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


#: Every server provided, started behind mutual TLS (same keyword arguments).
SERVERS: dict[str, Callable[..., Centre]] = {"stdlib": CentralServer, "asgi": AsgiServer}


@pytest.fixture(
    params=[(server, engine) for server in sorted(SERVERS) for engine in ("sqlite", "postgresql")],
    ids=lambda p: "-".join(p),
)
def centre(request: pytest.FixtureRequest, tmp_path: Path, pki: Pki) -> Iterator[Centre]:
    """A centre with three ready records behind mutual TLS, for each server and each
    storage engine provided."""
    server, engine = request.param
    db = (
        request.getfixturevalue("pg").new_database()
        if engine == "postgresql"
        else tmp_path / "c.db"
    )
    s = SERVERS[server](
        db,
        lease_ttl_s=60.0,
        key_dir=tmp_path / "keys",
        tls=ServerTls(pki.server_cert, pki.server_key, pki.ca),
    )
    s.db.add_records(
        sign_record(make_record(i, seed=3, now=NOW), KEY, "central-1") for i in range(1, 4)
    )
    with s:
        yield s


@pytest.fixture
def http(centre: Centre, pki: Pki) -> Iterator[httpx.Client]:
    """Station t-01 (its certificate names it)."""
    ctx = TlsSettings(
        ca_file=pki.ca, client_cert=pki.client_cert, client_key=pki.client_key
    ).context()
    with httpx.Client(base_url=centre.url, verify=ctx, timeout=20.0) as client:
        yield client


def beat(outbox: int = 0) -> dict[str, Any]:
    return {
        "station_id": "t-01",
        "version": "t",
        "printer_state": "ready",
        "blanks": 5,
        "buffer": 0,
        "outbox": outbox,
    }


def result(lease: dict[str, Any], outcome: str = "printed") -> dict[str, Any]:
    return {
        "result_id": uuid.uuid4().hex,
        "record_id": lease["signed"]["record"]["record_id"],
        "lease_id": lease["lease_id"],
        "outcome": outcome,
        "card_serial": None,
        "started_at": NOW.isoformat(),
        "finished_at": NOW.isoformat(),
        "reason": None,
    }


def valid_bodies(http: httpx.Client) -> dict[str, dict[str, Any]]:
    """One valid request body for every POST endpoint, on a lease of t-01's."""
    [lease] = conforms(http.post("/v1/leases", json={"station_id": "t-01", "max": 1}))["records"]
    return {
        "/v1/leases": {"station_id": "t-01", "max": 1},
        "/v1/leases/renew": {"station_id": "t-01", "lease_ids": [lease["lease_id"]]},
        "/v1/leases/release": {
            "station_id": "t-01",
            "lease_ids": [lease["lease_id"]],
            "reason": "other",
        },
        "/v1/results": {"station_id": "t-01", "results": [result(lease)]},
        "/v1/heartbeat": beat(),
    }


def test_committed_document_is_what_the_models_generate() -> None:
    """docs/openapi.json is a valid OpenAPI 3.1 document and exactly what
    ``python -m central.openapi`` prints from the protocol models."""
    validate_spec(DOC)
    assert COMMITTED.read_text(encoding="utf-8") == openapi.render(), (
        "docs/openapi.json is stale: python -m central.openapi > docs/openapi.json"
    )


def test_every_operation_documents_its_errors_and_idempotency() -> None:
    """Each operation names its idempotency rule, and each POST lists 400, 403, 413 and
    503 with the error body."""
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            if path != "/v1/openapi.json":
                assert "Idempotency:" in op["description"], (method, path)
            if method == "post":
                assert {"400", "403", "411", "413", "415", "503"} <= set(op["responses"])
    renew = DOC["paths"]["/v1/leases/renew"]["post"]["description"]
    assert "`lost`" in renew
    results = DOC["paths"]["/v1/results"]["post"]["description"]
    assert "never counted twice" in results


def test_served_document_is_the_committed_one(http: httpx.Client) -> None:
    """GET /v1/openapi.json answers the committed document."""
    assert conforms(http.get("/v1/openapi.json")) == DOC


def test_every_endpoint_answers_within_the_document(centre: Centre, http: httpx.Client) -> None:
    """A lease, renewal, result, release, heartbeat and summary each answer 200 with a body
    the document's schema accepts (gzip-compressed where large)."""
    bodies = valid_bodies(http)
    for path in [
        "/v1/leases/renew",
        "/v1/results",
        "/v1/leases",
        "/v1/leases/release",
        "/v1/heartbeat",
    ]:
        resp = http.post(path, json=bodies[path])
        assert resp.status_code == 200, resp.text
        conforms(resp)
    big = http.post("/v1/leases", json={"station_id": "t-01", "max": 5})
    assert big.headers["content-encoding"] == "gzip"
    assert len(conforms(big)["records"]) == 1  # one record left after the lease above
    assert conforms(http.get("/v1/summary"))["printed"] == 1


def test_bad_bodies_answer_400_naming_the_field(http: httpx.Client) -> None:
    """A body that is not the model, not JSON, or not gzip answers 400 naming the model and
    field, on every POST endpoint."""
    for path, body in valid_bodies(http).items():
        resp = http.post(path, json=body | {"bogus": 1})
        assert resp.status_code == 400, path
        assert "field bogus: Extra inputs are not permitted" in conforms(resp)["error"]
        resp = http.post(path, content=b"{not json", headers={"content-type": "application/json"})
        assert error(resp, 400).startswith("invalid JSON")
    resp = http.post("/v1/leases", json={"station_id": "t-01", "max": -1})
    assert conforms(resp)["error"].startswith("invalid LeaseRequest: field max:")
    resp = http.post("/v1/leases/renew", json={"station_id": "t-01", "lease_ids": ["a b"]})
    assert error(resp, 400).startswith("invalid RenewRequest: field lease_ids.0:")
    resp = http.post(
        "/v1/heartbeat", content=b"\x1f\x8bnot gzip", headers={"content-encoding": "gzip"}
    )
    assert "gzip" in error(resp, 400)


def test_another_stations_id_answers_403(http: httpx.Client) -> None:
    """With t-01's certificate, every POST as t-02 answers 403 naming the station."""
    bodies = valid_bodies(http)
    for path, body in bodies.items():
        resp = http.post(path, json=body | {"station_id": "t-02"})
        assert resp.status_code == 403, path
        assert conforms(resp)["error"] == "the client certificate does not name station 't-02'"


def test_oversized_unsized_and_unknown_encodings_are_refused(http: httpx.Client) -> None:
    """A body over the limit (sent or after gzip) answers 413, one without a length 411, an
    unknown Content-Encoding 415."""
    resp = http.post("/v1/results", content=b" " * (MAX_BODY + 1))
    assert "at most" in error(resp, 413)
    bomb = gzip.compress(b" " * (MAX_BODY + 10))
    resp = http.post("/v1/results", content=bomb, headers={"content-encoding": "gzip"})
    assert "expands past" in error(resp, 413)
    resp = http.post("/v1/heartbeat", content=iter([json.dumps(beat()).encode()]))
    assert error(resp, 411) == "Content-Length required"
    resp = http.post("/v1/heartbeat", json=beat(), headers={"content-encoding": "br"})
    assert "only gzip" in error(resp, 415)


def test_unknown_paths_and_methods_answer_404(http: httpx.Client) -> None:
    """A path or method the document does not list answers 404 naming both."""
    resp = http.get("/v1/nothing")
    assert resp.status_code == 404
    assert conforms(resp)["error"] == "no such endpoint GET /v1/nothing"
    assert http.get("/v1/leases").status_code == 404
    assert http.post("/v1/summary", json={}).status_code == 404


def test_idempotency_rules_hold_as_documented(centre: Centre, http: httpx.Client) -> None:
    """A repeated result id is acknowledged and never counted twice; a released lease
    renewed is listed as lost; releasing it again releases nothing."""
    [lease] = conforms(http.post("/v1/leases", json={"station_id": "t-01", "max": 1}))["records"]
    body: dict[str, Any] = {"station_id": "t-01", "results": [result(lease, "deferred")]}
    rid = body["results"][0]["result_id"]
    for _ in range(2):
        assert conforms(http.post("/v1/results", json=body)) == {"acked": [rid], "refused": {}}
    summary = conforms(http.get("/v1/summary"))
    assert (summary["results"], summary["duplicate_results"]) == (1, 1)
    [again] = conforms(http.post("/v1/leases", json={"station_id": "t-01", "max": 1}))["records"]
    release = {"station_id": "t-01", "lease_ids": [again["lease_id"]], "reason": "quota"}
    assert conforms(http.post("/v1/leases/release", json=release))["released"] == [
        again["lease_id"]
    ]
    assert conforms(http.post("/v1/leases/release", json=release))["released"] == []
    renew = {"station_id": "t-01", "lease_ids": [again["lease_id"]]}
    assert conforms(http.post("/v1/leases/renew", json=renew)) == {
        "renewed": {},
        "lost": [again["lease_id"]],
    }


def test_an_unavailable_centre_answers_503_within_the_document(
    centre: Centre, http: httpx.Client
) -> None:
    """A centre that cannot serve (forced) answers 503 with an error body on every
    endpoint, as documented."""
    paths = [*POSTS, "/v1/summary"]
    centre.fail_next(len(paths))
    for path in paths:
        resp = http.get(path) if path == "/v1/summary" else http.post(path, json=beat())
        assert resp.status_code == 503
        conforms(resp)
