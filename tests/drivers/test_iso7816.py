"""APDU encoding golden bytes, parsing, status words, T=0 exchange and command chaining."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ChipStatusError
from drivers.iso7816 import (
    CommandApdu,
    ResponseApdu,
    chain,
    sw_meaning,
    transceive,
)

H = bytes.fromhex
DATA8 = H("0102030405060708")
DATA256 = bytes(range(256))
DATA300 = bytes(i % 251 for i in range(300))

GOLDEN: list[tuple[str, CommandApdu, bytes]] = [
    ("case 1", CommandApdu(0x00, 0xA4, 0x00, 0x0C), H("00A4000C")),
    ("case 2S", CommandApdu(0x00, 0xB0, 0x00, 0x10, le=16), H("00B0001010")),
    ("case 2S Le=256", CommandApdu(0x00, 0xB0, 0x01, 0x00, le=256), H("00B0010000")),
    ("case 3S", CommandApdu(0x00, 0xA4, 0x00, 0x0C, H("3F00")), H("00A4000C023F00")),
    (
        "case 4S",
        CommandApdu(0x80, 0xAE, 0x00, 0x00, DATA8, le=8),
        H("80AE000008") + DATA8 + H("08"),
    ),
    (
        "case 4S Le=256",
        CommandApdu(0x00, 0xA4, 0x02, 0x04, H("0101"), le=256),
        H("00A40204020101") + H("00"),
    ),
    ("case 2E", CommandApdu(0x00, 0xB0, 0x00, 0x00, le=257), H("00B00000000101")),
    ("case 2E Le=65536", CommandApdu(0x00, 0xB0, 0x00, 0x00, le=65536), H("00B00000000000")),
    (
        "case 3E",
        CommandApdu(0x00, 0xD6, 0x00, 0x00, DATA256),
        H("00D6000000" + "0100") + DATA256,
    ),
    (
        "case 4E",
        CommandApdu(0x00, 0xD6, 0x01, 0x02, DATA300, le=65536),
        H("00D6010200012C") + DATA300 + H("0000"),
    ),
    (
        "case 4E from a large Le",
        CommandApdu(0x00, 0x88, 0x00, 0x00, H("AABBCC"), le=1000),
        H("0088000000" + "0003" + "AABBCC" + "03E8"),
    ),
]


@pytest.mark.parametrize(("case", "cmd", "raw"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_encoding(case: str, cmd: CommandApdu, raw: bytes) -> None:
    """Each ISO case encodes to the documented bytes, short or extended as needed."""
    assert cmd.to_bytes() == raw


@pytest.mark.parametrize(("case", "cmd", "raw"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_parsing(case: str, cmd: CommandApdu, raw: bytes) -> None:
    """Parsing the documented bytes gives back the command."""
    assert CommandApdu.parse(raw) == cmd


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (H("00A400"), "too short"),
        (H("00A4000C053F00"), "does not match short Lc=5"),
        (H("00A4000C00FF"), "zero Lc"),
        (H("00D60000000000AA"), "Lc=0"),
        (H("00D6000000000211"), "does not match extended Lc=2"),
    ],
)
def test_malformed_commands_raise_value_error(raw: bytes, fragment: str) -> None:
    """Malformed command bytes raise ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=fragment):
        CommandApdu.parse(raw)


@pytest.mark.parametrize(
    "kwargs",
    [{"cla": 256}, {"p2": -1}, {"le": 0}, {"le": 65537}, {"data": bytes(65536)}],
)
def test_invalid_fields_are_refused(kwargs: dict[str, object]) -> None:
    """A command with a field out of range cannot be built."""
    fields: dict[str, object] = {"cla": 0, "ins": 0xB0, "p1": 0, "p2": 0, **kwargs}
    with pytest.raises(ValueError):
        CommandApdu(**fields)  # type: ignore[arg-type]


def test_describe_never_shows_data() -> None:
    """The loggable description has the header and lengths but not the data field."""
    text = CommandApdu(0x00, 0xD6, 0, 0, H("DEADBEEF"), le=4).describe()
    assert text == "00D60000 Lc=4 Le=4"
    assert "DEADBEEF" not in text.upper().replace("00D60000", "")


def test_response_parse_and_sw() -> None:
    """A response splits into data and status word; fewer than two bytes is refused."""
    r = ResponseApdu.parse(H("CAFE9000"))
    assert (r.data, r.sw1, r.sw2, r.sw, r.ok) == (H("CAFE"), 0x90, 0x00, 0x9000, True)
    assert r.to_bytes() == H("CAFE9000")
    with pytest.raises(ValueError, match="too short"):
        ResponseApdu.parse(H("90"))


@pytest.mark.parametrize(
    ("sw", "meaning"),
    [
        (0x9000, "success"),
        (0x6700, "wrong length"),
        (0x6A82, "file or application not found"),
        (0x6982, "security status not satisfied"),
        (0x6A86, "incorrect parameters P1-P2"),
        (0x6D00, "instruction code not supported or invalid"),
        (0x6E00, "class not supported"),
        (0x6110, "16 response bytes still available"),
        (0x6C00, "wrong Le: exactly 256 bytes available"),
        (0x63C2, "verification failed, 2 retries left"),
        (0x6F00, "no precise diagnosis"),
        (0x6A99, "wrong parameters P1-P2"),
        (0x1234, "unknown status word"),
    ],
)
def test_sw_meanings(sw: int, meaning: str) -> None:
    """Status words get their ISO 7816-4 meaning, including the counted families."""
    assert sw_meaning(sw) == meaning


class FakeCard:
    """Answers from a list and records what was sent."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = [H(a) for a in answers]
        self.sent: list[str] = []

    def __call__(self, raw: bytes) -> bytes:
        self.sent.append(raw.hex().upper())
        return self.answers.pop(0)


def test_transceive_plain() -> None:
    """A 9000 answer comes back as is, after one exchange."""
    card = FakeCard(["01029000"])
    r = transceive(card, CommandApdu(0, 0xB0, 0, 0, le=2))
    assert (r.data, r.sw) == (H("0102"), 0x9000)
    assert card.sent == ["00B0000002"]


def test_transceive_follows_61xx_with_get_response() -> None:
    """61xx is followed by GET RESPONSE rounds and their data concatenated."""
    card = FakeCard(["6104", "AABBCCDD6102", "EEFF9000"])
    r = transceive(card, CommandApdu(0x80, 0xAE, 0, 0, DATA8, le=6))
    assert (r.data, r.sw) == (H("AABBCCDDEEFF"), 0x9000)
    assert card.sent == ["80AE000008" + DATA8.hex().upper() + "06", "00C0000004", "00C0000002"]


def test_transceive_retries_6cxx_once_with_exact_le() -> None:
    """6Cxx re-issues the same command with Le=xx, once."""
    card = FakeCard(["6C05", "01020304059000"])
    r = transceive(card, CommandApdu(0, 0xB0, 0, 0, le=256))
    assert r.data == H("0102030405")
    assert card.sent == ["00B0000000", "00B0000005"]
    again = FakeCard(["6C05", "6C04"])
    assert transceive(again, CommandApdu(0, 0xB0, 0, 0, le=256)).sw == 0x6C04
    assert len(again.sent) == 2


def test_transceive_6cxx_inside_get_response() -> None:
    """A GET RESPONSE answered 6Cxx is retried with the exact length too."""
    card = FakeCard(["6100", "6C03", "0A0B0C9000"])
    r = transceive(card, CommandApdu(0, 0xCA, 1, 1, b"\x01", le=3))
    assert r.data == H("0A0B0C")
    assert card.sent[1:] == ["00C0000000", "00C0000003"]


def test_transceive_stops_an_endless_61xx() -> None:
    """A card that never stops answering 61xx ends in ChipStatusError, not a hang."""
    send: Callable[[bytes], bytes] = lambda raw: H("00") + H("6101")  # noqa: E731
    with pytest.raises(ChipStatusError, match="GET RESPONSE") as info:
        transceive(send, CommandApdu(0, 0xB0, 0, 0, le=1))
    assert info.value.sw == 0x6101


def test_chain_splits_and_marks_all_but_last() -> None:
    """Chaining splits the data, sets CLA bit 0x10 on all but the last, Le on the last."""
    cmd = CommandApdu(0x00, 0xD6, 0x00, 0x00, bytes(600), le=4)
    parts = chain(cmd)
    assert [len(p.data) for p in parts] == [255, 255, 90]
    assert [p.cla for p in parts] == [0x10, 0x10, 0x00]
    assert [p.le for p in parts] == [None, None, 4]
    assert b"".join(p.data for p in parts) == cmd.data
    assert chain(CommandApdu(0, 0xA4, 0, 0x0C, H("3F00"))) == [
        CommandApdu(0, 0xA4, 0, 0x0C, H("3F00"))
    ]
    assert [len(p.data) for p in chain(cmd, max_data=200)] == [200, 200, 200]
    with pytest.raises(ValueError, match="max_data"):
        chain(cmd, max_data=0)


commands = st.builds(
    CommandApdu,
    cla=st.integers(0, 255),
    ins=st.integers(0, 255),
    p1=st.integers(0, 255),
    p2=st.integers(0, 255),
    data=st.one_of(st.binary(max_size=260), st.binary(min_size=250, max_size=1200)),
    le=st.one_of(st.none(), st.integers(1, 300), st.integers(1, 65536)),
)


@given(commands)
def test_build_parse_round_trip(cmd: CommandApdu) -> None:
    """Every command survives encoding and parsing unchanged."""
    assert CommandApdu.parse(cmd.to_bytes()) == cmd


@given(st.binary(max_size=300))
def test_parse_arbitrary_bytes(raw: bytes) -> None:
    """Arbitrary bytes either parse to a command that re-encodes stably or raise ValueError."""
    try:
        cmd = CommandApdu.parse(raw)
    except ValueError:
        return
    assert CommandApdu.parse(cmd.to_bytes()) == cmd
    if not cmd.extended:
        assert cmd.to_bytes() == raw


@given(st.binary(max_size=300), st.integers(0, 255), st.integers(0, 255))
def test_response_round_trip(data: bytes, sw1: int, sw2: int) -> None:
    """Response APDUs survive encoding and parsing unchanged."""
    r = ResponseApdu(data, sw1, sw2)
    assert ResponseApdu.parse(r.to_bytes()) == r
