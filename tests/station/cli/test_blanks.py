"""The blank ledger through the technician's commands: receipts, counts, adjustments,
destruction of spoiled cards, and reports that match the printer's trays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivers.sim.printer import SimPrinter
from station.config import load_config
from station.daemon import Station
from tests.support.harness import Central, db_counts, run, station_config, wait_for
from tests.support.pdf import pdf_text, squeeze

Capsys = pytest.CaptureFixture[str]


def test_overlapping_serial_range_is_refused(
    tmp_path: Path, central: Central, capsys: Capsys
) -> None:
    """A receipt whose serials overlap an earlier batch is refused, naming both."""
    config = station_config(tmp_path, central)
    assert run(
        capsys,
        config,
        "blanks",
        "receive",
        "2000",
        "--batch",
        "BAST-1",
        "--first-serial",
        "KTP0010001",
    )[1] == ("received 2000 blanks (batch BAST-1, serials KTP0010001-KTP0012000); in stock: 2000")
    code, _, err = run(
        capsys,
        config,
        "blanks",
        "receive",
        "500",
        "--batch",
        "BAST-2",
        "--first-serial",
        "KTP0011900",
    )
    assert code == 2
    assert err == (
        "error: serials KTP0011900-KTP0012399 overlap batch BAST-1 "
        "(KTP0010001-KTP0012000) already received: check the delivery note"
    )
    assert db_counts(load_config(config).db_path)["received"] == 2000
    assert (
        run(
            capsys,
            config,
            "blanks",
            "receive",
            "500",
            "--batch",
            "BAST-2",
            "--first-serial",
            "KTP0012001",
        )[0]
        == 0
    )


def test_count_records_a_discrepancy_and_adjust_corrects_it(
    tmp_path: Path, central: Central, capsys: Capsys
) -> None:
    """A physical count never changes the stock; an adjustment with a reason does, and
    both appear in the history."""
    config = station_config(tmp_path, central)
    run(capsys, config, "blanks", "receive", "100", "--batch", "B1")
    code, out, _ = run(capsys, config, "blanks", "count", "97")
    assert code == 1
    assert out == (
        "counted 97, the ledger expects 100: DISCREPANCY of -3 recorded; find the "
        "cause, then correct the stock with: station blanks adjust -3 --reason '...'"
    )
    assert db_counts(load_config(config).db_path)["in_stock"] == 100
    assert run(capsys, config, "blanks", "adjust", "-3", "--reason", "lent to Kec. Bogor")[
        1
    ].startswith("adjusted -3 (lent to Kec. Bogor); in stock: 97")
    code, out, _ = run(capsys, config, "blanks", "history", "--json")
    history = json.loads(out)
    assert [(h["kind"], h["count"]) for h in history] == [("received", 100), ("adjusted", -3)]
    assert history[1]["reason"] == "lent to Kec. Bogor"
    assert history[1]["who"]
    assert run(capsys, config, "blanks", "adjust", "-200", "--reason", "oops")[2] == (
        "error: cannot remove 200 blanks: the ledger has only 97 in stock"
    )


def test_spoiled_cards_destroyed_with_a_berita_acara(
    tmp_path: Path, central: Central, capsys: Capsys
) -> None:
    """Spoiled cards wait in the list until destroyed; the destruction record names each
    card's blank serial and class and the witnesses; the daily report matches the trays."""
    central.seed(30)
    config = station_config(
        tmp_path,
        central,
        pipeline={"max_attempts": 10},
        printer={
            "options": {"hopper": 80, "seed": 11, "faults": {"print_fail": 0.15, "chip_dead": 0.1}}
        },
    )
    run(capsys, config, "blanks", "receive", "80", "--batch", "B1")
    station = Station.build(load_config(config))
    station.start()
    try:
        wait_for("30 printed", lambda: central.server.summary().printed == 30)
    finally:
        station.stop()
    trays = SimPrinter(tmp_path / "printer.json").tray_cards("reject")
    assert trays, "the seeded faults should have spoiled some cards"
    code, out, _ = run(capsys, config, "spoiled", "list", "--json")
    pending = json.loads(out)
    assert len(pending) == len(trays)
    assert {p["class"] for p in pending} <= {"failed print", "chip dead/invalid", "failed encode"}
    code, out, _ = run(
        capsys,
        config,
        "spoiled",
        "destroy",
        "--witness",
        "Siti Rahma",
        "--witness",
        "Budi Santoso",
        "--place",
        "Disdukcapil Kab. Bogor",
        "--lang",
        "id",
    )
    assert code == 0
    document = Path(out.rsplit(" ", 1)[1])
    assert document.suffix == ".pdf"
    text = squeeze(pdf_text(document))
    assert "BERITA ACARA PEMUSNAHAN BLANKO KTP-EL RUSAK" in text
    assert f"Jumlah dimusnahkan : {len(trays)} keping" in text
    assert "Siti Rahma" in text and "Budi Santoso" in text  # noqa: PT018
    for entry in pending:
        assert entry["serial"] in text
    assert run(capsys, config, "spoiled", "list")[1] == "no spoiled cards waiting for destruction"
    code, out, _ = run(capsys, config, "report", "daily", "--json")
    report = json.loads(out)
    output = SimPrinter(tmp_path / "printer.json").tray_cards("output")
    assert report["printed"] == len(output) == 30
    assert report["spoiled"] == len(trays)
    assert report["destroyed"] == len(trays)
    assert report["received"] == 80
    assert report["stock_end"] == 80 - 30 - len(trays)
    code, out, _ = run(capsys, config, "report", "daily", "--csv")
    assert out.splitlines()[0].startswith("period,printed,spoiled_failed encode,")
