"""ISO/IEC 7816-4 command and response APDUs: pure protocol, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

from drivers.errors import ChipStatusError

MAX_SHORT_DATA = 255
MAX_SHORT_LE = 256
MAX_EXTENDED_DATA = 65535
MAX_EXTENDED_LE = 65536
#: CLA bit that marks "more commands of this chain follow".
CLA_CHAINING = 0x10
INS_GET_RESPONSE = 0xC0
#: Upper bound of GET RESPONSE rounds for one command (65536 bytes / 256 per round).
MAX_GET_RESPONSE_ROUNDS = 256


@dataclass(frozen=True)
class CommandApdu:
    """A command APDU; ``le`` is the expected response length Ne (None: no Le field)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ValueError(f"APDU {name} must be a byte (0..255), got {value}")
        if len(self.data) > MAX_EXTENDED_DATA:
            raise ValueError(
                f"APDU data field of {len(self.data)} bytes exceeds {MAX_EXTENDED_DATA}"
            )
        if self.le is not None and not 1 <= self.le <= MAX_EXTENDED_LE:
            raise ValueError(f"APDU Ne must be 1..{MAX_EXTENDED_LE} or None, got {self.le}")

    @property
    def extended(self) -> bool:
        """Whether this command needs the extended length encoding."""
        return len(self.data) > MAX_SHORT_DATA or (self.le is not None and self.le > MAX_SHORT_LE)

    @property
    def header(self) -> bytes:
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def to_bytes(self) -> bytes:
        """Encode as case 1, 2, 3 or 4, short or extended (chosen automatically)."""
        out = bytearray(self.header)
        if self.extended:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                if not self.data:
                    out += b"\x00"  # case 2E: the extended marker precedes Le
                out += (self.le % MAX_EXTENDED_LE).to_bytes(2, "big")
        else:
            if self.data:
                out += bytes((len(self.data),)) + self.data
            if self.le is not None:
                out += bytes((self.le % MAX_SHORT_LE,))
        return bytes(out)

    @classmethod
    def parse(cls, raw: bytes) -> CommandApdu:
        """Decode any of the four cases, short or extended; ValueError if malformed."""
        n = len(raw)
        if n < 4:
            raise ValueError(f"command APDU too short: {n} bytes, a header needs 4")
        cla, ins, p1, p2 = raw[:4]
        if n == 4:  # case 1
            return cls(cla, ins, p1, p2)
        if n == 5:  # case 2S
            return cls(cla, ins, p1, p2, le=raw[4] or MAX_SHORT_LE)
        if raw[4] != 0:  # short Lc
            lc = raw[4]
            if n == 5 + lc:  # case 3S
                return cls(cla, ins, p1, p2, data=bytes(raw[5:]))
            if n == 6 + lc:  # case 4S
                return cls(cla, ins, p1, p2, data=bytes(raw[5:-1]), le=raw[-1] or MAX_SHORT_LE)
            raise ValueError(
                f"command APDU length {n} does not match short Lc={lc} "
                f"(expected {5 + lc} or {6 + lc} bytes)"
            )
        if n == 6:
            raise ValueError("command APDU of 6 bytes with a zero Lc byte is malformed")
        if n == 7:  # case 2E
            return cls(cla, ins, p1, p2, le=int.from_bytes(raw[5:7], "big") or MAX_EXTENDED_LE)
        lc = int.from_bytes(raw[5:7], "big")
        if lc == 0:
            raise ValueError("extended command APDU with Lc=0 is malformed")
        if n == 7 + lc:  # case 3E
            return cls(cla, ins, p1, p2, data=bytes(raw[7:]))
        if n == 9 + lc:  # case 4E
            le = int.from_bytes(raw[-2:], "big") or MAX_EXTENDED_LE
            return cls(cla, ins, p1, p2, data=bytes(raw[7:-2]), le=le)
        raise ValueError(
            f"command APDU length {n} does not match extended Lc={lc} "
            f"(expected {7 + lc} or {9 + lc} bytes)"
        )

    def describe(self) -> str:
        """Header and lengths only: safe to log (the data field may be personal)."""
        le = "" if self.le is None else f" Le={self.le}"
        return f"{self.header.hex().upper()} Lc={len(self.data)}{le}"


class ResponseApdu(NamedTuple):
    """A response: data field and status word (a tuple: cheap at thousands a second)."""

    data: bytes
    sw1: int
    sw2: int

    @property
    def sw(self) -> int:
        return (self.sw1 << 8) | self.sw2

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    def to_bytes(self) -> bytes:
        return self.data + bytes((self.sw1, self.sw2))

    @classmethod
    def parse(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise ValueError(f"response APDU too short: {len(raw)} bytes, SW1 SW2 need 2")
        return cls(raw[:-2], raw[-2], raw[-1])

    def meaning(self) -> str:
        return sw_meaning(self.sw)


#: Exact status words → meaning (ISO/IEC 7816-4, section 5.1.3).
SW_MEANINGS: dict[int, str] = {
    0x9000: "success",
    0x6200: "warning: state of non-volatile memory unchanged",
    0x6281: "warning: part of returned data may be corrupted",
    0x6282: "warning: end of file reached before reading Ne bytes",
    0x6283: "warning: selected file deactivated",
    0x6300: "verification or authentication failed",
    0x6581: "memory failure",
    0x6700: "wrong length",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6883: "last command of the chain expected",
    0x6884: "command chaining not supported",
    0x6981: "command incompatible with file structure",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "reference data not usable",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed (no current EF)",
    0x6987: "expected secure messaging data objects missing",
    0x6988: "incorrect secure messaging data objects",
    0x6A80: "incorrect parameters in the data field",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory space in the file",
    0x6A86: "incorrect parameters P1-P2",
    0x6A88: "referenced data not found",
    0x6B00: "wrong parameters P1-P2 (offset outside the EF)",
    0x6D00: "instruction code not supported or invalid",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}

#: SW1 → meaning, when SW2 carries a number or is not in the table above.
_SW1_MEANINGS: dict[int, str] = {
    0x62: "warning: state of non-volatile memory unchanged",
    0x63: "warning: state of non-volatile memory changed",
    0x64: "execution error: state of non-volatile memory unchanged",
    0x65: "execution error: state of non-volatile memory changed",
    0x66: "security-related issue",
    0x67: "wrong length",
    0x68: "functions in CLA not supported",
    0x69: "command not allowed",
    0x6A: "wrong parameters P1-P2",
    0x6B: "wrong parameters P1-P2",
    0x6D: "instruction code not supported or invalid",
    0x6E: "class not supported",
    0x6F: "no precise diagnosis",
}


def sw_meaning(sw: int) -> str:
    """A short English meaning of status word ``sw`` (never raises)."""
    if sw in SW_MEANINGS:
        return SW_MEANINGS[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return f"{sw2 or 256} response bytes still available"
    if sw1 == 0x6C:
        return f"wrong Le: exactly {sw2 or 256} bytes available"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"verification failed, {sw2 & 0x0F} retries left"
    return _SW1_MEANINGS.get(sw1, "unknown status word")


def transceive(
    send: Callable[[bytes], bytes], cmd: CommandApdu, raw: bytes | None = None
) -> ResponseApdu:
    """Send ``cmd``; follow ``61xx`` with GET RESPONSE and retry ``6Cxx`` once with Le=xx.

    The data of every GET RESPONSE round is concatenated; the status word returned is
    the last one. ValueError if the device answers fewer than two bytes. ``raw``: the
    encoding of ``cmd`` when the caller already has it (saves encoding it again).
    """

    response = _exchange(send, cmd, raw)
    if response.sw1 != 0x61:
        return response
    data = bytearray(response.data)
    rounds = 0
    while response.sw1 == 0x61:
        rounds += 1
        if rounds > MAX_GET_RESPONSE_ROUNDS:
            raise ChipStatusError(
                f"INS {cmd.ins:02X}: card keeps answering 61xx after "
                f"{MAX_GET_RESPONSE_ROUNDS} GET RESPONSE rounds",
                sw=response.sw,
            )
        get_response = CommandApdu(
            cmd.cla & 0x03, INS_GET_RESPONSE, 0, 0, le=response.sw2 or MAX_SHORT_LE
        )
        response = _exchange(send, get_response)
        data += response.data
    return ResponseApdu(bytes(data), response.sw1, response.sw2)


def _exchange(
    send: Callable[[bytes], bytes], command: CommandApdu, encoded: bytes | None = None
) -> ResponseApdu:
    """One command, re-issued once with the right Le if the card answers ``6Cxx``."""
    response = ResponseApdu.parse(send(encoded or command.to_bytes()))
    if response.sw1 == 0x6C:
        response = ResponseApdu.parse(
            send(replace(command, le=response.sw2 or MAX_SHORT_LE).to_bytes())
        )
    return response


def chain(cmd: CommandApdu, max_data: int = MAX_SHORT_DATA) -> list[CommandApdu]:
    """Split ``cmd``'s data into commands of at most ``max_data`` bytes (ISO chaining).

    Every command but the last has CLA bit 0x10 set; only the last carries Le. A command
    whose data already fits is returned alone, unchanged.
    """
    if max_data < 1:
        raise ValueError(f"max_data must be at least 1, got {max_data}")
    if len(cmd.data) <= max_data:
        return [cmd]
    chunks = [cmd.data[i : i + max_data] for i in range(0, len(cmd.data), max_data)]
    head = [replace(cmd, cla=cmd.cla | CLA_CHAINING, data=c, le=None) for c in chunks[:-1]]
    return [*head, replace(cmd, data=chunks[-1])]
