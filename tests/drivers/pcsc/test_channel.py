"""PcscChipChannel against a real pcscd, with the project's strict virtual card via vpcd."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.pcsc_fixtures import require_pyscard

require_pyscard()

from central.seed import new_records  # noqa: E402
from drivers.base import CHIP_DRIVERS, load_driver  # noqa: E402
from drivers.errors import (  # noqa: E402
    ChipDead,
    ChipStatusError,
    DeviceOffline,
    DeviceTimeout,
    NoCard,
)
from drivers.pcsc.channel import PcscChipChannel  # noqa: E402
from drivers.script import ChipStep, ScriptRunner, build_write_script, read_chip_serial  # noqa: E402
from tests.support.pcsc_fixtures import PlugCard, encoder_options  # noqa: E402
from tests.support.pcscd import Pcscd, PcscEnv  # noqa: E402
from tests.support.vcard import StrictCard, blanks, sam, serial_for, strict_card  # noqa: E402

PERSONAL = bytes.fromhex("3174094108900001") * 8  # stands for personal data in a script


def seeded_script() -> list[ChipStep]:
    record = next(new_records(1, seed=5))
    return [ChipStep.model_validate(step) for step in record["chip_script"]]


def steps(*apdus: str) -> list[ChipStep]:
    return [ChipStep(apdu=a) for a in apdus]


def pcsc_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pcsc-")]


def test_seeded_record_script_writes_verifies_and_reads_serial(
    plug: PlugCard, encoder: PcscChipChannel
) -> None:
    """A seeded record's script runs on a T=1 card, reads back equal; the serial is GET DATA."""
    card = plug(lambda: strict_card(7))
    atr = encoder.connect(timeout=2.0)
    assert atr == card.model.power_on()
    runner = ScriptRunner(encoder)
    outcome = runner.run(seeded_script())
    assert outcome.bytes_written > 4000
    assert runner.verify() == outcome.bytes_written
    assert read_chip_serial(encoder) == serial_for(7).hex().upper()
    assert isinstance(card.model, StrictCard)
    assert set(card.model.files()) == {0x0101, 0x0102, 0x0103, 0x0104}


def test_t0_card_needs_get_response_and_le_correction(
    plug: PlugCard, encoder: PcscChipChannel
) -> None:
    """On a T=0 card 61xx is followed by GET RESPONSE and 6Cxx re-issued with the right Le."""
    card = plug(lambda: strict_card(3, t0=True))
    encoder.connect(timeout=2.0)
    script = steps("00A40000023F0000", "00CA010104")  # FCP select (case 4), short Le
    script[1] = ChipStep(apdu="00CA010104", expect_data=serial_for(3).hex())
    ScriptRunner(encoder).run(script)
    sent = [f for f in encoder.frames.snapshot() if f.startswith(("> APDU", "< SW"))]
    assert any(f.startswith("< SW 61") for f in sent)
    assert any(f.startswith("> APDU 00c00000") for f in sent)
    assert "< SW 6c08 len=0" in sent
    runner = ScriptRunner(encoder)
    runner.run(build_write_script({0x0101: PERSONAL}))
    assert runner.verify() == len(PERSONAL)
    assert card.model.power_on()[:2] == b"\x3b\x08"  # T=0 ATR: no interface bytes


def test_reader_uid_is_the_serial_when_the_reader_answers_ff_ca(
    plug: PlugCard, encoder: PcscChipChannel
) -> None:
    """A reader answering FF CA 00 00 00 gives the blank's serial without any GET DATA."""
    plug(lambda: strict_card(9), reader_uid=True)
    encoder.connect(timeout=2.0)
    assert encoder.uid() == serial_for(9).hex().upper()
    assert read_chip_serial(encoder) == serial_for(9).hex().upper()
    assert not any("00ca0101" in f for f in encoder.frames.snapshot())


def test_missing_file_reports_step_ins_sw_meaning_without_data(
    plug: PlugCard, encoder: PcscChipChannel
) -> None:
    """A missing file stops the script with step, INS, 6A82 and meaning, never data bytes."""
    plug(lambda: strict_card(1))
    encoder.connect(timeout=2.0)
    script = build_write_script({0x0101: PERSONAL})
    script.insert(3, ChipStep(apdu="00A4020C020999"))
    with pytest.raises(ChipStatusError) as info:
        ScriptRunner(encoder).run(script)
    assert str(info.value) == "step 3 (INS A4): SW 6A82 file or application not found"
    assert info.value.sw == 0x6A82
    assert PERSONAL[:8].hex() not in " ".join(info.value.frames).lower()


def test_wrong_length_answers_6700_and_6a84(plug: PlugCard, encoder: PcscChipChannel) -> None:
    """A SELECT with a 3-byte file id gets 6700, and a write running past the EF's end gets 6A84."""
    plug(lambda: strict_card(1))
    encoder.connect(timeout=2.0)
    with pytest.raises(ChipStatusError, match=r"^step 0 \(INS A4\): SW 6700 wrong length$"):
        ScriptRunner(encoder).run(steps("00A4000C03010203"))
    past_end = f"00D603F020{PERSONAL[:32].hex()}"  # 1008 + 32 > 1024 bytes of EF 0101
    with pytest.raises(ChipStatusError) as info:
        ScriptRunner(encoder).run(steps("00A4000C027F10", "00A4020C020101", past_end))
    assert str(info.value) == "step 2 (INS D6): SW 6A84 not enough memory space in the file"
    assert PERSONAL[:32].hex() not in str(info.value).lower()


def test_wrong_offset_answers_6b00(plug: PlugCard, encoder: PcscChipChannel) -> None:
    """An UPDATE BINARY at an offset outside the EF stops the script with 6B00 and its meaning."""
    plug(lambda: strict_card(1))
    encoder.connect(timeout=2.0)
    script = steps("00A4000C027F10", "00A4020C020103", f"00D6040008{PERSONAL[:8].hex()}")
    with pytest.raises(ChipStatusError) as info:
        ScriptRunner(encoder).run(script)
    assert str(info.value) == (
        "step 2 (INS D6): SW 6B00 wrong parameters P1-P2 (offset outside the EF)"
    )


def test_card_removed_mid_script_is_nocard_and_the_next_card_works(
    plug: PlugCard, encoder: PcscChipChannel, pcscd: Pcscd
) -> None:
    """A card leaving mid-script raises NoCard, and the same channel serves the next card."""
    card = plug(lambda: strict_card(1))
    encoder.connect(timeout=2.0)
    card.remove_after(6)
    with pytest.raises(NoCard, match="card removed during the exchange") as info:
        ScriptRunner(encoder).run(seeded_script())
    assert not info.value.retryable
    card.stop()
    assert encoder.reader is None
    plug(lambda: strict_card(2))
    encoder.connect(timeout=2.0)
    assert read_chip_serial(encoder) == serial_for(2).hex().upper()


@pytest.mark.parametrize("deadline", ["auto", "thread"])
def test_hung_card_times_out_at_the_deadline_and_the_channel_recovers(
    plug: PlugCard, pcscd: Pcscd, deadline: str
) -> None:
    """A hung card raises DeviceTimeout at the deadline, so does its reader; the next card works."""
    options = encoder_options(pcscd, transmit_timeout_s=0.3, deadline=deadline)
    channel = PcscChipChannel.from_options(options)
    try:
        card = plug(lambda: strict_card(1))
        channel.connect(timeout=2.0)
        ScriptRunner(channel).run(steps("00A4000C027F10"))
        card.hang()
        start = time.monotonic()
        with pytest.raises(DeviceTimeout, match=r"no answer to INS A4 within 0\.3 s"):
            ScriptRunner(channel).run(steps("00A4020C020101"))
        assert 0.3 <= time.monotonic() - start < 0.6
        # "auto" cut the call and its context; "thread" left the worker on the hung call
        assert bool(pcsc_threads()) is (deadline == "thread")
        start = time.monotonic()
        with pytest.raises(DeviceTimeout, match="blocked"):
            channel.connect(timeout=0.2)  # pcscd holds the reader for the hung exchange
        assert time.monotonic() - start < 1.6
        card.stop()  # the hung exchange fails at last: abandoned workers clean up and end
        deadline_s = time.monotonic() + 3.0
        while pcsc_threads() and time.monotonic() < deadline_s:
            time.sleep(0.01)
        assert not pcsc_threads()
        plug(lambda: strict_card(2))
        channel.connect(timeout=2.0)
        assert read_chip_serial(channel) == serial_for(2).hex().upper()
    finally:
        channel.close()


def test_pcscd_restart_between_cards_keeps_the_channel_working(
    plug: PlugCard, encoder: PcscChipChannel, pcscd: Pcscd
) -> None:
    """After a pcscd restart between cards the same channel (new context) writes the next card."""
    plug(lambda: strict_card(1))
    encoder.connect(timeout=2.0)
    ScriptRunner(encoder).run(build_write_script({0x0103: PERSONAL}))
    encoder.disconnect()
    pcscd.restart()
    card = plug(lambda: strict_card(2))
    encoder.connect(timeout=2.0)
    runner = ScriptRunner(encoder)
    runner.run(build_write_script({0x0103: PERSONAL}))
    assert runner.verify() == len(PERSONAL)
    assert isinstance(card.model, StrictCard)
    assert card.model.files() == {0x0103: PERSONAL}


def test_pcscd_gone_mid_script_is_offline_then_recovers(
    plug: PlugCard, encoder: PcscChipChannel, pcscd: Pcscd
) -> None:
    """pcscd stopping under a card raises DeviceOffline; once it is back, connect works again."""
    plug(lambda: strict_card(1))
    encoder.connect(timeout=2.0)
    pcscd.stop()
    with pytest.raises(DeviceOffline, match="service or reader gone") as info:
        ScriptRunner(encoder).run(seeded_script())
    assert info.value.retryable
    with pytest.raises(DeviceOffline, match="no PC/SC service"):
        encoder.connect(timeout=0.2)
    pcscd.start()
    plug(lambda: strict_card(4))
    encoder.connect(timeout=2.0)
    assert read_chip_serial(encoder) == serial_for(4).hex().upper()


def test_connect_without_card_or_reader_times_out(pcscd: Pcscd) -> None:
    """connect() raises NoCard for an empty reader and DeviceOffline when no reader matches."""
    channel = PcscChipChannel.from_options(encoder_options(pcscd))
    start = time.monotonic()
    with pytest.raises(NoCard, match="no card in"):
        channel.connect(timeout=0.3)
    assert 0.3 <= time.monotonic() - start < 1.0
    other = PcscChipChannel.from_options({"reader": "^No Such Reader"})
    with pytest.raises(DeviceOffline, match="no reader matches"):
        other.connect(timeout=0.1)
    assert not pcsc_threads()


def test_card_arriving_during_connect_is_taken(plug: PlugCard, encoder: PcscChipChannel) -> None:
    """connect() waits for a card that arrives after it started, like a blank the printer parks."""
    timer = threading.Timer(0.2, lambda: plug(lambda: strict_card(5), wait=False))
    timer.start()
    try:
        encoder.connect(timeout=3.0)
    finally:
        timer.join()
    assert read_chip_serial(encoder) == serial_for(5).hex().upper()


def test_sam_steps_authenticate_through_the_second_reader(
    plug: PlugCard, encoder: PcscChipChannel
) -> None:
    """SAM steps run through sam_channel(): writes pass only after the SAM's cryptogram."""
    card = plug(lambda: strict_card(1, require_auth=True))
    plug(sam, slot=1)
    encoder.connect(timeout=2.0)
    with pytest.raises(ChipStatusError, match="SW 6982"):
        ScriptRunner(encoder).run(build_write_script({0x0101: PERSONAL}))
    runner = ScriptRunner(encoder, encoder.sam_channel())
    outcome = runner.run(build_write_script({0x0101: PERSONAL}, authenticate=True))
    assert outcome.captured == ("challenge", "cryptogram")
    assert runner.verify() == len(PERSONAL)
    assert isinstance(card.model, StrictCard)
    assert card.model.files() == {0x0101: PERSONAL}
    encoder.disconnect()
    sam_channel = encoder.sam_channel()
    assert sam_channel is not None
    assert sam_channel.reader is None  # the SAM session ends with the card's


def test_forced_protocol_mismatch_is_chip_dead(plug: PlugCard, pcscd: Pcscd) -> None:
    """A T=0-only card on an encoder configured for T=1 is refused as ChipDead (invalid blank)."""
    plug(lambda: strict_card(1, t0=True))
    channel = PcscChipChannel.from_options(encoder_options(pcscd, protocol="T1"))
    with pytest.raises(ChipDead, match="0x8010000F"):
        channel.connect(timeout=1.0)
    channel.close()


def test_reset_gives_the_atr_and_clears_the_selection(
    plug: PlugCard, encoder: PcscChipChannel
) -> None:
    """A warm reset returns the ATR and the card forgets the selected file, as a real chip does."""
    plug(lambda: strict_card(1))
    atr = encoder.connect(timeout=2.0)
    ScriptRunner(encoder).run(steps("00A4000C027F10", "00A4020C020101"))
    assert encoder.reset() == atr
    with pytest.raises(ChipStatusError, match="SW 6986"):
        ScriptRunner(encoder).run(steps("00B0000008"))


def test_fresh_blank_per_power_on_gives_each_connect_a_new_chip(
    plug: PlugCard, encoder: PcscChipChannel
) -> None:
    """With fresh_per_power_on every connect finds an empty chip with the next serial."""
    plug(blanks(20), fresh_per_power_on=True)
    serials = []
    for _ in range(3):
        encoder.connect(timeout=2.0)
        serials.append(read_chip_serial(encoder))
        with pytest.raises(ChipStatusError, match="differs"):  # nothing written yet
            ScriptRunner(encoder).run(
                [
                    ChipStep(apdu="00A4000C027F10"),
                    ChipStep(apdu="00A4020C020104"),
                    ChipStep(apdu="00B0000008", expect_data=PERSONAL[:8].hex()),
                ]
            )
        ScriptRunner(encoder).run(build_write_script({0x0104: PERSONAL}))
        encoder.disconnect()
    assert serials == [serial_for(n).hex().upper() for n in (20, 21, 22)]


def test_written_chip_keeps_its_files_across_power_cycles_until_reset_files(
    plug: PlugCard, encoder: PcscChipChannel
) -> None:
    """A card keeps what was written across reconnects, and reset_files() blanks it."""
    card = plug(lambda: strict_card(1))
    read = steps("00A4000C027F10", "00A4020C020104")
    read.append(ChipStep(apdu="00B0000040", expect_data=PERSONAL.hex()))
    encoder.connect(timeout=2.0)
    ScriptRunner(encoder).run(build_write_script({0x0104: PERSONAL}))
    encoder.disconnect()
    encoder.connect(timeout=2.0)
    ScriptRunner(encoder).run(read)
    card.reset_files()
    with pytest.raises(ChipStatusError, match=r"step 2 .*differs"):
        ScriptRunner(encoder).run(read)


def test_options_name_the_bad_key() -> None:
    """Unknown or invalid options raise ValueError naming the key."""
    with pytest.raises(ValueError, match="readr"):
        PcscChipChannel.from_options({"reader": "x", "readr": "y"})
    with pytest.raises(ValueError, match=r"reader: .*regular expression"):
        PcscChipChannel.from_options({"reader": "Virtual ("})
    with pytest.raises(ValueError, match="protocol"):
        PcscChipChannel.from_options({"reader": "x", "protocol": "T2"})
    with pytest.raises(ValueError, match="transmit_timeout_s"):
        PcscChipChannel.from_options({"reader": "x", "transmit_timeout_s": 0})
    assert PcscChipChannel.from_options({"reader": "x"}).sam_channel() is None


def test_pcsc_env_options_drive_the_registered_encoder(pcsc_env: PcscEnv) -> None:
    """The pcsc_env fixture's options build the "pcsc" driver; each connect meets a new blank."""
    cls = load_driver(CHIP_DRIVERS, "pcsc")
    channel = cls.from_options(pcsc_env.options, printer=None)
    try:
        serials = []
        for record in new_records(2, seed=3):
            channel.connect(timeout=2.0)
            runner = ScriptRunner(channel, channel.sam_channel())
            runner.run([ChipStep.model_validate(s) for s in record["chip_script"]])
            runner.verify()
            serials.append(read_chip_serial(channel))
            channel.disconnect()
        assert serials[0] != serials[1]
    finally:
        channel.close()
