"""Chip personalisation scripts: the step format (runner to come with the PC/SC work)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ChipStep(BaseModel):
    """One step of a personalisation script (hex APDU with ``{name}`` placeholders)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: Literal["card", "sam"] = "card"
    apdu: str = Field(pattern=r"^([0-9A-Fa-f]{2}|\{[a-z_][a-z0-9_]*\})+$")
    expect_sw: list[str] = Field(default_factory=lambda: ["9000"])
    expect_data: str | None = None
    expect_sha256: str | None = None
    capture: str | None = None
