"""structlog set-up. Personal data never reaches a log line: events carry record ids,
attempt ids and masked values only, and a last processor blanks any 16-digit run (a NIK)
that slipped into a value."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_NIK = re.compile(r"(?<!\d)\d{16}(?!\d)")


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str) and _NIK.search(value):
            event[key] = _NIK.sub("[NIK]", value)
    return event


def setup(level: str = "info", fmt: str = "json") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # sys.stderr looked up per logger, so a replaced stream (tests, re-exec) is honoured.
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )


def info_unless_configured() -> None:
    """Drop debug lines unless the program configured structlog already (its default
    prints every level: a centre's worker process, started unconfigured, printed a debug
    line for every lease and result it served)."""
    if not structlog.is_configured():
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
