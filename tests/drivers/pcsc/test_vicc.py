"""One seeded personalisation script through PcscChipChannel on Debian's own ``vicc`` card.

``vicc --type iso7816`` (vsmartcard-vpicc) is an independent ISO 7816 implementation; it
needs these documented work-arounds (../shared/PCSC.md):

* its package lies outside sys.path: ``PYTHONPATH=/usr/lib/python3/site-packages/
  virtualsmartcard``, run with this interpreter, which needs PyPI's ``pycryptodome``
  (imported as ``Crypto``);
* it starts empty (MF only): the script first CREATEs DF 7F10 and its EFs;
* SELECT must use P2=0C (a SELECT answering FCP crashes it), UPDATE BINARY must carry Le
  (without it, it crashes) and then answers 6282 — so the read-back is done by READ BINARY
  steps with ``expect_data`` rather than ScriptRunner.verify(), which tracks 9000 writes;
* it has no GET DATA serial (6A81) and ``FF CA`` (CLA FF) kills it: ``reader_uid=false``;
* ~44 ms per APDU (it does not set TCP_QUICKACK), so the script is kept to one record.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pcsc_fixtures import require_pyscard

require_pyscard()

from central.seed import new_records  # noqa: E402
from drivers import ktpel_layout as layout  # noqa: E402
from drivers.errors import ChipStatusError  # noqa: E402
from drivers.iso7816 import CommandApdu  # noqa: E402
from drivers.pcsc.channel import PcscChipChannel  # noqa: E402
from drivers.script import ChipStep, ScriptRunner, read_chip_serial  # noqa: E402
from tests.support.pcsc_fixtures import encoder_options  # noqa: E402
from tests.support.pcscd import Pcscd, wait_card  # noqa: E402

VICC = Path("/usr/bin/vicc")
VICC_PATH = "/usr/lib/python3/site-packages/virtualsmartcard"


@pytest.fixture
def vicc(pcscd: Pcscd, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Debian's vicc ISO 7816 card in slot 0, stopped by PID at the end."""
    missing = [
        what
        for what, ok in (
            ("vicc (apt-get install vsmartcard-vpicc)", VICC.exists()),
            ("pycryptodome (pip install pycryptodome)", importlib.util.find_spec("Crypto")),
        )
        if not ok
    ]
    if missing:
        reason = f"vicc card needs {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    env = {**os.environ, "PYTHONPATH": VICC_PATH}
    with (tmp_path / "vicc.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(VICC),
                "--type",
                "iso7816",
                "--hostname",
                "127.0.0.1",
                "--port",
                str(pcscd.ports[0]),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_card(pcscd.readers[0], timeout=10.0)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        wait_card(pcscd.readers[0], present=False)


def _create(fid: int, fdb: int, size: int | None = None) -> ChipStep:
    body = bytes((0x82, 1, fdb, 0x83, 2)) + fid.to_bytes(2, "big")
    if size is not None:
        body += b"\x80\x02" + size.to_bytes(2, "big")
    apdu = CommandApdu(0x00, 0xE0, 0, 0, b"\x62" + bytes((len(body),)) + body)
    return ChipStep(apdu=apdu.to_bytes().hex().upper())


def vicc_script(record_steps: list[dict[str, str]]) -> tuple[list[ChipStep], list[ChipStep]]:
    """The record's script adapted to vicc, and READ BINARY steps checking what it wrote."""
    steps = [ChipStep(apdu="00A4000C023F00"), _create(layout.DF_KTPEL, 0x38)]
    steps += [_create(fid, 0x01, size) for fid, size in layout.EF_SIZES.items()]
    steps.append(ChipStep(apdu="00A4000C023F00"))
    readback: list[ChipStep] = [ChipStep(apdu="00A4000C023F00")]
    for raw in record_steps:
        cmd = CommandApdu.parse(bytes.fromhex(raw["apdu"]))
        if cmd.ins == 0xD6:  # vicc: UPDATE BINARY must carry Le, and then answers 6282
            with_le = CommandApdu(cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, le=256)
            steps.append(ChipStep(apdu=with_le.to_bytes().hex(), expect_sw=["9000", "6282"]))
            read = CommandApdu(0x00, 0xB0, cmd.p1, cmd.p2, le=len(cmd.data))
            readback.append(ChipStep(apdu=read.to_bytes().hex(), expect_data=cmd.data.hex()))
        else:
            steps.append(ChipStep(apdu=raw["apdu"]))
            readback.append(ChipStep(apdu=raw["apdu"]))
    return steps, readback


def test_seeded_script_on_debian_vicc_writes_and_reads_back(
    vicc: subprocess.Popen[bytes], pcscd: Pcscd
) -> None:
    """A seeded record's script, adapted to vicc, writes every EF and reads back equal."""
    record = next(new_records(1, seed=11))
    steps, readback = vicc_script(record["chip_script"])
    channel = PcscChipChannel.from_options(encoder_options(pcscd, reader_uid=False))
    try:
        atr = channel.connect(timeout=5.0)
        assert atr.startswith(b"\x3b")
        outcome = ScriptRunner(channel).run(steps)
        assert outcome.steps_run == len(steps)
        ScriptRunner(channel).run(readback)
        with pytest.raises(ChipStatusError, match="GET DATA serial: SW 6A81"):
            read_chip_serial(channel)
        assert vicc.poll() is None  # the work-arounds kept vicc alive
    finally:
        channel.close()
