"""The personalisation script runner against the simulated card and SAM."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from drivers import ktpel_layout as layout
from drivers.errors import ChipStatusError
from drivers.script import (
    ChipStep,
    ScriptError,
    ScriptRunner,
    build_write_script,
    read_chip_serial,
    sw_matches,
)
from drivers.sim.card import SimSam
from drivers.sim.encoder import SimChipChannel
from drivers.sim.printer import SimPrinter

H = bytes.fromhex
SECRET = b'{"nama":"BUDI SANTOSO","nik":"3171011203850001"}'
FILES = {
    0x0101: SECRET,
    0x0102: bytes((i * 7) % 256 for i in range(4096)),
    0x0104: bytes(range(200)),
}


def connect(printer: SimPrinter, **kwargs: bool) -> SimChipChannel:
    channel = SimChipChannel(printer, **kwargs)
    channel.connect(timeout=0.5)
    return channel


@pytest.fixture
def fed(printer: SimPrinter) -> SimPrinter:
    printer.feed()
    return printer


def test_full_script_writes_and_verifies(fed: SimPrinter, state_file: Path) -> None:
    """A whole-layout script runs, reads back equal, and the chip holds the data."""
    card = connect(fed)
    runner = ScriptRunner(card)
    outcome = runner.run(build_write_script(FILES))
    assert outcome.steps_run == 2 + 3 + 1 + 17 + 1
    assert outcome.bytes_written == sum(len(c) for c in FILES.values())
    assert outcome.files_written == ("0101", "0102", "0104")
    assert runner.verify() == outcome.bytes_written
    card.disconnect()
    in_path = fed.card_in_path()
    assert in_path is not None
    assert H(in_path.chip["0101"]) == SECRET
    assert H(in_path.chip["0102"]) == FILES[0x0102].rstrip(b"\x00")


def test_wrong_sw_names_step_ins_sw_and_meaning_without_data(fed: SimPrinter) -> None:
    """An unexpected status word raises ChipStatusError naming step, INS, SW, meaning only."""
    steps = [
        *build_write_script({0x0101: SECRET}),
        ChipStep(apdu=f"00D603FF{len(SECRET):02X}{SECRET.hex()}"),  # past the end
    ]
    with pytest.raises(ChipStatusError) as info:
        ScriptRunner(connect(fed)).run(steps)
    err = info.value
    assert str(err) == "step 4 (INS D6): SW 6700 wrong length"
    assert err.sw == 0x6700
    assert err.frames
    dump = str(err) + " ".join(err.frames)
    assert SECRET.hex().upper()[:8] not in dump.upper()
    assert "BUDI" not in dump


def test_missing_file_reports_6a82(fed: SimPrinter) -> None:
    """Selecting an EF the card does not have fails at that step with 6A82."""
    steps = [ChipStep(apdu="00A4000C027F10"), ChipStep(apdu="00A4020C020109")]
    with pytest.raises(ChipStatusError, match=r"^step 1 \(INS A4\): SW 6A82 file or application"):
        ScriptRunner(connect(fed)).run(steps)


def test_expected_error_status_and_wildcards(fed: SimPrinter) -> None:
    """A step may expect an error SW, with x wildcards; it is then not a failure."""
    steps = [ChipStep(apdu="00A4000C029999", expect_sw=["6Axx"])]
    assert ScriptRunner(connect(fed)).run(steps).steps_run == 1
    assert sw_matches("61xx", 0x6110)
    assert sw_matches("63Cx", 0x63C2)
    assert not sw_matches("9000", 0x6A82)


def test_expect_data_and_sha256(fed: SimPrinter) -> None:
    """expect_data and expect_sha256 compare the response data; mismatch names no data."""
    chip_card = fed.card_in_path()
    assert chip_card is not None
    serial = chip_card.chip_serial
    good = [
        ChipStep(apdu="00CA010100", expect_data=serial.hex()),
        ChipStep(apdu="00CA010100", expect_sha256=hashlib.sha256(serial).hexdigest().upper()),
    ]
    card = connect(fed)
    assert ScriptRunner(card).run(good).steps_run == 2
    with pytest.raises(ChipStatusError, match="response data differs") as info:
        ScriptRunner(card).run([ChipStep(apdu="00CA010100", expect_data="00" * 8)])
    assert serial.hex().upper() not in str(info.value).upper()
    with pytest.raises(ChipStatusError, match="digest differs"):
        ScriptRunner(card).run([ChipStep(apdu="00CA010100", expect_sha256="00" * 32)])


def test_sam_challenge_flow_unlocks_writing(fed: SimPrinter) -> None:
    """A card that demands authentication is written after the SAM answers its challenge."""
    card = connect(fed, require_auth=True)
    sam = connect(fed, sam_mode=True)
    with pytest.raises(ChipStatusError, match="SW 6982 security status not satisfied"):
        ScriptRunner(card).run(build_write_script({0x0101: SECRET}))
    runner = ScriptRunner(card, sam)
    outcome = runner.run(build_write_script({0x0101: SECRET}, authenticate=True))
    assert outcome.captured == ("challenge", "cryptogram")
    assert len(outcome.values["cryptogram"]) == 8
    assert "values" not in repr(outcome)
    assert outcome.values["challenge"].hex() not in repr(outcome)
    assert runner.verify() == len(SECRET)


def test_wrong_sam_key_fails_external_authenticate(fed: SimPrinter) -> None:
    """A SAM holding another key gives a cryptogram the card refuses with 6300."""
    card = connect(fed, require_auth=True)
    sam = connect(fed, sam_mode=True)
    sam._card = SimSam(key=b"another key")  # swap the module behind the connected reader
    with pytest.raises(ChipStatusError, match=r"step 2 \(INS 82\): SW 6300"):
        ScriptRunner(card, sam).run(build_write_script({0x0101: SECRET}, authenticate=True))


def test_t0_card_and_sam(fed: SimPrinter) -> None:
    """Over T=0 (61xx answers) the same script runs: the runner uses GET RESPONSE."""
    card = connect(fed, require_auth=True, t0=True)
    sam = connect(fed, sam_mode=True, t0=True)
    runner = ScriptRunner(card, sam)
    runner.run(build_write_script(FILES, authenticate=True))
    assert runner.verify() == sum(len(c) for c in FILES.values())


def test_sam_step_without_sam_is_a_script_error(fed: SimPrinter) -> None:
    """A SAM step with no SAM configured fails clearly before sending anything to it."""
    with pytest.raises(ScriptError, match="step 1 needs the SAM"):
        ScriptRunner(connect(fed)).run(build_write_script({0x0101: b"x"}, authenticate=True))


def test_uncaptured_placeholder_is_a_script_error(fed: SimPrinter) -> None:
    """A placeholder no earlier step captured stops the run, naming the step and the name."""
    with pytest.raises(ScriptError, match=r"step 0: placeholder \{nothing\} was not captured"):
        ScriptRunner(connect(fed)).run([ChipStep(apdu="00820000{nothing}")])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"apdu": "00A4000C0501"}, "malformed APDU"),
        ({"apdu": "00A4000C023F00", "expect_sw": ["90"]}, "expect_sw.0"),
        ({"apdu": "00A4000C023F00", "expect_sw": []}, "expect_sw"),
        ({"apdu": "00B0000010", "expect_data": "ABC"}, "expect_data"),
        ({"apdu": "00B0000010", "expect_sha256": "00" * 31}, "expect_sha256"),
    ],
)
def test_unusable_steps_are_refused_when_read(fields: dict[str, object], message: str) -> None:
    """Malformed APDUs, SW patterns and expected data are refused before any card is fed."""
    with pytest.raises(ValidationError, match=message):
        ChipStep.model_validate(fields)


def test_short_ef_id_writes_are_refused(fed: SimPrinter) -> None:
    """An UPDATE BINARY by short EF id could not be verified, so it is refused."""
    steps = [ChipStep(apdu="00A4000C027F10"), ChipStep(apdu="00D6810001AA", expect_sw=["xxxx"])]
    with pytest.raises(ScriptError, match="short EF id"):
        ScriptRunner(connect(fed)).run(steps)


def test_verify_detects_a_changed_byte(fed: SimPrinter) -> None:
    """A byte changed after writing makes verify() name the file and the offset."""
    card = connect(fed)
    runner = ScriptRunner(card)
    runner.run(build_write_script(FILES))
    card.transmit(H("00A4020C020102"))
    card.transmit(H("00D6012C01") + bytes(((300 * 7 + 1) % 256,)))
    with pytest.raises(ChipStatusError, match="read-back of file 0102 differs at offset 300"):
        runner.verify()


def test_verify_replays_the_select_chain(fed: SimPrinter) -> None:
    """Files selected by P1=00 and re-selected DFs are reached again at verify."""
    steps = [
        ChipStep(apdu="00A4000C027F10"),
        ChipStep(apdu="00A4000C020101"),
        ChipStep(apdu="00D6000002AAAA"),
        ChipStep(apdu="00A4000C023F00"),
        ChipStep(apdu="00A4000C027F10"),
        ChipStep(apdu="00A4020C020103"),
        ChipStep(apdu="00D6000102BBBB"),
    ]
    runner = ScriptRunner(connect(fed))
    assert runner.run(steps).files_written == ("0101", "0103")
    assert runner.verify() == 4


def test_read_chip_serial_prefers_uid_then_get_data(fed: SimPrinter) -> None:
    """The serial comes from the reader's UID, else from GET DATA, as upper-case hex."""

    class NoUid(SimChipChannel):
        def _uid_internal(self) -> str | None:
            return None

    in_path = fed.card_in_path()
    assert in_path is not None
    expected = in_path.chip_serial.hex().upper()
    assert read_chip_serial(connect(fed)) == expected
    no_uid = NoUid(fed)
    no_uid.connect(timeout=0.5)
    assert read_chip_serial(no_uid) == expected
    assert layout.GET_SERIAL_APDU.hex().upper()[:8] in " ".join(no_uid.frames.snapshot()).upper()
