"""Chip personalisation scripts: the step format and the runner that plays them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Literal, NamedTuple, NoReturn

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers import ktpel_layout as layout
from drivers.base import ChipChannel
from drivers.errors import N_, ChipError, ChipStatusError
from drivers.iso7816 import CLA_CHAINING, CommandApdu, transceive


class ChipStep(BaseModel):
    """One step of a personalisation script (hex APDU with ``{name}`` placeholders).

    Checked whole when the record is read, before any blank is fed: the SW patterns,
    expected data and (without placeholders) the APDU's encoding. The decoded forms are
    kept, so running a step decodes nothing but its placeholders.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: Literal["card", "sam"] = "card"
    apdu: str = Field(pattern=r"^([0-9A-Fa-f]{2}|\{[a-z_][a-z0-9_]*\})+$")
    expect_sw: list[Annotated[str, Field(pattern=r"^[0-9A-Fa-fxX]{4}$")]] = Field(
        default_factory=lambda: ["9000"], min_length=1
    )
    expect_data: str | None = Field(None, pattern=r"^([0-9A-Fa-f]{2})*$")
    expect_sha256: str | None = Field(None, pattern=r"^[0-9A-Fa-f]{64}$")
    capture: str | None = None

    @cached_property
    def decoded(self) -> DecodedStep:
        """The step's hex fields decoded (once; ValueError names what is malformed)."""
        fixed = None
        if "{" not in self.apdu:
            raw = bytes.fromhex(self.apdu)
            try:
                fixed = (CommandApdu.parse(raw), raw)
            except ValueError as exc:
                raise ValueError(f"malformed APDU ({exc})") from exc
        return DecodedStep(
            sw=tuple(_sw_mask(p) for p in self.expect_sw),
            fixed=fixed,
            data=None if self.expect_data is None else bytes.fromhex(self.expect_data),
            digest=None if self.expect_sha256 is None else bytes.fromhex(self.expect_sha256),
        )

    @model_validator(mode="after")
    def _decodes(self) -> ChipStep:
        _ = self.decoded
        return self

    def sw_expected(self, sw: int) -> bool:
        """Whether status word ``sw`` is one this step accepts."""
        for mask, value in self.decoded.sw:  # noqa: SIM110 (a loop: any() costs a generator)
            if sw & mask == value:
                return True
        return False

    def command(self, values: Mapping[str, bytes]) -> tuple[CommandApdu, bytes]:
        """The command with placeholders filled from ``values`` (KeyError: name missing)."""
        fixed = self.decoded.fixed
        if fixed is not None:
            return fixed
        text = _PLACEHOLDER.sub(lambda m: values[m.group(1)].hex(), self.apdu)
        raw = bytes.fromhex(text)
        return CommandApdu.parse(raw), raw

    def data_fault(self, data: bytes) -> str | None:
        """What is wrong with the response data against expect_data/_sha256, if anything."""
        decoded = self.decoded
        if decoded.data is not None and data != decoded.data:
            return "response data differs from expected"
        if decoded.digest is not None and hashlib.sha256(data).digest() != decoded.digest:
            return "response data digest differs"
        return None


class DecodedStep(NamedTuple):
    """A :class:`ChipStep`'s hex fields as bytes and numbers."""

    #: (mask, value) per expect_sw pattern: accepted when ``sw & mask == value``.
    sw: tuple[tuple[int, int], ...]
    #: The command and its encoding, when the APDU has no placeholders.
    fixed: tuple[CommandApdu, bytes] | None
    data: bytes | None
    digest: bytes | None


def _sw_mask(pattern: str) -> tuple[int, int]:
    """``"6Axx"`` → (0xFF00, 0x6A00): x stands for any nibble."""
    mask = int("".join("0" if c in "xX" else "F" for c in pattern), 16)
    return mask, int(pattern.replace("x", "0").replace("X", "0"), 16)


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


# -- the runner ------------------------------------------------------------------------

INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_UPDATE_BINARY = 0xD6
#: Largest READ BINARY of the read-back (short Le 00 = 256 bytes).
READ_CHUNK = 256


class ScriptError(ChipError):
    """The script itself is unusable (bad placeholder, malformed APDU, no SAM)."""

    action = N_("report the record as failed: its chip script cannot run")


def sw_matches(pattern: str, sw: int) -> bool:
    """Whether ``sw`` matches a 4-character pattern where ``x`` stands for any nibble."""
    mask, value = _sw_mask(pattern)
    return sw & mask == value


@dataclass(frozen=True)
class ScriptOutcome:
    """What a run did; ``values`` (captured bytes) stays out of the repr and logs."""

    steps_run: int
    bytes_written: int
    captured: tuple[str, ...]
    files_written: tuple[str, ...]
    values: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class _File:
    """Bytes written to one EF, and the SELECTs that reach it again."""

    selects: tuple[bytes, ...]
    writes: list[tuple[int, bytes]] = field(default_factory=list)  # (offset, data) in order


class ScriptRunner:
    """Runs personalisation steps on the card (and SAM), then verifies by reading back.

    SELECT by file id (``00 A4`` with P1 ``00``/``02``) is tracked as a chain of commands
    since the last SELECT of the MF; every UPDATE BINARY answered 9000 is remembered per
    chain, and :meth:`verify` replays each chain and compares READ BINARY answers.
    """

    def __init__(self, card: ChipChannel, sam: ChipChannel | None = None) -> None:
        self.card = card
        self.sam = sam
        self._files: dict[tuple[bytes, ...], _File] = {}
        self._selects: list[tuple[int, bytes]] = []  # (P1, SELECT APDU)
        self._file: _File | None = None  # where UPDATE BINARY writes now (None: look up)

    def run(self, steps: list[ChipStep]) -> ScriptOutcome:
        """Run ``steps`` in order; the first unexpected answer raises ChipStatusError."""
        values: dict[str, bytes] = {}
        written = 0
        card = self.card
        for i, step in enumerate(steps):
            channel = card if step.target == "card" else self._sam(i)
            cmd, raw = self._command(i, step, values)
            if cmd.ins == INS_UPDATE_BINARY and (cmd.p1 & 0x80 or cmd.cla & CLA_CHAINING):
                # refused before sending: the read-back could not check such a write
                raise ScriptError(f"step {i}: UPDATE BINARY by short EF id or chaining")
            response = transceive(channel.transmit, cmd, raw)
            if not step.sw_expected(response.sw):
                self._fail(
                    channel,
                    f"step {i} (INS {cmd.ins:02X}): SW {response.sw:04X} {response.meaning()}",
                    response.sw,
                )
            if (fault := step.data_fault(response.data)) is not None:
                self._fail(channel, f"step {i} (INS {cmd.ins:02X}): {fault}", response.sw)
            if step.capture is not None:
                values[step.capture] = response.data
            if step.target == "card" and response.sw == 0x9000:
                written += self._track(i, cmd)
        return ScriptOutcome(
            steps_run=len(steps),
            bytes_written=written,
            captured=tuple(values),
            files_written=tuple(f.selects[-1][5:7].hex().upper() for f in self._files.values()),
            values=values,
        )

    def verify(self) -> int:
        """Re-select each written file and READ BINARY what was written; bytes compared."""
        checked = 0
        for f in self._files.values():
            fid = f.selects[-1][5:7].hex().upper()
            for raw in f.selects:
                response = transceive(self.card.transmit, CommandApdu.parse(raw))
                if response.sw != 0x9000:
                    self._fail(
                        self.card,
                        f"read-back of file {fid}: SELECT answered "
                        f"SW {response.sw:04X} {response.meaning()}",
                        response.sw,
                    )
            for start, expected in _runs(f.writes):
                for off in range(0, len(expected), READ_CHUNK):
                    want = expected[off : off + READ_CHUNK]
                    pos = start + off
                    cmd = CommandApdu(0x00, INS_READ_BINARY, pos >> 8, pos & 0xFF, le=len(want))
                    response = transceive(self.card.transmit, cmd)
                    if response.sw != 0x9000:
                        self._fail(
                            self.card,
                            f"read-back of file {fid} at offset {pos}: "
                            f"SW {response.sw:04X} {response.meaning()}",
                            response.sw,
                        )
                    got = response.data
                    if got[: len(want)] != want:
                        k = next(
                            (k for k, b in enumerate(want) if k >= len(got) or got[k] != b),
                            len(want),
                        )
                        self._fail(
                            self.card,
                            f"read-back of file {fid} differs at offset {pos + k}",
                            response.sw,
                        )
                    checked += len(want)
        return checked

    # -- helpers ---------------------------------------------------------------------

    def _sam(self, i: int) -> ChipChannel:
        if self.sam is None:
            raise ScriptError(f"step {i} needs the SAM, but no SAM channel is configured")
        return self.sam

    @staticmethod
    def _command(i: int, step: ChipStep, values: dict[str, bytes]) -> tuple[CommandApdu, bytes]:
        try:
            return step.command(values)
        except KeyError as exc:
            raise ScriptError(
                f"step {i}: placeholder {{{exc.args[0]}}} was not captured before"
            ) from exc
        except ValueError as exc:
            raise ScriptError(f"step {i}: malformed APDU ({exc})") from exc

    def _track(self, i: int, cmd: CommandApdu) -> int:
        """Follow SELECTs and remember UPDATE BINARY data; returns bytes written."""
        if cmd.ins == INS_SELECT and cmd.p1 in (0x00, 0x02) and len(cmd.data) == 2:
            raw = CommandApdu(cmd.cla, cmd.ins, cmd.p1, 0x0C, cmd.data).to_bytes()
            if cmd.data == b"\x3f\x00":
                self._selects = []
            # re-selecting a file of the chain cuts it there; a new EF replaces the last EF
            for k, (_, known) in enumerate(self._selects):
                if known[5:7] == cmd.data:
                    del self._selects[k:]
                    break
            if cmd.p1 == 0x02 and self._selects and self._selects[-1][0] == 0x02:
                self._selects.pop()
            self._selects.append((cmd.p1, raw))
            self._file = None
            return 0
        if cmd.ins != INS_UPDATE_BINARY:
            return 0
        if not self._selects:
            raise ScriptError(f"step {i}: UPDATE BINARY before any SELECT of a file")
        f = self._file
        if f is None:
            chain_ = tuple(s[1] for s in self._selects)
            f = self._file = self._files.setdefault(chain_, _File(chain_))
        f.writes.append(((cmd.p1 << 8) | cmd.p2, cmd.data))
        return len(cmd.data)

    @staticmethod
    def _fail(channel: ChipChannel, message: str, sw: int) -> NoReturn:
        raise ChipStatusError(message, sw=sw, frames=channel.frames.snapshot())


def _runs(writes: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Contiguous (offset, bytes) runs of a file after ``writes``, later writes winning."""
    if not writes:
        return []
    base = min(off for off, _ in writes)
    size = max(off + len(data) for off, data in writes) - base
    image, mask = bytearray(size), bytearray(size)
    for off, data in writes:
        image[off - base : off - base + len(data)] = data
        mask[off - base : off - base + len(data)] = b"\x01" * len(data)
    runs: list[tuple[int, bytes]] = []
    pos = mask.find(1)
    while pos >= 0:
        end = mask.find(0, pos)
        end = size if end < 0 else end
        runs.append((base + pos, bytes(image[pos:end])))
        pos = mask.find(1, end)
    return runs


def build_write_script(files: Mapping[int, bytes], *, authenticate: bool = False) -> list[ChipStep]:
    """A script writing ``files`` (EF id → content) into the KTP-el-like layout.

    With ``authenticate`` it first proves the SAM's key to the card: GET CHALLENGE
    (captured as ``challenge``), the SAM's cryptogram (``cryptogram``), EXTERNAL
    AUTHENTICATE. Each UPDATE BINARY carries at most 255 bytes (short APDUs).
    """
    steps: list[ChipStep] = []
    if authenticate:
        steps += [
            ChipStep(apdu=layout.GET_CHALLENGE_APDU.hex().upper(), capture="challenge"),
            ChipStep(
                target="sam",
                apdu=f"{layout.SAM_CLA:02X}{layout.SAM_INS_CRYPTOGRAM:02X}000008{{challenge}}08",
                capture="cryptogram",
            ),
            ChipStep(apdu=f"00{layout.INS_EXTERNAL_AUTHENTICATE:02X}000008{{cryptogram}}"),
        ]
    steps += [
        ChipStep(apdu=f"00A4000C02{layout.MF:04X}"),
        ChipStep(apdu=f"00A4000C02{layout.DF_KTPEL:04X}"),
    ]
    for fid, content in files.items():
        if len(content) > layout.EF_SIZES.get(fid, 0):
            raise ValueError(f"{len(content)} bytes do not fit EF {fid:04X}")
        steps.append(ChipStep(apdu=f"00A4020C02{fid:04X}"))
        for off in range(0, len(content), layout.MAX_SHORT_DATA):
            chunk = content[off : off + layout.MAX_SHORT_DATA]
            apdu = CommandApdu(0x00, INS_UPDATE_BINARY, off >> 8, off & 0xFF, chunk)
            steps.append(ChipStep(apdu=apdu.to_bytes().hex().upper()))
    return steps


def read_chip_serial(card: ChipChannel) -> str:
    """The chip's serial as upper-case hex: the reader's UID if it knows, else GET DATA."""
    uid = card.uid()
    if uid:
        return uid.replace(":", "").replace(" ", "").upper()
    response = transceive(card.transmit, CommandApdu.parse(layout.GET_SERIAL_APDU))
    if response.sw != 0x9000 or not response.data:
        raise ChipStatusError(
            f"GET DATA serial: SW {response.sw:04X} {response.meaning()}",
            sw=response.sw,
            frames=card.frames.snapshot(),
        )
    return response.data.hex().upper()
