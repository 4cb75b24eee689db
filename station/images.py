"""The record's photo and signature, decoded with explicit limits before anything else."""

from __future__ import annotations

import base64
import binascii
import io
import struct
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError


class ImageFault(ValueError):
    """The image breaks a rule; the message is safe to log (no image data)."""


@dataclass(frozen=True)
class ImageRules:
    format: str  # Pillow's format name, the only one accepted
    max_bytes: int  # decoded file size
    min_size: tuple[int, int]  # width, height
    max_size: tuple[int, int]
    aspect: tuple[float, float]  # width / height, inclusive bounds

    @property
    def max_b64(self) -> int:
        """Longest base64 text for ``max_bytes`` (padded, no line breaks)."""
        return 4 * -(-self.max_bytes // 3)


#: Passport-style photo: 3:4 to 4:5 give or take (0.6-0.9), 100x125 to 1200x1600 pixels.
PHOTO = ImageRules("JPEG", 256 * 1024, (100, 125), (1200, 1600), (0.6, 0.9))
#: The holder's signature: a wide strip, 40x15 to 1200x600 pixels.
SIGNATURE = ImageRules("PNG", 64 * 1024, (40, 15), (1200, 600), (0.8, 10.0))

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (baseline, extended, progressive, lossless, arithmetic).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _png_size(data: bytes) -> tuple[int, int]:
    if not data.startswith(_PNG_MAGIC) or data[12:16] != b"IHDR" or len(data) < 24:
        raise ImageFault("is not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int]:
    if not data.startswith(b"\xff\xd8"):
        raise ImageFault("is not a JPEG image")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ImageFault("is a malformed JPEG (bad marker)")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker in (0xD9, 0xDA) or length < 2:  # end of image or scan before a frame
            break
        pos += 2 + length
    raise ImageFault("is a malformed JPEG (no frame header)")


def _check_size(size: tuple[int, int], rules: ImageRules) -> None:
    width, height = size
    (min_w, min_h), (max_w, max_h) = rules.min_size, rules.max_size
    if not (min_w <= width <= max_w and min_h <= height <= max_h):
        raise ImageFault(f"is {width}x{height} pixels; allowed {min_w}x{min_h} to {max_w}x{max_h}")
    low, high = rules.aspect
    if not low <= width / height <= high:
        raise ImageFault(
            f"has aspect ratio {width / height:.2f} (width/height); allowed {low:g} to {high:g}"
        )


def decode_image(b64: str, rules: ImageRules) -> Image.Image:
    """The decoded image (fully loaded), or :class:`ImageFault` naming the rule broken."""
    if not isinstance(b64, str) or not b64.isascii():
        raise ImageFault("is not base64 text")
    if len(b64) > rules.max_b64:
        raise ImageFault(f"has {len(b64)} characters of base64; at most {rules.max_b64}")
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageFault("is not valid base64") from exc
    if len(data) > rules.max_bytes:
        raise ImageFault(f"has {len(data)} bytes; at most {rules.max_bytes}")
    size = _png_size(data) if rules.format == "PNG" else _jpeg_size(data)
    _check_size(size, rules)
    try:
        img = Image.open(io.BytesIO(data), formats=[rules.format])
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,
        ValueError,
        struct.error,
        EOFError,
    ) as exc:
        raise ImageFault(f"is not a readable {rules.format} image") from exc
    with img:
        if img.size != size:
            raise ImageFault("has a frame size that differs from its header")
        try:
            img.load()
        except (OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
            raise ImageFault(f"is a damaged {rules.format} image ({type(exc).__name__})") from exc
        return img.copy()
