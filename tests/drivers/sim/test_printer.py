"""The simulated printer: persistence, atomic writes, seeded faults, timing, the encoder."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.base import (
    CHIP_DRIVERS,
    PRINTER_DRIVERS,
    CardPosition,
    PrinterState,
    PrintJob,
    load_driver,
)
from drivers.errors import (
    CardJam,
    ChipDead,
    CoverOpen,
    DeviceBusy,
    DeviceError,
    DeviceOffline,
    FeederEmpty,
    NoCard,
    PrinterError,
    PrintFailed,
    RibbonOut,
)
from drivers.sim import state as simstate
from drivers.sim.encoder import SimChipChannel
from drivers.sim.printer import SimPrinter, SimTimings
from drivers.sim.state import atomic_write

MakeSim = Callable[..., SimPrinter]
H = bytes.fromhex
JOB = PrintJob(label="rec-1", front=b"FRONT-PANEL-BYTES", back=b"BACK")


def test_registered_names_load_the_simulator() -> None:
    """The driver registry's name "sim" resolves to the simulator classes."""
    assert load_driver(PRINTER_DRIVERS, "sim") is SimPrinter
    assert load_driver(CHIP_DRIVERS, "sim") is SimChipChannel


def test_full_cycle_moves_one_card(printer: SimPrinter) -> None:
    """feed → print → eject takes one blank from the hopper to the output tray."""
    serial = printer.feed()
    assert serial is not None
    assert serial.startswith("SIM")
    assert len(serial) == 13
    assert printer.status().card is CardPosition.CONTACT
    printer.print_card(JOB)
    assert printer.status().card is CardPosition.PRINT
    printer.eject()
    trays = printer.trays()
    assert trays["output"] == [serial]
    assert serial not in trays["hopper"]
    assert len(trays["hopper"]) == 4
    status = printer.status()
    assert (status.state, status.card, status.hopper) == (PrinterState.READY, CardPosition.NONE, 4)
    assert status.ribbon_left == 999


def test_state_survives_a_new_printer_on_the_same_file(
    printer: SimPrinter, state_file: Path
) -> None:
    """A card left at the contact station is still there for a printer built after a crash."""
    serial = printer.feed()
    again = SimPrinter(state_file, timings=SimTimings.instant(), hopper=50)
    card = again.card_in_path()
    assert card is not None
    assert (card.serial, card.position) == (serial, CardPosition.CONTACT)
    assert again.status().hopper == 4  # the hopper argument only seeds a new file
    again.reject()
    assert again.trays()["reject"] == [serial]


def test_print_records_label_and_digests_never_raw_bytes(
    printer: SimPrinter, state_file: Path
) -> None:
    """The state file keeps the job label and SHA-256 of each panel, not the panel bytes."""
    printer.feed()
    printer.print_card(JOB)
    printer.eject()
    (card,) = printer.tray_cards("output")
    assert card.label == "rec-1"
    assert card.printed == "done"
    assert card.front_sha256 is not None
    assert len(card.front_sha256) == 64
    assert b"FRONT-PANEL-BYTES" not in state_file.read_bytes()


def test_two_writers_of_one_state_file_never_take_each_others_file(tmp_path: Path) -> None:
    """The daemon's printer and a technician's tool saving the same state file at once
    (threads here, processes in the field) each replace it whole, never failing on a
    temporary file the other renamed away."""
    target = tmp_path / "printer.json"
    errors: list[OSError] = []

    def writer(tag: bytes) -> None:
        try:
            for _ in range(300):
                atomic_write(target, tag * 100)
        except OSError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in (b"a", b"b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert target.read_bytes() in (b"a" * 100, b"b" * 100)


def test_state_write_is_atomic(
    printer: SimPrinter, state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between writing the temporary file and renaming it leaves the old file whole."""
    before = state_file.read_bytes()
    calls: list[tuple[str, str]] = []

    def crash(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append((os.fspath(src), os.fspath(dst)))
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)  # the simulator writes with os.replace
    with pytest.raises(DeviceOffline):
        printer.feed()
    monkeypatch.undo()
    [(tmp, dst)] = calls
    assert dst == str(state_file)
    assert tmp.startswith(str(state_file) + ".")
    assert tmp.endswith(".tmp")
    assert state_file.read_bytes() == before
    assert json.loads(Path(calls[0][0]).read_bytes())["path"] is not None  # the new state
    assert SimPrinter(state_file).card_in_path() is None


def test_corrupt_state_file_is_refused(state_file: Path) -> None:
    """A state file that is not the simulator's is refused with a clear error."""
    state_file.write_text('{"hopper": 3}')
    with pytest.raises(ValueError, match="sim state file"):
        SimPrinter(state_file)


def _outcomes(printer: SimPrinter, cycles: int) -> list[str]:
    """Run cycles and name what happened at each step (reject clears any failure)."""
    seen: list[str] = []
    for _ in range(cycles):
        for step in (printer.feed, lambda: printer.print_card(JOB), printer.eject):
            try:
                step()
                seen.append("ok")
            except DeviceError as exc:
                seen.append(type(exc).__name__)
                printer.close_cover()
                printer.replace_ribbon()
                printer.reject()
                break
    return seen


FAULT_MIX = {"feed_jam": 0.1, "print_fail": 0.2, "eject_jam": 0.1, "feeder_misfeed": 0.1}


def test_seeded_faults_are_reproducible(tmp_path: Path) -> None:
    """The same seed gives the same sequence of faults; another seed a different one."""

    def run(name: str, seed: int) -> list[str]:
        p = SimPrinter(
            tmp_path / name,
            timings=SimTimings.instant(),
            faults=simstate.SimFaults(**FAULT_MIX),
            seed=seed,
            hopper=100,
        )
        return _outcomes(p, 30)

    first, second, other = run("a.json", 7), run("b.json", 7), run("c.json", 8)
    assert first == second
    assert first != other
    assert {"CardJam", "PrintFailed", "FeederEmpty"} <= set(first)


def test_fault_sequence_continues_after_restart(tmp_path: Path) -> None:
    """A printer rebuilt on the same file continues the seed's fault sequence, not restarts it."""

    def make(name: str) -> SimPrinter:
        return SimPrinter(
            tmp_path / name,
            timings=SimTimings.instant(),
            faults=simstate.SimFaults(**FAULT_MIX),
            seed=3,
            hopper=100,
        )

    whole = _outcomes(make("whole.json"), 20)
    part = _outcomes(make("split.json"), 10)
    part += _outcomes(make("split.json"), 10)
    assert part == whole


def test_feed_jam_leaves_card_jammed_until_reject(make_sim: MakeSim) -> None:
    """A feed jam raises CardJam, keeps the card jammed in the path; reject clears it."""
    printer = make_sim(feed_jam=1.0)
    with pytest.raises(CardJam) as info:
        printer.feed()
    assert info.value.frames  # the frame dump travels with the error
    status = printer.status()
    assert (status.state, status.card) == (PrinterState.JAM, CardPosition.JAMMED)
    with pytest.raises(CardJam):
        printer.feed()
    with pytest.raises(CardJam):
        printer.eject()
    jammed = printer.card_in_path()
    assert jammed is not None
    printer.reject()
    assert printer.trays()["reject"] == [jammed.serial]
    assert printer.status().state is PrinterState.READY


def test_reset_leaves_a_jammed_card_jammed_until_rejected(make_sim: MakeSim) -> None:
    """reset() moves nothing: the jam is the card stuck in the path, as the path sensor
    sees it, and only rejecting the card clears it."""
    printer = make_sim(eject_jam=1.0)
    printer.feed()
    with pytest.raises(CardJam):
        printer.eject()
    printer.reset()
    status = printer.status()
    assert (status.state, status.card) == (PrinterState.JAM, CardPosition.JAMMED)
    with pytest.raises(CardJam):
        printer.eject()
    printer.reject()
    assert len(printer.trays()["reject"]) == 1
    assert printer.card_in_path() is None
    assert printer.status().state is PrinterState.READY


def test_misfeed_raises_feeder_empty_and_moves_nothing(make_sim: MakeSim) -> None:
    """A misfeed raises FeederEmpty, leaves the hopper full and the path empty."""
    printer = make_sim(feeder_misfeed=1.0)
    with pytest.raises(FeederEmpty, match="misfeed"):
        printer.feed()
    assert printer.card_in_path() is None
    assert printer.status().hopper == 5
    assert printer.counters()["misfeeds"] == 1


def test_empty_hopper(make_sim: MakeSim) -> None:
    """An empty hopper raises FeederEmpty, status says feeder_empty, loading blanks fixes it."""
    printer = make_sim(hopper=0)
    assert printer.status().state is PrinterState.FEEDER_EMPTY
    with pytest.raises(FeederEmpty):
        printer.feed()
    assert printer.card_in_path() is None
    (new,) = printer.load_blanks(1)
    assert printer.feed() == new


def test_print_fail_keeps_card_at_print_position(make_sim: MakeSim) -> None:
    """A print fault raises PrintFailed; the card stays under the head, ribbon used."""
    printer = make_sim(print_fail=1.0)
    printer.feed()
    with pytest.raises(PrintFailed):
        printer.print_card(JOB)
    card = printer.card_in_path()
    assert card is not None
    assert (card.position, card.printed) == (CardPosition.PRINT, "failed")
    assert printer.status().ribbon_left == 999


def test_ribbon_out_keeps_card_at_contact(make_sim: MakeSim, state_file: Path) -> None:
    """Ribbon out raises RibbonOut, status says ribbon_out, the card waits at contact."""
    printer = make_sim(ribbon_out=1.0)
    printer.feed()
    with pytest.raises(RibbonOut):
        printer.print_card(JOB)
    assert printer.status().state is PrinterState.RIBBON_OUT
    assert printer.status().card is CardPosition.CONTACT
    fixed = SimPrinter(state_file, timings=SimTimings.instant())
    with pytest.raises(RibbonOut, match="finished"):
        fixed.print_card(JOB)
    fixed.replace_ribbon(10)
    fixed.print_card(JOB)
    assert fixed.status().ribbon_left == 9


def test_cover_open_stops_movement(make_sim: MakeSim) -> None:
    """An opened cover raises CoverOpen, moves no card, and closing it resumes work."""
    printer = make_sim(cover_open=1.0)
    with pytest.raises(CoverOpen):
        printer.feed()
    assert printer.status().state is PrinterState.COVER_OPEN
    assert printer.card_in_path() is None
    printer.close_cover()
    assert printer.status().state is PrinterState.READY


def test_manual_cover(printer: SimPrinter) -> None:
    """A technician opening the cover blocks feed and reject of a card until it is closed."""
    printer.feed()
    printer.open_cover()
    with pytest.raises(CoverOpen):
        printer.reject()
    printer.close_cover()
    printer.reject()
    assert len(printer.trays()["reject"]) == 1


def test_chip_dead_is_decided_at_feed_and_persisted(make_sim: MakeSim, state_file: Path) -> None:
    """A blank with a dead chip gives ChipDead at connect, also after a restart."""
    printer = make_sim(chip_dead=1.0)
    printer.feed()
    with pytest.raises(ChipDead):
        SimChipChannel(printer).connect(timeout=0.1)
    restarted = SimPrinter(state_file, timings=SimTimings.instant())
    with pytest.raises(ChipDead):
        SimChipChannel(restarted).connect(timeout=0.1)


def test_movement_without_a_card(printer: SimPrinter) -> None:
    """Print and eject need a card; feed refuses while one is in the path; reject is a no-op."""
    with pytest.raises(PrinterError, match="no card"):
        printer.print_card(JOB)
    with pytest.raises(PrinterError, match="no card"):
        printer.eject()
    printer.reject()
    printer.feed()
    with pytest.raises(PrinterError, match="already in the path"):
        printer.feed()


def test_steps_take_their_configured_time(state_file: Path) -> None:
    """Each physical step sleeps its configured time."""
    timings = SimTimings(feed=30, print=60, eject=0, reject=0, status=0)
    printer = SimPrinter(state_file, timings=timings)
    start = time.monotonic()
    printer.feed()
    printer.print_card(JOB)
    assert time.monotonic() - start >= 0.09


def test_busy_while_printing(state_file: Path) -> None:
    """During a print another thread sees status busy and a second command gets DeviceBusy."""
    printer = SimPrinter(state_file, timings=SimTimings(feed=0, print=300, status=0))
    printer.feed()
    worker = threading.Thread(target=printer.print_card, args=(JOB,), name="print")
    worker.start()
    try:
        deadline = time.monotonic() + 2
        while printer.status().state is not PrinterState.BUSY and time.monotonic() < deadline:
            time.sleep(0.005)
        assert printer.status().state is PrinterState.BUSY
        with pytest.raises(DeviceBusy):
            printer.eject()
    finally:
        worker.join()
    assert printer.status().state is PrinterState.READY


def test_from_options_builds_and_names_bad_keys(tmp_path: Path) -> None:
    """from_options accepts the config table and names an unknown or invalid key."""
    printer = SimPrinter.from_options(
        {
            "state_file": str(tmp_path / "p.json"),
            "hopper": 3,
            "seed": 9,
            "timings_ms": {"feed": 0, "print": 0},
            "faults": {"feed_jam": 0.0},
            "serial_prefix": "KTP",
        }
    )
    assert printer.status().hopper == 3
    serial = printer.feed()
    assert serial is not None
    assert serial.startswith("KTP")
    with pytest.raises(ValueError, match="hoper"):
        SimPrinter.from_options({"state_file": str(tmp_path / "q.json"), "hoper": 3})
    with pytest.raises(ValueError, match=r"faults\.feed_jam"):
        SimPrinter.from_options({"state_file": str(tmp_path / "q.json"), "faults": {"feed_jam": 2}})
    with pytest.raises(ValueError, match=r"timings_ms\.fed"):
        SimPrinter.from_options({"state_file": str(tmp_path / "q.json"), "timings_ms": {"fed": 1}})
    with pytest.raises(ValueError, match="state_file"):
        SimPrinter.from_options({})
    channel = SimChipChannel.from_options({"sam_mode": True}, printer=printer)
    assert channel.sam_mode
    with pytest.raises(ValueError, match="sam"):
        SimChipChannel.from_options({"sam": True}, printer=printer)


# -- the encoder at the contact station ----------------------------------------------------


def test_connect_without_card_raises_no_card_after_timeout(printer: SimPrinter) -> None:
    """connect() waits up to its timeout for a card, then raises NoCard."""
    channel = SimChipChannel(printer)
    start = time.monotonic()
    with pytest.raises(NoCard):
        channel.connect(timeout=0.05)
    assert 0.05 <= time.monotonic() - start < 1.0


def test_connect_waits_for_a_card_arriving(state_file: Path) -> None:
    """A card fed while connect() polls is found before the timeout."""
    printer = SimPrinter(state_file, timings=SimTimings(feed=50, status=0))
    feeder = threading.Thread(target=printer.feed, name="feed")
    feeder.start()
    try:
        atr = SimChipChannel(printer).connect(timeout=2.0)
    finally:
        feeder.join()
    assert atr[0] == 0x3B


def test_card_leaving_contact_station_is_no_card(card: SimChipChannel, printer: SimPrinter) -> None:
    """Once the card moves to the print position, the next APDU raises NoCard."""
    printer.print_card(JOB)
    with pytest.raises(NoCard):
        card.transmit(H("00A4000C023F00"))


def test_uid_and_get_data_give_the_chip_serial(card: SimChipChannel, printer: SimPrinter) -> None:
    """uid() and GET DATA both report the blank's 8-byte chip serial."""
    path_card = printer.card_in_path()
    assert path_card is not None
    expected = path_card.chip_serial
    assert len(expected) == 8
    assert card.uid() == expected.hex().upper()
    assert card.transmit(H("00CA010100")) == expected + H("9000")


def test_chip_memory_persists_and_is_sealed_on_eject(
    card: SimChipChannel, printer: SimPrinter, state_file: Path
) -> None:
    """Chip writes survive a restart at the contact station; a card leaving keeps digests."""
    for apdu in ("00A4000C027F10", "00A4020C020101", "00D6000003414243"):
        assert card.transmit(H(apdu)) == H("9000")
    card.disconnect()
    restarted = SimPrinter(state_file, timings=SimTimings.instant())
    channel = SimChipChannel(restarted)
    channel.connect(timeout=0.1)
    channel.transmit(H("00A4000C027F10"))
    channel.transmit(H("00A4020C020101"))
    assert channel.transmit(H("00B0000003")) == H("4142439000")
    channel.disconnect()
    restarted.eject()
    (ejected,) = restarted.tray_cards("output")
    assert ejected.chip == {}
    assert set(ejected.chip_sha256) == {"0101"}
    assert b"414243" not in state_file.read_bytes()


def test_tray_move_interrupted_by_a_crash_is_finished_on_load(state_file: Path) -> None:
    """A card journaled into the output tray whose state write never happened is found in
    the tray, not in the path, by the next printer on the same files."""
    printer = SimPrinter(state_file, timings=SimTimings.instant(), hopper=2)
    printer.feed()
    printer.print_card(PrintJob(label="PRR-1", front=b"face"))
    before_eject = state_file.read_bytes()
    printer.eject()
    state_file.write_bytes(before_eject)  # the crash: journal written, state not
    again = SimPrinter(state_file)
    assert again.card_in_path() is None
    assert [c.label for c in again.tray_cards("output")] == ["PRR-1"]
    assert len(again.trays()["hopper"]) == 1


def test_torn_tray_journal_line_is_cut(state_file: Path) -> None:
    """A half-written last journal line (power cut mid-append) is dropped on load."""
    printer = SimPrinter(state_file, timings=SimTimings.instant(), hopper=2)
    printer.feed()
    printer.reject()
    journal = state_file.with_name(state_file.name + ".trays")
    journal.write_bytes(journal.read_bytes() + b'{"tray": "output", "ca')
    again = SimPrinter(state_file)
    assert len(again.tray_cards("reject")) == 1
    assert again.tray_cards("output") == []
    assert journal.read_bytes().endswith(b"\n")


def test_kill_between_tray_journal_and_state_write_leaves_no_phantom_jam(
    make_sim: MakeSim, state_file: Path
) -> None:
    """A jammed card whose move to the reject tray was journaled but whose state write a
    kill prevented is found in the reject tray, and the printer is ready, not jammed."""
    printer = make_sim(feed_jam=1.0)
    with pytest.raises(CardJam):
        printer.feed()
    jammed_state = state_file.read_bytes()
    printer.reject()
    state_file.write_bytes(jammed_state)  # the kill: tray journal written, state not
    again = SimPrinter(state_file, timings=SimTimings.instant())
    status = again.status()
    assert (status.state, status.card) == (PrinterState.READY, CardPosition.NONE)
    assert len(again.trays()["reject"]) == 1
    assert '"jammed"' not in state_file.read_text()


def test_an_old_state_file_jam_flag_without_a_card_is_no_jam(state_file: Path) -> None:
    """A state file of the older format saying jam with an empty path loads as ready."""
    SimPrinter(state_file, timings=SimTimings.instant(), hopper=2)
    data = json.loads(state_file.read_text())
    data["jam"] = True
    state_file.write_text(json.dumps(data))
    assert SimPrinter(state_file).status().state is PrinterState.READY


def test_state_files_are_owner_only_whatever_the_umask(state_file: Path) -> None:
    """The state file and the tray journal are created 0600 under umask 022."""
    old = os.umask(0o022)
    try:
        printer = SimPrinter(state_file, timings=SimTimings.instant(), hopper=2)
        printer.feed()
        printer.reject()
    finally:
        os.umask(old)
    journal = state_file.with_name(state_file.name + ".trays")
    assert oct(state_file.stat().st_mode & 0o777) == oct(0o600)
    assert oct(journal.stat().st_mode & 0o777) == oct(0o600)


def test_a_wider_existing_state_file_is_narrowed_at_the_next_write(state_file: Path) -> None:
    """A state file left world-readable by an older version is 0600 after the next step."""
    printer = SimPrinter(state_file, timings=SimTimings.instant(), hopper=2)
    state_file.chmod(0o644)
    printer.feed()
    assert state_file.stat().st_mode & 0o777 == 0o600


def test_chip_contents_leave_the_state_file_with_the_card(
    card: SimChipChannel, printer: SimPrinter, state_file: Path
) -> None:
    """Chip contents (personal data) written to a card are in the state file only while
    the card is in the path: a reject drops them, also when a kill cut the state write."""
    for apdu in ("00A4000C027F10", "00A4020C020101", "00D6000006C0FFEE123456"):
        assert card.transmit(H(apdu)) == H("9000")
    card.disconnect()
    assert b"c0ffee123456" in state_file.read_bytes()
    with_chip = state_file.read_bytes()
    printer.reject()
    assert b"c0ffee123456" not in state_file.read_bytes()
    state_file.write_bytes(with_chip)  # the kill between the tray journal and the state
    SimPrinter(state_file, timings=SimTimings.instant())
    assert b"c0ffee123456" not in state_file.read_bytes()


def test_status_names_the_serial_of_the_card_in_the_path(make_sim: MakeSim) -> None:
    """The simulator knows each blank's serial: status() reports the jammed card's."""
    printer = make_sim(feed_jam=1.0)
    assert printer.status().card_serial is None
    with pytest.raises(CardJam):
        printer.feed()
    jammed = printer.card_in_path()
    assert jammed is not None
    assert printer.status().card_serial == jammed.serial
