"""Golden bytes of every Evolis command the driver sends, bitmaps, compression, replies."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from drivers.base import CardPosition
from drivers.errors import CardJam, CoverOpen, DeviceTimeout, FeederEmpty, PrinterError, RibbonOut
from drivers.evolis import protocol as proto
from tests.support.evolis_emulator import EvolisEmulator

GOLDEN = [
    (("Rtp",), b"\x1bRtp\r"),
    (("Rsn",), b"\x1bRsn\r"),
    (("Rfv",), b"\x1bRfv\r"),
    (("Rkn",), b"\x1bRkn\r"),
    (("Rr",), b"\x1bRr\r"),
    (("Rcr",), b"\x1bRcr\r"),
    (("Rrt", "count"), b"\x1bRrt;count\r"),
    (("Rco", "c"), b"\x1bRco;c\r"),
    (("Rco", "p"), b"\x1bRco;p\r"),
    (("Rlr", "p"), b"\x1bRlr;p\r"),
    (("Rse", "o"), b"\x1bRse;o\r"),
    (("Rse", "f"), b"\x1bRse;f\r"),
    (("Pem", "2"), b"\x1bPem;2\r"),
    (("Pmi", "F"), b"\x1bPmi;F\r"),
    (("Pmi", "B"), b"\x1bPmi;B\r"),
    (("Sis",), b"\x1bSis\r"),
    (("Sic",), b"\x1bSic\r"),
    (("Pr", "ymcko"), b"\x1bPr;ymcko\r"),
    (("Pr", "k"), b"\x1bPr;k\r"),
    (("Ss",), b"\x1bSs\r"),
    (("Sr",), b"\x1bSr\r"),
    (("Sv",), b"\x1bSv\r"),
    (("Se",), b"\x1bSe\r"),
    (("Ser",), b"\x1bSer\r"),
    (("Srs",), b"\x1bSrs\r"),
]


@pytest.mark.parametrize(("args", "expected"), GOLDEN, ids=[g[1][1:-1].decode() for g in GOLDEN])
def test_command_golden_bytes(args: tuple[str, ...], expected: bytes) -> None:
    """Each command is ESC, name and ;-separated parameters, then CR."""
    assert proto.command(*args) == expected


def test_text_parameters_cannot_break_framing() -> None:
    """A text parameter with ';' or a control byte is refused."""
    with pytest.raises(ValueError, match="parameter 1"):
        proto.command("Pr", "k;x")
    with pytest.raises(ValueError, match="parameter 1"):
        proto.command("Db", b"k\r", b"data")


def test_download_golden_bytes() -> None:
    """Db;y;32 carries 411,480 bytes; Db;k;2 82,296; Dbc;k;2;n; the compressed lines."""
    white = bytes(proto.MONO_PANEL_BYTES)
    assert proto.download("k", white, compress=False) == b"\x1bDb;k;2;" + white + b"\r"
    assert proto.download("k", white) == b"\x1bDbc;k;2;1016;" + bytes(1016) + b"\r"
    black = b"\xff" * proto.MONO_PANEL_BYTES
    assert proto.download("o", black) == b"\x1bDbc;o;2;1016;" + b"\xff" * 1016 + b"\r"
    colour = bytes(proto.panel_size(32))
    assert proto.download("y", colour) == b"\x1bDb;y;32;" + colour + b"\r"
    assert [proto.panel_size(b) for b in (2, 32, 64, 128)] == [82296, 411480, 493776, 576072]


def test_describe_elides_bitmap_data() -> None:
    """The frame log shows a download's header and its size, not its data."""
    cmd = proto.download("k", bytes(proto.MONO_PANEL_BYTES))
    assert proto.describe(cmd) == "Dbc;k;2;1016;<1016 bytes>"
    assert proto.describe(proto.command("Rlr", "p")) == "Rlr;p"


def _face(points: list[tuple[int, int]]) -> bytes:
    img = Image.new("RGB", proto.FACE_SIZE, (255, 255, 255))
    for xy in points:
        img.putpixel(xy, (0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_rotation_and_bit_order() -> None:
    """Face top-left → end of line 0; bottom-left → first dot of line 0 (MSB); bit 1 prints."""
    k = proto.face_panels(_face([(0, 0), (0, 647), (1015, 0)]), ribbon="k")["k"]
    assert k[80] == 0x01  # line 0, dot 647
    assert k[0] == 0x80  # line 0, dot 0
    assert k[1015 * 81 + 80] == 0x01  # last line, dot 647
    assert sum(bin(b).count("1") for b in k) == 3


def test_black_pixels_leave_the_colour_panels() -> None:
    """Pure black goes to K only; a white face prints no ink on Y, M, C."""
    panels = proto.face_panels(_face([(10, 10)]), ribbon="ymcko")
    assert set(panels["y"]) == {0}
    assert panels["o"] == b"\xff" * proto.MONO_PANEL_BYTES


def test_colour_packing_golden() -> None:
    """Levels are quantized to 5 bits and packed MSB first: 8 dots in 5 bytes."""
    assert proto.pack_levels(bytes([255] * 8), 5) == b"\xff" * 5
    assert proto.pack_levels(bytes([255, 0, 0, 0, 0, 0, 0, 0]), 5) == b"\xf8\x00\x00\x00\x00"
    assert proto.pack_levels(bytes([0] * 7 + [255]), 5) == b"\x00\x00\x00\x00\x1f"
    levels = bytes(range(0, 256, 32))
    assert proto.unpack_levels(proto.pack_levels(levels, 6), 6) == bytes(
        (v * 63 + 127) // 255 for v in levels
    )


def test_compression_golden() -> None:
    """Line 0 one byte 0xAB, line 1 black, the rest white."""
    panel = bytearray(proto.MONO_PANEL_BYTES)
    panel[0] = 0xAB
    panel[81:162] = b"\xff" * 81
    assert proto.compress_mono(bytes(panel)) == b"\x01\xab\xff" + bytes(1014)


_LINE = st.one_of(
    st.just(bytes(81)),
    st.just(b"\xff" * 81),
    st.binary(min_size=81, max_size=81),
    st.binary(min_size=1, max_size=80).map(lambda b: b + bytes(81 - len(b))),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_LINE, min_size=1, max_size=40), st.integers(min_value=1, max_value=97))
def test_compression_round_trip(lines: list[bytes], stride: int) -> None:
    """decompress(compress(panel)) is the panel, for panels tiled from arbitrary lines."""
    panel = b"".join(lines[(i * stride) % len(lines)] for i in range(proto.PANEL_LINES))
    assert proto.decompress_mono(proto.compress_mono(panel)) == panel


@pytest.mark.parametrize("data", [b"\x52" + bytes(82), b"\x05\x01", bytes(1015), bytes(1017)])
def test_malformed_compression_is_refused(data: bytes) -> None:
    """A count above 81, a short line or a wrong number of lines raises ValueError."""
    with pytest.raises(ValueError):
        proto.decompress_mono(data)


@pytest.mark.parametrize(
    ("reply", "exc"),
    [
        ("COVER OPEN", CoverOpen),
        ("FEEDER EMPTY", FeederEmpty),
        ("CARD JAM", CardJam),
        ("ERROR RIBBON", RibbonOut),
        ("ERR RIB DETECTION", RibbonOut),
        ("ERROR TIME OUT", DeviceTimeout),
        ("ERROR CDE", PrinterError),
        ("HOPPER FULL", PrinterError),
        ("\x8f#", PrinterError),
        ("MAYBE", PrinterError),
    ],
)
def test_error_replies_map_to_the_tree(reply: str, exc: type[Exception]) -> None:
    """Each error reply raises its exception class; unknown text is a PrinterError."""
    with pytest.raises(exc):
        proto.check_reply(reply, "cmd")


def test_positions_and_sensors() -> None:
    """Rlr;p replies of new and old firmware and Rse's decimal-comma volts are parsed."""
    assert proto.parse_position("OK") is CardPosition.NONE
    assert proto.parse_position("NO CARD") is CardPosition.NONE
    assert proto.parse_position("CARD") is CardPosition.PRINT
    assert proto.parse_position("CONTACTLESS CARD") is CardPosition.CONTACT
    assert proto.parse_position("ERR CARD") is CardPosition.JAMMED
    assert proto.parse_volts("5,00 Volts") == 5.0
    assert proto.parse_volts("0.12 Volts") == pytest.approx(0.12)
    with pytest.raises(PrinterError):
        proto.parse_volts("ERROR CDE")


def test_emulator_counts_bitmap_bytes() -> None:
    """Data holding CR and ESC, split anywhere, NULs between commands: parsed by count."""
    emulator = EvolisEmulator()
    panel = bytes([0x0D, 0x1B] * (proto.MONO_PANEL_BYTES // 2))
    stream = (
        proto.command("Pem", "2")
        + b"\x00\x00"
        + proto.command("Pr", "k")
        + proto.command("Ss")
        + proto.command("Sr")
        + proto.download("k", panel, compress=False)
        + proto.command("Se")
    )
    replies: list[bytes] = []
    for i in range(0, len(stream), 997):
        replies += emulator.receive(stream[i : i + 997])
    assert replies == [b"OK"] * 6
    assert emulator.output[0].panels == {"k": panel}


def test_emulator_refuses_a_short_panel() -> None:
    """A download whose data is one byte short ends without CR: ERROR PARAMETRES."""
    emulator = EvolisEmulator()
    stream = proto.command("Pem", "2") + proto.command("Pr", "k") + proto.command("Ss")
    stream += proto.command("Sr") + b"\x1bDb;k;2;" + bytes(proto.MONO_PANEL_BYTES - 1) + b"\r"
    assert emulator.receive(stream + b"\x1bRlr;p\r") == [b"OK"] * 4 + [b"ERROR PARAMETRES"]
