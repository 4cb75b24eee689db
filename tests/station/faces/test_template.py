"""The KTP-el card face: layout checks on three records, the preview and doctor verbs."""

from __future__ import annotations

import argparse
import io
import itertools
import json
from pathlib import Path
from typing import Any, cast

import pytest
from PIL import Image, ImageChops, ImageOps

from central.seed import make_record
from drivers.evolis.protocol import face_panels
from station.cli.face import cmd_doctor, cmd_preview
from station.faces.template import TEMPLATE, FaceError, FaceImages, render_face, to_print_job
from station.records import PrintReadyRecord
from tests.support.evolis_emulator import EmulatorOnPty, EvolisEmulator, Fault

LONG_NAME = (
    "RADEN AYU SRI KUSUMANINGRUM WIDYANINGSIH PURBANINGRAT SETYANINGRUM "
    "DJOJOHADIKUSUMO KARTASASMITA CAKRANINGRAT MANGKUNEGARA"
)
LONG_ADDRESS = (
    "JL. RAYA SULTAN HAMENGKUBUWONO IX GANG KENANGA BARAT NOMOR 123A BLOK C-17 "
    "PERUMAHAN GRIYA ASRI SEJAHTERA PERMAI TAHAP III DEKAT MASJID AL-IKHLAS RAYA"
)


def _record(index: int, **person: Any) -> PrintReadyRecord:
    data = make_record(index, seed=7)
    data["person"].update(person)
    return PrintReadyRecord.model_validate(data)


RECORDS = {
    "short": _record(1, name="ANI"),
    "long": _record(2, name=LONG_NAME[:120], address=LONG_ADDRESS[:200]),
    "reprint": _record(3, occupation="PEGAWAI NEGERI SIPIL"),
}


def _ink(face: FaceImages) -> Image.Image:
    """An L image, 255 wherever any ink (black or colour) is laid."""
    black = ImageOps.invert(face.black.convert("L"))
    colour = ImageOps.invert(face.colour.convert("L")).point(lambda v: 255 if v else 0)
    return ImageChops.lighter(black, colour)


@pytest.mark.parametrize("which", list(RECORDS))
def test_face_stays_inside_the_safe_margin(which: str, tmp_path: Path) -> None:
    """The face is 1016 × 648 with all ink inside the safe margin; a preview PNG is written."""
    record = RECORDS[which]
    if which == "reprint":
        record = record.model_copy(update={"kind": "reprint"})
    face = render_face(record)
    assert face.colour.size == face.black.size == (1016, 648)
    box = _ink(face).getbbox()
    assert box is not None
    m = TEMPLATE.safe_margin
    assert box[0] >= m
    assert box[1] >= m
    assert box[2] <= 1016 - m
    assert box[3] <= 648 - m
    face.composite().save(tmp_path / f"{which}.png")
    assert (tmp_path / f"{which}.png").stat().st_size > 1000


@pytest.mark.parametrize("which", list(RECORDS))
def test_text_regions_and_photo(which: str) -> None:
    """Header, NIK and fields carry ink in their boxes; the photo box is not blank."""
    face = render_face(RECORDS[which])
    black = ImageOps.invert(face.black.convert("L"))
    for box in (TEMPLATE.header_box, TEMPLATE.nik_box, TEMPLATE.fields_box):
        assert black.crop(box).getbbox() is not None
    bottom = TEMPLATE.fields_box[3]
    text = black.crop((0, 0, 1016, 648)).getbbox()
    assert text is not None
    assert text[3] <= bottom + 2
    photo = face.colour.crop(TEMPLATE.photo_box)
    lo, hi = cast(tuple[int, int], photo.convert("L").getextrema())
    assert hi - lo > 40  # a picture, not a flat area
    assert lo >= 1  # never pure black (that is the K panel)
    assert ImageOps.invert(face.black.convert("L")).crop(TEMPLATE.signature_box).getbbox()


def test_long_values_wrap_rather_than_cut() -> None:
    """A very long name and address take more lines than a short one; nothing is lost."""
    short = ImageOps.invert(render_face(RECORDS["short"]).black.convert("L"))
    long = ImageOps.invert(render_face(RECORDS["long"]).black.convert("L"))

    def rows(img: Image.Image) -> int:
        band = img.crop(TEMPLATE.fields_box)
        lines = [
            band.crop((0, y, band.width, y + 1)).getbbox() is not None for y in range(band.height)
        ]
        return sum(1 for a, b in itertools.pairwise(lines) if b and not a)

    assert rows(long) > rows(short)


def test_a_record_that_cannot_fit_is_refused() -> None:
    """A template with no room for the fields raises FaceError instead of cutting text."""
    from dataclasses import replace

    tight = replace(TEMPLATE, fields_box=(40, 160, 740, 200))
    with pytest.raises(FaceError):
        render_face(RECORDS["long"], tight)


def test_print_job_has_text_on_k_and_photo_on_colour() -> None:
    """to_print_job's PNG splits into a K panel with the text and colour panels with ink."""
    job = to_print_job(RECORDS["short"])
    assert job.label == RECORDS["short"].record_id
    with Image.open(io.BytesIO(job.front)) as img:
        assert img.size == (1016, 648)
    panels = face_panels(job.front)
    assert any(panels["k"])
    assert any(panels["c"])


def test_preview_command(tmp_path: Path) -> None:
    """station preview writes the PNG of a signed-record JSON file."""
    src = tmp_path / "record.json"
    src.write_text(json.dumps({"record": make_record(5), "key_id": "k", "signature": "x"}))
    out = tmp_path / "card.png"
    assert cmd_preview(argparse.Namespace(record=src, out=out)) == 0
    with Image.open(out) as img:
        assert img.size == (1016, 648)
    src.write_text("{}")
    assert cmd_preview(argparse.Namespace(record=src, out=out)) == 1


def _config(tmp_path: Path, printer: dict[str, Any], chip: dict[str, Any]) -> Path:
    from tests.support.harness import toml_dumps

    path = tmp_path / "station.toml"
    path.write_text(
        toml_dumps(
            {
                "station_id": "t-01",
                "state_dir": tmp_path / "state",
                "central": {
                    "url": "http://127.0.0.1:9",
                    "trusted_keys": {"central-1": tmp_path / "central.pub"},
                },
                "printer": printer,
                "chip": chip,
            }
        )
    )
    return path


def test_doctor_on_the_emulator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """doctor reports identity and supplies, and one PROBLEM line for an empty feeder."""
    emulator = EvolisEmulator()
    with EmulatorOnPty(emulator) as pty:
        cfg = _config(tmp_path, {"driver": "evolis", "options": pty.options}, {"driver": "pcsc"})
        emulator.inject(Fault.FEEDER_EMPTY)
        code = cmd_doctor(argparse.Namespace(config=str(cfg)))
    out = capsys.readouterr().out
    assert code == 1
    assert "serial:          EMU0000001" in out
    assert "ribbon left:     100" in out
    assert "cards inserted:  0" in out
    assert "PROBLEM printer is feeder_empty: load blanks" in out


def test_doctor_on_the_simulator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """doctor on a healthy simulated printer and encoder finds no problem."""
    cfg = _config(
        tmp_path,
        {"driver": "sim", "options": {"state_file": tmp_path / "p.json"}},
        {"driver": "sim"},
    )
    assert cmd_doctor(argparse.Namespace(config=str(cfg))) == 0
    assert "no problem found" in capsys.readouterr().out
