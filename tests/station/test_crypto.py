"""One data key per station: a second key is refused loudly, never created beside the first."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from station.batch import import_batch
from station.cli.main import main
from station.config import load_config
from station.crypto import KeyFileError
from station.daemon import Station
from tests.support.batches import issue
from tests.support.harness import Central, db_counts, receive, station_config


def test_import_with_another_key_is_refused_and_creates_none(
    tmp_path: Path, central: Central, capsys: pytest.CaptureFixture[str]
) -> None:
    """After records were sealed with the station's key, an import run without that key
    (as another user: no key file) is refused with one line and exit 78 and creates no
    key; an import with a different key is refused naming both fingerprints' holder; the
    daemon's key still opens everything."""
    central.seed(20)
    station_key = tmp_path / "keys" / "data.key"
    config = station_config(tmp_path, central, data_key_file=station_key)
    receive(config, 30)
    cfg = load_config(config)
    assert import_batch(cfg, issue(central, tmp_path / "b1.json", cfg, count=5)).buffered == 5

    (tmp_path / "other").mkdir()
    other_user = station_config(
        tmp_path / "other", central, state_dir=cfg.state_dir
    )  # no data_key_file: default path
    default_key = cfg.state_dir / "data.key"
    capsys.readouterr()
    code = main(
        [
            "--config",
            str(other_user),
            "batch",
            "import",
            str(issue(central, tmp_path / "b2.json", cfg, count=5)),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 78
    assert err == (
        f"data key file {default_key} is missing, but the station database "
        "already holds records sealed with this station's key: run as the "
        "service (its key: the systemd credential data.key, or data_key_file) "
        "instead of creating a new key"
    )
    assert not default_key.exists()

    default_key.write_bytes(os.urandom(32))
    default_key.chmod(0o600)
    with pytest.raises(
        KeyFileError,
        match=r"is not this station's key: its records are "
        r"sealed with the key of fingerprint [0-9a-f]{12}",
    ):
        import_batch(load_config(other_user), tmp_path / "b2.json")
    assert db_counts(cfg.db_path)["buffered"] == 5

    station = Station.build(cfg)  # the station's own key: accepted
    station.db.close()


def test_key_replaced_under_a_database_with_payloads_is_refused(
    tmp_path: Path, central: Central
) -> None:
    """A database from before fingerprints were kept, holding sealed records, refuses a key
    that cannot open them (the fingerprint is taken only from a key that can)."""
    central.seed(5)
    config = station_config(tmp_path, central)
    receive(config, 10)
    cfg = load_config(config)
    import_batch(cfg, issue(central, tmp_path / "b.json", cfg, count=3))
    conn = sqlite3.connect(cfg.db_path)
    conn.execute("DELETE FROM station_meta")
    conn.commit()
    conn.close()
    cfg.key_path.write_bytes(os.urandom(32))
    with pytest.raises(KeyFileError, match="its records are sealed with another key"):
        Station.build(cfg)
