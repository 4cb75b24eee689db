"""The Evolis command protocol as pure functions: encoding, bitmaps, compression, replies."""

from __future__ import annotations

import io
import re

from PIL import Image, ImageChops

from drivers.base import CardPosition
from drivers.errors import (
    CardJam,
    CoverOpen,
    DeviceError,
    DeviceTimeout,
    FeederEmpty,
    PrinterError,
    PrintFailed,
    RibbonOut,
)

ESC = 0x1B
CR = 0x0D
FACE_SIZE = (1016, 648)  # landscape width × height of the card face, 300 dpi
PANEL_DOTS = 648  # dots per line
PANEL_LINES = 1016
LINE_BYTES = PANEL_DOTS // 8  # 81
MONO_PANEL_BYTES = LINE_BYTES * PANEL_LINES  # 82,296
COLOUR_LEVELS = {32: 5, 64: 6, 128: 7}  # Db parameter → bits per dot
MONO_PANELS = frozenset("ko")
COLOUR_PANELS = frozenset("ymc")
PANEL_ORDER = "ymcko"
VOLTS_THRESHOLD = 2.5  # a sensor above this reads "present"/"closed"

_TEXT_PARAM = re.compile(rb"^[\x20-\x3a\x3c-\x7e]*$")  # printable ASCII without ';'


def command(name: str, *params: str | bytes) -> bytes:
    """``ESC name;p1;p2… CR``; only the last parameter may be binary bitmap data."""
    parts = [name.encode("ascii")]
    for i, param in enumerate(params):
        raw = param.encode("ascii") if isinstance(param, str) else bytes(param)
        if (i < len(params) - 1 or isinstance(param, str)) and not _TEXT_PARAM.match(raw):
            raise ValueError(f"parameter {i + 1} of {name} is not plain ASCII without ';'")
        parts.append(raw)
    return bytes([ESC]) + b";".join(parts) + bytes([CR])


def panel_size(bits_param: int) -> int:
    """Bytes of one uncompressed panel for the ``Db`` bits parameter (2, 32, 64, 128)."""
    if bits_param == 2:
        return MONO_PANEL_BYTES
    try:
        return PANEL_DOTS * COLOUR_LEVELS[bits_param] // 8 * PANEL_LINES
    except KeyError:
        raise ValueError(f"unsupported Db bits parameter {bits_param}") from None


def describe(cmd: bytes) -> str:
    """A command for the frame log: name and parameters, bitmap data elided."""
    body = cmd[1:-1] if cmd[:1] == bytes([ESC]) else cmd
    fields = body.split(b";")
    head = 3 if fields[0] == b"Db" else 4 if fields[0] == b"Dbc" else len(fields)
    shown = [f.decode("ascii", "replace") for f in fields[:head]]
    if len(fields) > head:
        shown.append(f"<{len(body) - len(b';'.join(fields[:head])) - 1} bytes>")
    return ";".join(shown)


# -- bitmaps ---------------------------------------------------------------------------


def to_panel_orientation(face: Image.Image) -> Image.Image:
    """The 1016 × 648 face turned into panel orientation (648 dots × 1016 lines)."""
    if face.size != FACE_SIZE:
        raise ValueError(f"face must be {FACE_SIZE[0]}x{FACE_SIZE[1]}, got {face.size}")
    return face.transpose(Image.Transpose.ROTATE_270)


def pack_mono(mask: Image.Image) -> bytes:
    """A panel-oriented mask (mode L or 1, nonzero = print) as 81-byte lines."""
    if mask.size != (PANEL_DOTS, PANEL_LINES):
        raise ValueError(f"panel must be {PANEL_DOTS}x{PANEL_LINES}, got {mask.size}")
    return mask.convert("L").point(lambda v: 255 if v else 0).convert("1").tobytes()


def unpack_mono(data: bytes) -> Image.Image:
    """The inverse of :func:`pack_mono`: an L image, 255 where a dot prints."""
    if len(data) != MONO_PANEL_BYTES:
        raise ValueError(f"mono panel must be {MONO_PANEL_BYTES} bytes, got {len(data)}")
    return Image.frombytes("1", (PANEL_DOTS, PANEL_LINES), data).convert("L")


def pack_levels(levels: bytes, bits: int) -> bytes:
    """Ink amounts 0-255 (one byte a dot) quantized to ``bits`` and packed MSB first."""
    if bits not in (5, 6, 7):
        raise ValueError(f"colour panels use 5, 6 or 7 bits per dot, not {bits}")
    top = (1 << bits) - 1
    q = levels.translate(bytes((v * top + 127) // 255 for v in range(256)))
    out = bytearray()
    for i in range(0, len(q) - len(q) % 8, 8):
        a, b, c, d, e, f, g, h = q[i : i + 8]
        v = a
        for x in (b, c, d, e, f, g, h):
            v = (v << bits) | x
        out += v.to_bytes(bits, "big")
    return bytes(out)


def unpack_levels(data: bytes, bits: int) -> bytes:
    """The quantized levels (0 … 2^bits - 1, one byte a dot) of a packed colour panel."""
    mask = (1 << bits) - 1
    out = bytearray()
    for i in range(0, len(data), bits):
        v = int.from_bytes(data[i : i + bits], "big")
        out += bytes((v >> (bits * (7 - j))) & mask for j in range(8))
    return bytes(out)


def face_panels(face_png: bytes, ribbon: str = "ymcko", colour_bits: int = 32) -> dict[str, bytes]:
    """Raw panel data per panel letter of ``ribbon`` from a face PNG (see drivers.evolis.printer).

    Pure black pixels (0, 0, 0) form the ``k`` panel and are left out of the colour
    panels; every other pixel goes to ``y``/``m``/``c`` as ink = 255 - B/G/R; ``o``
    covers the whole card.
    """
    try:
        with Image.open(io.BytesIO(face_png)) as img:
            rgb = img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"face is not a readable image ({type(exc).__name__})") from exc
    panel = to_panel_orientation(rgb)
    r, g, b = panel.split()
    black = ImageChops.multiply(
        ImageChops.multiply(r.point(_is_zero), g.point(_is_zero)), b.point(_is_zero)
    )
    keep = ImageChops.invert(black)  # 255 where not K
    ink = {"c": r, "m": g, "y": b}
    out: dict[str, bytes] = {}
    bits = COLOUR_LEVELS[colour_bits]
    for letter in ribbon:
        if letter in COLOUR_PANELS:
            plane = ImageChops.multiply(ImageChops.invert(ink[letter]), keep)
            out[letter] = pack_levels(plane.tobytes(), bits)
        elif letter == "k":
            out[letter] = pack_mono(black)
        elif letter == "o":
            out[letter] = b"\xff" * MONO_PANEL_BYTES
        else:
            raise ValueError(f"unknown ribbon panel {letter!r}")
    return out


def _is_zero(v: int) -> int:
    return 255 if v == 0 else 0


# -- Dbc line compression --------------------------------------------------------------


def compress_mono(panel: bytes) -> bytes:
    """Compress an 82,296-byte mono panel line by line (module docstring)."""
    if len(panel) != MONO_PANEL_BYTES:
        raise ValueError(f"mono panel must be {MONO_PANEL_BYTES} bytes, got {len(panel)}")
    out = bytearray()
    black = b"\xff" * LINE_BYTES
    for off in range(0, MONO_PANEL_BYTES, LINE_BYTES):
        line = panel[off : off + LINE_BYTES]
        if line == black:
            out.append(0xFF)
            continue
        used = line.rstrip(b"\x00")
        out.append(len(used))
        out += used
    return bytes(out)


def decompress_mono(data: bytes) -> bytes:
    """The panel a ``Dbc`` stream describes; ValueError if it is malformed."""
    out = bytearray()
    i = 0
    while i < len(data):
        n = data[i]
        i += 1
        if n == 0x00:
            out += bytes(LINE_BYTES)
        elif n == 0xFF:
            out += b"\xff" * LINE_BYTES
        elif n <= LINE_BYTES and i + n <= len(data):
            out += data[i : i + n] + bytes(LINE_BYTES - n)
            i += n
        else:
            raise ValueError(f"bad compressed line at byte {i - 1}")
    if len(out) != MONO_PANEL_BYTES:
        raise ValueError(f"compressed data holds {len(out) // LINE_BYTES} lines, not 1016")
    return bytes(out)


def download(letter: str, data: bytes, *, colour_bits: int = 32, compress: bool = True) -> bytes:
    """The ``Db``/``Dbc`` command downloading one panel's raw data."""
    if letter in COLOUR_PANELS:
        if len(data) != panel_size(colour_bits):
            raise ValueError(f"panel {letter} has {len(data)} bytes")
        return command("Db", letter, str(colour_bits), data)
    if letter not in MONO_PANELS:
        raise ValueError(f"unknown panel {letter!r}")
    if compress:
        packed = compress_mono(data)
        return command("Dbc", letter, "2", str(len(packed)), packed)
    if len(data) != MONO_PANEL_BYTES:
        raise ValueError(f"panel {letter} has {len(data)} bytes")
    return command("Db", letter, "2", data)


# -- replies ---------------------------------------------------------------------------


OK = "OK"


#: Error replies (prefix match) → the exception a driver raises.
ERRORS: tuple[tuple[str, type[DeviceError]], ...] = (
    ("COVER OPEN", CoverOpen),
    ("FEEDER EMPTY", FeederEmpty),
    ("CARD JAM", CardJam),
    ("ERROR RIBBON", RibbonOut),
    ("ERR RIB DETECTION", RibbonOut),
    ("ERROR HEAD", PrintFailed),
    ("ERROR TIME OUT", DeviceTimeout),
    ("ERROR CDE", PrinterError),
    ("ERROR PARAMETRES", PrinterError),
    ("ERROR HOPPER", PrinterError),
    ("ERROR UNKNOW", PrinterError),
    ("HOPPER FULL", PrinterError),
    ("HOPPER DOOR", PrinterError),
    ("NEED CLEANING", PrinterError),
    ("OPT NOT AVAILABLE", PrinterError),
)


#: What every error reply starts with.
ERROR_WORDS: tuple[str, ...] = (*(prefix for prefix, _ in ERRORS), "ERR")


def decode_reply(raw: bytes) -> str:
    """Reply bytes as text: NULs and surrounding whitespace dropped."""
    return raw.replace(b"\x00", b"").decode("latin-1").strip()


def is_intelligible(reply: str) -> bool:
    """Printable ASCII only, and not empty."""
    return bool(reply) and all(0x20 <= ord(ch) < 0x7F for ch in reply)


def error_for(reply: str) -> type[DeviceError] | None:
    """The exception class a reply means, or None when it is not an error reply."""
    for prefix, exc in ERRORS:
        if reply.startswith(prefix):
            return exc
    if reply.startswith("ERR"):
        return PrinterError
    return None


def check_reply(reply: str, what: str, *, expect_ok: bool = True) -> str:
    """Raise the mapped exception for an error or unintelligible reply; else the reply."""
    if not is_intelligible(reply):
        raise PrinterError(f"{what}: unintelligible reply ({len(reply)} chars)")
    exc = error_for(reply)
    if exc is not None:
        raise exc(f"{what}: printer says {reply!r}")
    if expect_ok and reply != OK:
        raise PrinterError(f"{what}: unexpected reply {reply[:40]!r}")
    return reply


#: ``Rlr;p`` replies (newer and older firmware) → where the card is.
POSITIONS = {
    "OK": CardPosition.NONE,
    "NO CARD": CardPosition.NONE,
    "CARD": CardPosition.PRINT,
    "SMART CARD": CardPosition.CONTACT,
    "CONTACTLESS CARD": CardPosition.CONTACT,
    "ERR CARD": CardPosition.JAMMED,
}


def parse_position(reply: str) -> CardPosition:
    """``Rlr;p``: OK/NO CARD → none, CARD → print, SMART/CONTACTLESS CARD → contact."""
    try:
        return POSITIONS[reply]
    except KeyError:
        raise PrinterError(f"card position: unexpected reply {reply[:40]!r}") from None


def parse_volts(reply: str) -> float:
    """``Rse``: ``5,00 Volts`` (decimal comma) → 5.0."""
    m = re.fullmatch(r"(\d+)[,.](\d+)\s*Volts?", reply.strip())
    if not m:
        raise PrinterError(f"sensor: unexpected reply {reply[:40]!r}")
    return float(f"{m.group(1)}.{m.group(2)}")
