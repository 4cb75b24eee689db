"""Property-based: schemathesis generates requests from docs/openapi.json (bounded
examples, valid and invalid bodies) against the live ASGI centre; no answer is a 5xx, and
every answer's status, content type and body are ones the document lists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from central.asgi_server import AsgiServer

DOC: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text()
)
schema = schemathesis.openapi.from_dict(DOC)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """The ASGI centre on SQLite, plain HTTP (the certificate check is the contract
    suite's; here the bodies are what varies)."""
    with AsgiServer(tmp_path / "c.db", key_dir=tmp_path / "keys") as server:
        yield server.url


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_generated_requests_stay_within_the_document(case: Any, url: str) -> None:
    """Whatever schemathesis sends, the centre answers within the document, never 5xx."""
    case.call_and_validate(base_url=url, checks=CHECKS)
