"""The central queue protocol as an OpenAPI 3.1 document, generated from the pydantic
models of :mod:`station.link.protocol` (the ones the client and the server use)."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any

from pydantic import BaseModel, RootModel
from pydantic.json_schema import models_json_schema

from station.link import protocol as p

#: The protocol's version (bump on an incompatible change to the wire models).
PROTOCOL_VERSION = "1.0.0"
_REF = "#/components/schemas/{model}"

_INFO = """\
The queue a KTP-el print station leases print-ready records from and reports card
results to. Every request and answer body is JSON; unknown fields are refused (400).

Transport: HTTPS, with mutual TLS at a real centre. A client whose certificate is not
signed by the centre's client CA is refused during the TLS handshake (no HTTP answer).
A request's `station_id` must be a name in the client certificate (its subject common
name, or a DNS or URI subject alternative name); otherwise 403, written to the centre's
audit. Requests may be gzip-compressed (`Content-Encoding: gzip`); answers of 1,024 bytes
or more are gzip-compressed for clients sending `Accept-Encoding: gzip`.

Errors: every non-2xx answer is an `ErrorBody` (`{"error": "..."}`) naming what is wrong
(the field, the size, the station id), never personal data. A path or method not listed
here answers 404. Any endpoint may answer 503 (the server is stopping, or its database is
unavailable): nothing changed, ask again later.
"""

_POST_ERRORS: dict[str, str] = {
    "400": "The body is not JSON, not valid gzip, or not the request model; the error "
    "names the model and the first bad field (`invalid LeaseRequest: field max: ...`).",
    "403": "Under mutual TLS: the client certificate does not name the request's "
    "`station_id` (`the client certificate does not name station 't-02'`). "
    "Nothing changed; the attempt is in the centre's audit.",
    "411": "No `Content-Length` header (`Content-Length required`).",
    "413": "The body is larger than 4 MiB as sent, or expands past 4 MiB after gzip.",
    "415": "A `Content-Encoding` other than gzip or identity.",
    "503": "The server is stopping or its database is unavailable; nothing changed.",
}

#: (method, path, operationId, request model, answer model, summary, description)
_Op = tuple[str, str, str, type[BaseModel] | None, type[BaseModel], str, str]
_OPERATIONS: tuple[_Op, ...] = (
    (
        "post",
        "/v1/leases",
        "lease",
        p.LeaseRequest,
        p.LeaseResponse,
        "Lease up to `max` ready records",
        "Grants up to `max` records in queue order (urgent first, then by kind, then earliest "
        "enrolment), each with a lease id, its ttl and the centre's signed grant binding the "
        "record to this station and lease. Records whose lease expired stay *held* for their "
        "station (which may have printed the card without having said so) until it "
        "heartbeats with an empty outbox or the hold time passes; meanwhile only that "
        "station may lease them again.\n\n"
        "Idempotency: not idempotent. A repeated request leases further records; an answer "
        "lost on the way leaves its records leased to this station until their ttl passes, "
        "then held for it, and a later lease by the same station hands them out again "
        "under new lease ids.",
    ),
    (
        "post",
        "/v1/leases/renew",
        "renew",
        p.RenewRequest,
        p.RenewResponse,
        "Renew leases this station holds",
        "Each lease id is answered either in `renewed` (lease id → seconds it now lasts) or "
        "in `lost`. An expired lease nobody else took is revived; a lease is never "
        "shortened (an offline batch's leases last days).\n\n"
        "Idempotency: idempotent; renewing twice only extends the lease again. A lease that "
        "is no longer this station's (released, expired and leased to another station, "
        "its record printed or failed, another station's lease, an unknown id) is listed in "
        "`lost`, never refused with an error: the station must not print it.",
    ),
    (
        "post",
        "/v1/leases/release",
        "release",
        p.ReleaseRequest,
        p.ReleaseResponse,
        "Give leases back",
        "The records of the listed leases become ready for any station at once. `released` "
        "lists the lease ids that were this station's and are now closed.\n\n"
        "Idempotency: idempotent; releasing a lease again, or one not held by this station, "
        "leaves it out of `released` and changes nothing.",
    ),
    (
        "post",
        "/v1/results",
        "results",
        p.ResultsRequest,
        p.ResultsResponse,
        "Report card results",
        "Each result is acknowledged in `acked` or, when the centre will never take it, "
        "named in `refused` with the reason (the lease was never granted, was granted for "
        "another record or to another station; a `failed` or `deferred` result contradicting "
        "a printed card; a result id already sent by another station). Refusals are written "
        "to the centre's audit; a station settles a refused result and never resends it. A "
        "`printed` result counts even when its lease expired meanwhile: the card exists.\n\n"
        "Idempotency: by `result_id`. A result id this station already reported is "
        "acknowledged again in `acked` and never counted twice (the summary's "
        "`duplicate_results` counts such deliveries); send the same batch again after a "
        "lost answer.",
    ),
    (
        "post",
        "/v1/heartbeat",
        "heartbeat",
        p.Heartbeat,
        p.HeartbeatAck,
        "The station's state",
        "Stores the station's latest state (printer, blanks, buffer, outbox...). A heartbeat "
        "with an empty outbox frees the records held for this station after their leases "
        "expired (every result it has is in: those cards were not printed).\n\n"
        "Idempotency: idempotent; the latest heartbeat wins.",
    ),
    (
        "get",
        "/v1/summary",
        "summary",
        None,
        p.ServerSummary,
        "Queue counters (operators and tests)",
        "Counts of records by state, results accepted (each result id once), duplicate "
        "deliveries, and `printed_twice`: record ids with more than one printed result, "
        "which must be empty.\n\nIdempotency: read only.",
    ),
)


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorBody")}}},
    }


def _operation(op: _Op) -> dict[str, Any]:
    _method, _path, op_id, request, answer, summary, description = op
    responses: dict[str, Any] = {
        "200": {
            "description": f"A `{answer.__name__}`.",
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=answer.__name__)}}
            },
        },
    }
    if request is not None:
        responses |= {status: _error(text) for status, text in _POST_ERRORS.items()}
    else:
        responses["503"] = _error(_POST_ERRORS["503"])
    out: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "description": description,
        "responses": responses,
    }
    if request is not None:
        out["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=request.__name__)}}
            },
        }
    return out


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the protocol (the same object on every call: do not
    change it)."""
    models: list[type[BaseModel]] = [p.ErrorBody]
    for op in _OPERATIONS:
        models += [m for m in (op[3], op[4]) if m is not None]
    _, schemas = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    paths: dict[str, Any] = {}
    for op in _OPERATIONS:
        paths.setdefault(op[1], {})[op[0]] = _operation(op)
    paths["/v1/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "description": "The contract the server speaks, as committed in docs/openapi.json.",
            "responses": {
                "200": {
                    "description": "An OpenAPI 3.1 document.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "503": _error(_POST_ERRORS["503"]),
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "KTP-el central print queue",
            "version": PROTOCOL_VERSION,
            "description": _INFO,
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "responses": {
                "NotFound": _error(
                    "No such endpoint: the method and path are named (`no such endpoint GET /x`)."
                )
            },
            "securitySchemes": {
                "stationCertificate": {
                    "type": "mutualTLS",
                    "description": "A client certificate signed by the centre's client CA, "
                    "naming the station id.",
                }
            },
        },
        "security": [{"stationCertificate": []}],
    }


class OpenApiAnswer(RootModel[dict[str, Any]]):
    """The document as an answer body (``GET /v1/openapi.json``)."""


@functools.cache
def answer() -> OpenApiAnswer:
    return OpenApiAnswer(document())


def render() -> str:
    """The document as committed in docs/openapi.json."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
