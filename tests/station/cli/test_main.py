"""What a technician sees from the status, inspect and resolve commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.cli.main import main
from tests.support.harness import Central, receive, running_station, station_config, wait_for


def test_status_after_printing(
    tmp_path: Path, central: Central, capsys: pytest.CaptureFixture[str]
) -> None:
    """status shows cards printed, blanks left, an empty outbox and the link up."""
    central.seed(5)
    config = station_config(tmp_path, central)
    receive(config, 12)
    with running_station(config) as station:
        wait_for("5 printed", lambda: central.server.summary().printed == 5)
        wait_for(
            "results acknowledged",
            lambda: (
                station.db.run(
                    lambda c: c.execute(
                        "SELECT COUNT(*) FROM outbox WHERE acked_at IS NULL"
                    ).fetchone()[0]
                )
                == 0
            ),
        )
    capsys.readouterr()
    assert main(["--config", str(config), "status"]) == 0
    # One screen: long values wrap under their label (joined again here).
    out = capsys.readouterr().out.replace("\n" + " " * 11, " ").splitlines()
    assert out[0] == "station:   STOPPED — stopped"
    assert (
        "blanks:    7 in stock (12 received, 5 used, 0 spoiled, 0 in the printer, "
        "0 awaiting inspection)" in out
    )
    assert "outbox:    0 results not yet acknowledged" in out
    assert "today:     5 cards printed" in out
    assert any(line.startswith("link:      up since") for line in out)


def test_resolve_of_an_unknown_attempt_is_refused(
    tmp_path: Path, central: Central, capsys: pytest.CaptureFixture[str]
) -> None:
    """resolve names the attempt that does not exist and changes nothing."""
    config = station_config(tmp_path, central)
    receive(config, 1)
    capsys.readouterr()
    assert main(["--config", str(config), "resolve", "42", "--good"]) == 2
    assert capsys.readouterr().err.strip() == "error: no attempt 42"


def test_inspect_with_nothing_pending(
    tmp_path: Path, central: Central, capsys: pytest.CaptureFixture[str]
) -> None:
    """inspect says plainly when no card needs a look."""
    config = station_config(tmp_path, central)
    receive(config, 1)
    capsys.readouterr()
    assert main(["--config", str(config), "inspect"]) == 0
    assert capsys.readouterr().out.strip() == "nothing needs inspection"
