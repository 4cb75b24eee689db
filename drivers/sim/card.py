"""A strict ISO 7816-4 card model (and a SAM) answering APDUs like a real chip would."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping

from drivers import ktpel_layout as layout
from drivers.iso7816 import CLA_CHAINING, MAX_SHORT_LE, CommandApdu

SW_OK = 0x9000


def cryptogram(key: bytes, challenge: bytes) -> bytes:
    """The simulated authentication cryptogram: first 8 bytes of SHA-256(key||challenge)."""
    return hashlib.sha256(key + challenge).digest()[:8]


def _atr(historical: bytes, *, t0: bool) -> bytes:
    if t0:  # T0: no interface bytes, K historical bytes; T=0 implied, no TCK
        return bytes((0x3B, len(historical))) + historical
    body = bytes((0x80 | len(historical), 0x80, 0x01)) + historical  # TD1 → T=1, TD2 T=1
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes((tck,))


class _Iso7816Responder:
    """Shared plumbing: SW packing, CLA checks and T=0 GET RESPONSE buffering."""

    def __init__(self, *, t0: bool, historical: bytes) -> None:
        self.t0 = t0
        self.atr = _atr(historical, t0=t0)
        self._pending = b""  # T=0: response data waiting for GET RESPONSE

    def power_on(self) -> bytes:
        """Reset the volatile state (selection, challenge, auth) and return the ATR."""
        self._pending = b""
        self._reset()
        return self.atr

    def _reset(self) -> None:
        pass

    def process(self, raw: bytes) -> bytes:
        """Answer one command APDU with data + SW1 SW2 (never raises)."""
        try:
            cmd = CommandApdu.parse(raw)
        except ValueError:
            return _sw(0x6700)
        if cmd.ins == 0xC0 and cmd.cla & 0xFC == 0:
            return self._get_response(cmd)
        self._pending = b""
        data, sw = self._dispatch(cmd)
        if sw == SW_OK and data and self.t0 and cmd.data and cmd.le is not None:
            # T=0 case 4: the card cannot send data in the same exchange
            self._pending = data
            return _sw(0x6100 | (len(data) % 256))
        return data + _sw(sw)

    def _get_response(self, cmd: CommandApdu) -> bytes:
        if not self._pending:
            return _sw(0x6985)
        ne = cmd.le or MAX_SHORT_LE
        if ne > len(self._pending):
            return _sw(0x6C00 | (len(self._pending) % 256))
        out, self._pending = self._pending[:ne], self._pending[ne:]
        if self._pending:
            return out + _sw(0x6100 | (min(len(self._pending), 256) % 256))
        return out + _sw(SW_OK)

    def _dispatch(self, cmd: CommandApdu) -> tuple[bytes, int]:
        raise NotImplementedError


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


def _answer(data: bytes, ne: int | None) -> tuple[bytes, int]:
    """Answer ``data`` to a command expecting ``ne`` bytes (6Cxx if Ne is too short)."""
    if ne is None:
        return b"", 0x6700
    if ne < len(data):
        return b"", 0x6C00 | (len(data) % 256)
    return data, SW_OK


class SimCard(_Iso7816Responder):
    """The chip of one blank: 8 KB of EFs, a serial, a challenge/response check.

    ``files`` maps an EF id to its stored bytes (shorter than the EF: the rest is zero).
    ``require_auth`` makes UPDATE BINARY answer 6982 until EXTERNAL AUTHENTICATE passed.
    """

    def __init__(
        self,
        serial: bytes,
        *,
        files: Mapping[int, bytes] | None = None,
        key: bytes = layout.SIM_SAM_KEY,
        require_auth: bool = False,
        t0: bool = False,
    ) -> None:
        super().__init__(t0=t0, historical=b"KTPELSIM")
        self.serial = serial
        self.key = key
        self.require_auth = require_auth
        self._files: dict[int, bytearray] = {
            fid: bytearray(size) for fid, size in layout.EF_SIZES.items()
        }
        for fid, content in (files or {}).items():
            if fid not in self._files or len(content) > len(self._files[fid]):
                raise ValueError(f"file {fid:04X} is not an EF of the layout or too large")
            self._files[fid][: len(content)] = content
        #: Number of UPDATE BINARY commands that changed memory (the owner persists).
        self.writes = 0
        self._reset()

    def _reset(self) -> None:
        self._df = layout.MF
        self._ef: int | None = None
        self._challenge: bytes | None = None
        self._authenticated = False

    def files(self) -> dict[int, bytes]:
        """Every EF's content with trailing zero bytes trimmed (empty EFs left out)."""
        out = {fid: bytes(content).rstrip(b"\x00") for fid, content in self._files.items()}
        return {fid: content for fid, content in out.items() if content}

    def _dispatch(self, cmd: CommandApdu) -> tuple[bytes, int]:
        if cmd.cla & CLA_CHAINING:
            return b"", 0x6884
        if cmd.cla != 0x00:
            return b"", 0x6E00
        handler = {
            0xA4: self._select,
            0xB0: self._read_binary,
            0xD6: self._update_binary,
            0xCA: self._get_data,
            0x84: self._get_challenge,
            layout.INS_EXTERNAL_AUTHENTICATE: self._external_authenticate,
        }.get(cmd.ins)
        if handler is None:
            return b"", 0x6D00
        return handler(cmd)

    def _select(self, cmd: CommandApdu) -> tuple[bytes, int]:
        if cmd.p1 not in (0x00, 0x02) or cmd.p2 not in (0x00, 0x04, 0x0C):
            return b"", 0x6A86
        if len(cmd.data) != 2:
            return b"", 0x6700
        fid = int.from_bytes(cmd.data, "big")
        in_df = self._df == layout.DF_KTPEL and fid in self._files
        if cmd.p1 == 0x02:
            if not in_df:
                return b"", 0x6A82
        elif fid not in (layout.MF, layout.DF_KTPEL) and not in_df:
            return b"", 0x6A82
        if fid in (layout.MF, layout.DF_KTPEL):
            self._df, self._ef = fid, None
        else:
            self._ef = fid
        if cmd.p2 == 0x0C:
            return b"", SW_OK
        size = len(self._files[fid]) if self._ef == fid else 0
        fcp = b"\x80\x02" + size.to_bytes(2, "big") + b"\x82\x01"
        fcp += (b"\x01" if self._ef == fid else b"\x38") + b"\x83\x02" + cmd.data
        return _answer(b"\x62" + bytes((len(fcp),)) + fcp, cmd.le or MAX_SHORT_LE)

    def _current_ef(self, cmd: CommandApdu) -> tuple[bytearray | None, int, int]:
        """(EF content, offset, SW) for READ/UPDATE BINARY; SW != 9000 means refuse."""
        if cmd.p1 & 0x80:
            return None, 0, 0x6A81  # short EF identifiers are not offered
        if self._ef is None:
            return None, 0, 0x6986
        content = self._files[self._ef]
        offset = (cmd.p1 << 8) | cmd.p2
        if offset >= len(content):
            return None, 0, 0x6B00
        return content, offset, SW_OK

    def _read_binary(self, cmd: CommandApdu) -> tuple[bytes, int]:
        content, offset, sw = self._current_ef(cmd)
        if content is None:
            return b"", sw
        if cmd.le is None or cmd.data:
            return b"", 0x6700
        left = len(content) - offset
        if cmd.le <= left:
            return bytes(content[offset : offset + cmd.le]), SW_OK
        if left <= MAX_SHORT_LE and cmd.le <= MAX_SHORT_LE:
            return b"", 0x6C00 | (left % 256)
        return bytes(content[offset:]), 0x6282

    def _update_binary(self, cmd: CommandApdu) -> tuple[bytes, int]:
        content, offset, sw = self._current_ef(cmd)
        if content is None:
            return b"", sw
        if not cmd.data or offset + len(cmd.data) > len(content):
            return b"", 0x6700
        if self.require_auth and not self._authenticated:
            return b"", 0x6982
        content[offset : offset + len(cmd.data)] = cmd.data
        self.writes += 1
        return b"", SW_OK

    def _get_data(self, cmd: CommandApdu) -> tuple[bytes, int]:
        if cmd.header != layout.GET_SERIAL_APDU[:4]:
            return b"", 0x6A88
        return _answer(self.serial, cmd.le)

    def _get_challenge(self, cmd: CommandApdu) -> tuple[bytes, int]:
        if cmd.p1 or cmd.p2:
            return b"", 0x6A86
        if cmd.le is None or cmd.le > 32 or cmd.data:
            return b"", 0x6700
        self._challenge = secrets.token_bytes(cmd.le)
        return self._challenge, SW_OK

    def _external_authenticate(self, cmd: CommandApdu) -> tuple[bytes, int]:
        if len(cmd.data) != 8:
            return b"", 0x6700
        challenge, self._challenge = self._challenge, None  # one try per challenge
        if challenge is None:
            return b"", 0x6985
        if not secrets.compare_digest(cmd.data, cryptogram(self.key, challenge)):
            self._authenticated = False
            return b"", 0x6300
        self._authenticated = True
        return b"", SW_OK


class SimSam(_Iso7816Responder):
    """The security module: answers ``80 AE 00 00 08 <challenge> 08`` with a cryptogram."""

    def __init__(self, *, key: bytes = layout.SIM_SAM_KEY, t0: bool = False) -> None:
        super().__init__(t0=t0, historical=b"KTPELSAM")
        self.key = key

    def _dispatch(self, cmd: CommandApdu) -> tuple[bytes, int]:
        if cmd.cla != layout.SAM_CLA:
            return b"", 0x6E00
        if cmd.ins != layout.SAM_INS_CRYPTOGRAM:
            return b"", 0x6D00
        if cmd.p1 or cmd.p2:
            return b"", 0x6A86
        if len(cmd.data) != 8:
            return b"", 0x6700
        return _answer(cryptogram(self.key, cmd.data), cmd.le)
