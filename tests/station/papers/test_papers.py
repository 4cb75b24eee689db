"""The A4 papers an office signs and files: berita acara of destruction, daily and monthly
blank reports, read back with poppler's pdftotext as an office's PDF reader would."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from drivers.sim.printer import SimPrinter
from station import i18n
from station.cli.main import main
from station.config import OfficeConfig
from station.papers.common import Signer
from station.papers.destruction import Destruction, write_berita_acara
from station.policy import ZONES
from tests.support.harness import Central, running_station, station_config, wait_for
from tests.support.pdf import pdf_text, squeeze

Capsys = pytest.CaptureFixture[str]
ROOT = Path(__file__).resolve().parents[3]
BULAN = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)
OFFICE = OfficeConfig(
    regency="Kabupaten Bogor",
    province="Jawa Barat",
    head_name="Dr. H. Ahmad Fauzi, M.Si.",
    head_nip="197001011990031001",
)
WITNESSES = [
    Signer("Siti Rahma, S.Kom.", "198701012010012001", "Operator SIAK"),
    Signer("Budi Santoso", "199002022015031002", "Pengelola Blanko"),
    Signer("Dewi Lestari", "", "Staf Pelayanan"),
]
CLASSES = ("failed encode", "failed print", "physically damaged", "chip dead/invalid")
CLASSES_ID = ("gagal encode", "gagal cetak", "rusak fisik", "chip mati/tidak valid")


def pdf_pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]


def sample(n: int) -> Destruction:
    """A synthetic destruction of ``n`` cards (no real blank or person)."""
    cards = [
        {
            "serial": f"04A1B2C3{i:08d}",
            "class": CLASSES[i % 4],
            "at": dt.datetime(2026, 11, 2, 8, 0, tzinfo=ZONES["WIB"]).timestamp() + i * 3000,
            "detail": "no ATR: chip mute" if i % 4 == 3 else "print head fault",
        }
        for i in range(n)
    ]
    return Destruction(
        7,
        dt.datetime(2026, 12, 1, 14, 30, tzinfo=ZONES["WIB"]),
        "Kantor Disdukcapil Kabupaten Bogor",
        "3201-kec-cibinong-1",
        WITNESSES,
        cards,
    )


@pytest.fixture
def indonesian() -> object:
    i18n.set_language("id")
    yield
    i18n.set_language("en")


@pytest.mark.usefixtures("indonesian")
def test_a_berita_acara_of_500_cards_paginates(tmp_path: Path) -> None:
    """500 cards run over several pages, each page repeating the table's headings and the
    document number; every serial is listed once; the totals by class, the witnesses and
    the head's approval come together on the last page."""
    record = sample(500)
    path = write_berita_acara(record, OFFICE, tmp_path / "ba.pdf")
    pages = pdf_pages(path)
    assert pages >= 5
    texts = [squeeze(pdf_text(path, p)) for p in range(1, pages + 1)]
    for p, text in enumerate(texts, 1):
        assert f"Berita acara nomor {record.number}" in text
        assert f"halaman {p} dari {pages}" in text
    listed = [t for t in texts if "04A1B2C3" in t]
    assert len(listed) >= 5
    for text in listed:
        assert "No. Nomor seri blanko Jenis kerusakan Tanggal (WIB) Keterangan" in text
    everything = "".join(texts)
    for card in record.cards:
        assert everything.count(card["serial"]) == 1, card["serial"]
    last = texts[-1]
    for text in texts[:-1]:
        assert "Rekapitulasi menurut jenis kerusakan" not in text
    assert "Rekapitulasi menurut jenis kerusakan:" in last
    for label in CLASSES_ID:
        assert f"{label} : 125 keping" in last
    assert "Jumlah dimusnahkan : 500 keping" in last
    for w in WITNESSES:
        assert w.name in last
    assert "Mengetahui," in last and "NIP. 197001011990031001" in last  # noqa: PT018


@pytest.mark.usefixtures("indonesian")
def test_page_one_renders_as_the_readme_picture(tmp_path: Path) -> None:
    """pdftoppm renders page 1 of a berita acara as an A4-shaped picture (the README's
    docs/berita-acara.png; EKTP_UPDATE_DOCS=1 rewrites it from this synthetic record)."""
    path = write_berita_acara(sample(6), OFFICE, tmp_path / "ba.pdf")
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "80",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(path),
            str(tmp_path / "page"),
        ],
        check=True,
    )
    png = (tmp_path / "page.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert abs(height / width - 297 / 210) < 0.01
    if os.environ.get("EKTP_UPDATE_DOCS") == "1":
        shutil.copy(tmp_path / "page.png", ROOT / "docs/berita-acara.png")
    assert (ROOT / "docs/berita-acara.png").exists()


def test_english_papers_and_the_office_zone(tmp_path: Path) -> None:
    """With --lang en the berita acara is in English; times carry the office's zone."""
    i18n.set_language("en")
    wita = ZONES["WITA"]
    record = sample(3)
    record = Destruction(
        8,
        dt.datetime(2026, 12, 1, 9, 5, tzinfo=wita),
        "Kantor Camat",
        "6371-banjarmasin-1",
        [Signer("Siti Rahma")],
        record.cards,
    )
    text = squeeze(pdf_text(write_berita_acara(record, OfficeConfig(), tmp_path / "b.pdf")))
    assert "RECORD OF DESTRUCTION OF SPOILED KTP-EL BLANKS" in text
    assert "On Tuesday, 1 December 2026, at 09:05 WITA, at Kantor Camat" in text
    assert "Date (WITA)" in text
    assert "Number: 008/BA-KTP-EL/6371-banjarmasin-1/XII/2026" in text


def _run(capsys: Capsys, config: Path, *args: str) -> str:
    capsys.readouterr()
    assert main(["--config", str(config), *args]) == 0
    return capsys.readouterr().out


def test_papers_of_a_station_that_printed_and_spoiled_cards(
    tmp_path: Path, central: Central, capsys: Capsys
) -> None:
    """After a day of printing with faults, the berita acara lists every spoiled card of
    the reject tray with its class, the witnesses and the head of office, and the daily
    and monthly reports show every figure of the --json report, in Indonesian."""
    central.seed(25)
    config = station_config(
        tmp_path,
        central,
        pipeline={"max_attempts": 10},
        office={
            "regency": "Kabupaten Bogor",
            "province": "Jawa Barat",
            "head_name": "Dr. H. Ahmad Fauzi, M.Si.",
            "head_nip": "197001011990031001",
        },
        printer={
            "options": {"hopper": 60, "seed": 11, "faults": {"print_fail": 0.15, "chip_dead": 0.1}}
        },
    )
    _run(capsys, config, "blanks", "receive", "60", "--batch", "BAST-7")
    _run(capsys, config, "blanks", "adjust", "-2", "--reason", "lent to Kec. Ciomas")
    with running_station(config):
        wait_for("25 printed", lambda: central.server.summary().printed == 25)
    pending = json.loads(_run(capsys, config, "spoiled", "list", "--json"))
    trays = SimPrinter(tmp_path / "printer.json").tray_cards("reject")
    assert len(pending) == len(trays) > 0
    ba = tmp_path / "ba.pdf"
    out = _run(
        capsys,
        config,
        "spoiled",
        "destroy",
        "--lang",
        "id",
        "--pdf",
        str(ba),
        "--witness",
        "Siti Rahma;198701012010012001;Operator SIAK",
        "--witness",
        "Budi Santoso",
        "--place",
        "Halaman Kantor Disdukcapil",
    )
    assert str(ba) in out
    text = squeeze(pdf_text(ba))
    today = dt.datetime.now(ZONES["WIB"]).date()
    tanggal = f"{today.day} {BULAN[today.month - 1]} {today.year}"
    assert "BERITA ACARA PEMUSNAHAN BLANKO KTP-EL RUSAK" in text
    assert re.search(r"Nomor: 001/BA-KTP-EL/t-01/[IVX]+/\d{4}", text)
    assert f"tanggal {tanggal} pukul" in text
    assert " WIB, bertempat di Halaman Kantor" in text
    assert "stasiun cetak t-01" in text
    assert f"sebanyak {len(pending)} keping" in text
    for card in pending:
        assert card["serial"] in text
        assert CLASSES_ID[CLASSES.index(card["class"])] in text
    assert f"Jumlah dimusnahkan : {len(pending)} keping" in text
    for needle in (
        "Saksi 1",
        "Operator SIAK",
        "Siti Rahma",
        "NIP. 198701012010012001",
        "Budi Santoso",
        "Mengetahui,",
        "Kepala Dinas Kependudukan",
        "Dr. H. Ahmad Fauzi, M.Si.",
        "NIP. 197001011990031001",
        f"Kabupaten Bogor, {tanggal}",
    ):
        assert needle in text, needle

    daily = json.loads(_run(capsys, config, "report", "daily", "--json"))
    _run(capsys, config, "report", "daily", "--lang", "id", "--pdf", str(tmp_path / "d.pdf"))
    text = squeeze(pdf_text(tmp_path / "d.pdf"))
    assert "LAPORAN HARIAN PENGGUNAAN BLANKO KTP-EL" in text
    assert f"Periode: {tanggal}" in text
    for needle in (
        "Provinsi : Jawa Barat",
        "Kabupaten/Kota : Kabupaten Bogor",
        "Stasiun cetak : t-01",
        f"Dibuat pada : {tanggal}",
        "Dibuat oleh,",
        "Mengetahui,",
    ):
        assert needle in text, needle
    rows = {
        "Stok blanko awal periode": daily["stock_start"],
        "Blanko diterima": daily["received"],
        "Penyesuaian stok (+/-)": "-2",
        "KTP-el tercetak": daily["printed"],
        "Blanko rusak": daily["spoiled"],
        "Blanko rusak dimusnahkan (berita acara)": daily["destroyed"],
        "Permohonan ditunda (blanko/kuota habis)": daily["deferred"],
        "Stok blanko akhir periode": daily["stock_end"],
        **{f"{'abcd'[i]}. {CLASSES_ID[i]}": daily[f"spoiled_{k}"] for i, k in enumerate(CLASSES)},
    }
    for label, value in rows.items():
        assert re.search(rf"{re.escape(label)} {value}\n", text), (label, value)
    assert daily["days_left"] is not None
    assert (
        f"Perkiraan stok mencukupi (menurut rata-rata pemakaian) "
        f"{daily['days_left']:g} hari".replace(".", ",")
        in text
    )

    month = f"{today:%Y-%m}"
    _run(
        capsys,
        config,
        "report",
        "monthly",
        "--month",
        month,
        "--pdf",
        str(tmp_path / "m.pdf"),
        "--lang",
        "id",
    )
    text = squeeze(pdf_text(tmp_path / "m.pdf"))
    assert "LAPORAN BULANAN PENGGUNAAN BLANKO KTP-EL" in text
    assert f"Periode: {BULAN[today.month - 1]} {today.year}" in text
    assert "B. Rincian per hari" in text
    assert (
        f"{today:%d/%m/%Y} 0 60 -2 {daily['printed']} {daily['spoiled']} "
        f"{daily['destroyed']} {daily['deferred']} {daily['stock_end']}"
    ) in text
    assert f"Stok blanko akhir periode {daily['stock_end']}\n" in text
    assert (
        f"Perkiraan stok mencukupi (menurut rata-rata pemakaian) "
        f"{daily['days_left']:g} hari".replace(".", ",")
        in text
    )
