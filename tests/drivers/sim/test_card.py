"""The simulated chip and SAM answer like a strict ISO 7816-4 card."""

from __future__ import annotations

import pytest

from drivers import ktpel_layout as layout
from drivers.iso7816 import CommandApdu, transceive
from drivers.sim.card import SimCard, SimSam, cryptogram

H = bytes.fromhex
SERIAL = b"SIM" + H("0011223344")


@pytest.fixture
def chip() -> SimCard:
    c = SimCard(SERIAL)
    c.power_on()
    return c


def sw(response: bytes) -> str:
    return response[-2:].hex().upper()


def select_ef(chip: SimCard, fid: str = "0101") -> None:
    assert sw(chip.process(H("00A4000C027F10"))) == "9000"
    assert sw(chip.process(H("00A4020C02" + fid))) == "9000"


def test_atr_is_iso_with_a_valid_tck() -> None:
    """The ATR starts with TS=3B and its TCK makes the XOR of T0..TCK zero."""
    atr = SimCard(SERIAL).power_on()
    assert atr[0] == 0x3B
    check = 0
    for b in atr[1:]:
        check ^= b
    assert check == 0
    assert SimCard(SERIAL, t0=True).power_on() == H("3B08") + b"KTPELSIM"


@pytest.mark.parametrize(
    ("apdu", "expected"),
    [
        ("00A4000C023F00", "9000"),
        ("00A4000C027F10", "9000"),
        ("00A4000C020101", "6A82"),  # an EF is only found from inside its DF
        ("00A4020C020101", "6A82"),
        ("00A4000C029999", "6A82"),
        ("00A4040C027F10", "6A86"),
        ("00A40001027F10", "6A86"),
        ("00A4000C017F", "6700"),
        ("00B0000001", "6986"),
        ("00D6000001AA", "6986"),
        ("0020000000", "6D00"),
        ("80A4000C023F00", "6E00"),
        ("10A4000C023F00", "6884"),
        ("00CA020200", "6A88"),
        ("00A4", "6700"),
    ],
)
def test_status_words_from_the_mf(chip: SimCard, apdu: str, expected: str) -> None:
    """Commands from the freshly powered card get the status word a strict card gives."""
    assert sw(chip.process(H(apdu))) == expected


def test_select_with_fcp(chip: SimCard) -> None:
    """SELECT with P2=04 answers an FCP template with the EF's size and id."""
    chip.process(H("00A4000C027F10"))
    response = chip.process(H("00A40204020102") + b"\x00")
    assert sw(response) == "9000"
    assert response[:2] == H("620B")
    assert H("80021000") in response
    assert H("83020102") in response


def test_update_then_read_binary(chip: SimCard) -> None:
    """UPDATE BINARY stores bytes that READ BINARY returns; unwritten bytes read as zero."""
    select_ef(chip)
    assert sw(chip.process(H("00D6000A03ABCDEF"))) == "9000"
    assert chip.process(H("00B0000805")) == H("0000ABCDEF9000")
    assert chip.files() == {0x0101: bytes(10) + H("ABCDEF")}
    assert chip.writes == 1


@pytest.mark.parametrize(
    ("apdu", "expected"),
    [
        ("00B0040001", "6B00"),  # offset 1024 = size: beyond the end
        ("00B003F000", "6C10"),  # 256 asked, 16 left: exact length given
        ("00B003F010", "9000"),
        ("00B00000", "6700"),  # no Le
        ("00B0810000", "6A81"),  # short EF id
        ("00D6040001AA", "6B00"),
        ("00D603FF02AABB", "6700"),  # past the end
        ("00D60000", "6700"),  # no data
    ],
)
def test_binary_limits(chip: SimCard, apdu: str, expected: str) -> None:
    """READ/UPDATE BINARY refuse offsets and lengths outside the 1024-byte EF 0101."""
    select_ef(chip)
    assert sw(chip.process(H(apdu))) == expected


def test_extended_read_past_the_end_warns(chip: SimCard) -> None:
    """An extended READ BINARY asking more than is left gets the rest and 6282."""
    select_ef(chip, "0102")
    response = chip.process(CommandApdu(0, 0xB0, 0x0E, 0x00, le=1000).to_bytes())
    assert sw(response) == "6282"
    assert len(response) == 512 + 2


def test_read_with_transceive_follows_6cxx(chip: SimCard) -> None:
    """transceive() and the card agree: 6Cxx is retried with the exact length."""
    select_ef(chip)
    r = transceive(chip.process, CommandApdu(0, 0xB0, 0x03, 0xFF, le=256))
    assert (r.sw, len(r.data)) == (0x9000, 1)


def test_challenge_and_external_authenticate() -> None:
    """The card accepts the SAM's cryptogram of its challenge once and refuses a wrong one."""
    chip = SimCard(SERIAL, require_auth=True)
    chip.power_on()
    sam = SimSam()
    sam.power_on()
    select_ef(chip)
    assert sw(chip.process(H("00D6000001AA"))) == "6982"
    assert sw(chip.process(H("008200000811223344556677 88".replace(" ", "")))) == "6985"
    challenge = chip.process(layout.GET_CHALLENGE_APDU)[:-2]
    assert len(challenge) == 8
    answer = sam.process(H("80AE000008") + challenge + H("08"))
    assert answer == cryptogram(layout.SIM_SAM_KEY, challenge) + H("9000")
    assert sw(chip.process(H("0082000008") + bytes(8))) == "6300"
    challenge = chip.process(layout.GET_CHALLENGE_APDU)[:-2]
    good = cryptogram(layout.SIM_SAM_KEY, challenge)
    assert sw(chip.process(H("0082000008") + good)) == "9000"
    assert sw(chip.process(H("0082000008") + good)) == "6985"  # challenge used up
    assert sw(chip.process(H("00D6000001AA"))) == "9000"
    chip.power_on()
    select_ef(chip)
    assert sw(chip.process(H("00D6000001AA"))) == "6982"  # power cycle drops the auth


def test_sam_refuses_what_it_does_not_know() -> None:
    """The SAM answers 6E00 for a foreign class, 6D00 for an unknown INS, 6700 for bad Lc."""
    sam = SimSam()
    assert sw(sam.process(H("00AE00000400000000"))) == "6E00"
    assert sw(sam.process(H("80AF000008") + bytes(8))) == "6D00"
    assert sw(sam.process(H("80AE000004") + bytes(4) + H("08"))) == "6700"


def test_t0_mode_answers_case_4_with_61xx() -> None:
    """In T=0 mode a case-4 answer comes as 61xx and GET RESPONSE hands out the data."""
    sam = SimSam(t0=True)
    sam.power_on()
    challenge = bytes(range(8))
    assert sam.process(H("80AE000008") + challenge + H("08")) == H("6108")
    assert sam.process(H("00C0000004")) == cryptogram(layout.SIM_SAM_KEY, challenge)[:4] + H("6104")
    assert sw(sam.process(H("00C0000010"))) == "6C04"
    assert sam.process(H("00C0000004"))[:-2] == cryptogram(layout.SIM_SAM_KEY, challenge)[4:]
    assert sw(sam.process(H("00C0000004"))) == "6985"
    r = transceive(sam.process, CommandApdu(0x80, 0xAE, 0, 0, challenge, le=8))
    assert (r.sw, r.data) == (0x9000, cryptogram(layout.SIM_SAM_KEY, challenge))


def test_files_must_fit_the_layout() -> None:
    """A card cannot be built with files outside the layout or larger than their EF."""
    with pytest.raises(ValueError, match="0105"):
        SimCard(SERIAL, files={0x0105: b"x"})
    with pytest.raises(ValueError, match="0101"):
        SimCard(SERIAL, files={0x0101: bytes(1025)})
