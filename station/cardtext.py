"""What a text field of the card may hold: the characters an Indonesian card carries."""

from __future__ import annotations

import unicodedata

from pydantic import AfterValidator

PUNCTUATION = frozenset(" .,'-/()")
#: Latin letter blocks beyond ASCII (inclusive code point ranges).
LATIN_RANGES = ((0x00C0, 0x024F), (0x1E00, 0x1EFF))
BIDI_CONTROLS = frozenset((0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)))
INVISIBLE = frozenset(
    (0x00AD, 0x034F, 0x180E, *range(0x200B, 0x200E), *range(0x2060, 0x2065), 0xFEFF)
)


def _latin_letter(ch: str) -> bool:
    cp = ord(ch)
    return (
        any(lo <= cp <= hi for lo, hi in LATIN_RANGES)
        and unicodedata.category(ch) in ("Lu", "Ll", "Lt")
        and len(ch.upper()) == 1
    )  # "ß" would print as "SS": longer than checked


def allowed(ch: str, *, digits: bool = True) -> bool:
    if ch.isascii():
        return ch.isalpha() or ch in PUNCTUATION or (digits and ch.isdigit())
    return _latin_letter(ch)


def describe(ch: str) -> str:
    """What kind of character ``ch`` is, for a refusal message."""
    cp = ord(ch)
    cat = unicodedata.category(ch)
    if cp in BIDI_CONTROLS:
        kind = "a bidirectional control character"
    elif cp == 0xFEFF:
        kind = "a byte order mark"
    elif cp in INVISIBLE:
        kind = "an invisible (zero-width) character"
    elif 0xE0000 <= cp <= 0xE007F:
        kind = "a tag character"
    elif cat == "Cc":
        kind = "a control character"
    elif cat == "Co":
        kind = "a private-use character"
    elif cat == "Cs":
        kind = "a lone surrogate"
    elif cat == "Cn":
        kind = "an unassigned code point"
    elif cat.startswith("M"):
        kind = "a combining mark that does not compose with its letter"
    elif cat == "Nd":
        kind = "a non-ASCII digit"
    elif ch.isascii() and ch.isdigit():
        kind = "a digit (not allowed in this field)"
    elif cat.startswith("Z"):
        kind = "a space other than the plain space"
    else:
        kind = "a character the card does not carry"
    return f"{kind} (U+{cp:04X})"


def check_text(value: str, *, max_len: int, digits: bool = True) -> str:
    """``value`` NFC-normalised, or ValueError saying what is wrong (no personal data)."""
    text = unicodedata.normalize("NFC", value)
    for ch in text:
        if not allowed(ch, digits=digits):
            raise ValueError(f"contains {describe(ch)}")
    if len(text) > max_len:
        raise ValueError(f"has {len(text)} characters; at most {max_len} fit the card")
    if not any(ch.isalnum() for ch in text):
        raise ValueError("has no letter or digit")
    if text != text.strip():
        raise ValueError("starts or ends with a space")
    return text


def card_text(max_len: int, *, digits: bool = True) -> AfterValidator:
    """The pydantic rule of a card text field of at most ``max_len`` characters
    (``Annotated[str, card_text(60)]``)."""

    def check(value: str) -> str:
        if len(value) > 4 * max_len:  # bounded before normalisation does any work
            raise ValueError(f"has {len(value)} characters; at most {max_len} fit the card")
        return check_text(value, max_len=max_len, digits=digits)

    return AfterValidator(check)


#: Digits of the card's numeric fields are ASCII: pydantic's ``\d`` also matches "٠".
ASCII_DIGIT = "[0-9]"
