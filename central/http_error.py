"""The error a centre server answers with: its HTTP status and one sentence, sent as
``{"error": "..."}`` (raised by the routes of ``wire`` and the fleet pages)."""

from __future__ import annotations

from http import HTTPStatus


class HTTPError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
