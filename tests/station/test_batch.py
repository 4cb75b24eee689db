"""Offline batches: the centre issues a signed batch to one station, the station prints it
with the link down and carries back a signed results file; every path counts a card once."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.batches import (
    add_central_batch_commands,
    create_batch,
    ingest_results,
    register_station_key,
)
from central.seed import load_or_create_key, make_record
from station.batch import (
    export_results,
    import_batch,
    station_key_path,
    station_public_key,
)
from station.batchkeys import batch_public_key
from station.cli.batch import add_batch_commands
from station.cli.main import run_verb
from station.config import StationConfig, load_config
from station.daemon import Station
from station.link.batchfile import (
    BatchBody,
    BatchFileError,
    SignedFile,
    read_signed,
    sign_body,
    write_signed,
)
from station.records import sign_record
from tests.support.batches import issue, opened, seal
from tests.support.harness import (
    Central,
    db_counts,
    personal_values,
    receive,
    station_config,
    tray_labels,
    wait_for,
)
from tests.support.netfaults import FaultProxy, Mode


@pytest.fixture
def offline(central: Central) -> Iterator[FaultProxy]:
    """The station's link to the centre, refused until the test says otherwise."""
    with FaultProxy(central.server.url) as proxy:
        proxy.set_mode(Mode.REFUSE)
        yield proxy


def buffered(cfg: StationConfig) -> int:
    return db_counts(cfg.db_path)["buffered"]


def tray(root: Path) -> Counter[str | None]:
    return tray_labels(root)


def test_batch_printed_offline_then_ingested_twice_and_drained_counts_once(
    tmp_path: Path, central: Central, offline: FaultProxy
) -> None:
    """A batch printed with the link down reaches the centre by file; ingesting the file
    again and the link's later drain of the same results count nothing twice."""
    central.seed(20)
    config = station_config(tmp_path, central, url=offline.url)
    receive(config, 30)
    cfg = load_config(config)
    register_station_key(central.server.db, cfg.station_id, station_public_key(cfg))
    batch = issue(central, tmp_path / "batch.json", cfg, count=12)
    assert central.server.summary().leased == 12  # held for this station for days

    report = import_batch(cfg, batch)
    assert (report.buffered, report.known, report.refused) == (12, 0, 0)
    station = Station.build(cfg)
    station.start()
    try:
        wait_for("12 cards printed offline", lambda: sum(tray(tmp_path).values()) == 12)
        wait_for("12 results waiting", lambda: db_counts(cfg.db_path)["outbox"] == 12)
        assert central.server.summary().printed == 0  # nothing crossed the link
        exported = export_results(cfg, tmp_path / "results.json")
        assert exported.results == 12

        first = ingest_results(central.server.db, read_signed(exported.path))
        again = ingest_results(central.server.db, read_signed(exported.path))
        summary = central.server.summary()
        assert (first.new, first.duplicates) == (12, 0)
        assert (again.new, again.duplicates) == (0, 12)
        assert (summary.printed, summary.results, summary.printed_twice) == (12, 12, [])

        offline.set_mode(Mode.PASS)
        wait_for("the outbox drained over the link", lambda: db_counts(cfg.db_path)["outbox"] == 0)
        wait_for("the other 8 printed online", lambda: central.server.summary().printed == 20)
    finally:
        station.stop()
    summary = central.server.summary()
    assert summary.printed_twice == []
    assert summary.results == 20  # 12 by file (twice) and link, 8 by link: each once
    assert summary.duplicate_results >= 24
    assert set(tray(tmp_path).values()) == {1}
    assert len(tray(tmp_path)) == 20


def test_importing_a_batch_twice_buffers_nothing_twice(tmp_path: Path, central: Central) -> None:
    """A second import of the same batch leaves the buffer as the first left it."""
    central.seed(5)
    cfg = load_config(station_config(tmp_path, central))
    batch = issue(central, tmp_path / "batch.json", cfg, count=5)
    assert import_batch(cfg, batch).buffered == 5
    again = import_batch(cfg, batch)
    assert (again.buffered, again.known) == (0, 5)
    assert buffered(cfg) == 5


def test_batch_for_another_station_is_refused(tmp_path: Path, central: Central) -> None:
    """A batch addressed to another station is refused whole, naming both stations."""
    central.seed(4)
    cfg = load_config(station_config(tmp_path, central))
    batch = issue(central, tmp_path / "batch.json", cfg, station="t-02", count=4)
    with pytest.raises(BatchFileError, match=r"t-02.*t-01"):
        import_batch(cfg, batch)
    assert not cfg.db_path.exists() or buffered(cfg) == 0


def test_altered_or_foreign_batch_is_refused(tmp_path: Path, central: Central) -> None:
    """A batch changed after signing, or signed by a key the station does not trust, is
    refused and buffers nothing."""
    central.seed(4)
    cfg = load_config(station_config(tmp_path, central))
    key_id, key = load_or_create_key(central.key_dir)
    signed = create_batch(central.server.db, key, key_id, station_id="t-01", count=4, days=3)
    batch = seal(tmp_path / "batch.json", signed, cfg)
    data = signed.model_dump(mode="json")
    data["body"]["records"][0]["expires_at"] = "2099-01-01T00:00:00Z"  # stretch one lease
    altered = seal(tmp_path / "altered.json", SignedFile.model_validate(data), cfg)
    with pytest.raises(BatchFileError, match="does not verify"):
        import_batch(cfg, altered)

    stranger = tmp_path / "stranger"
    stranger.mkdir()
    _, key = load_or_create_key(stranger)
    central.seed(2)
    seal(
        tmp_path / "foreign.json",
        create_batch(central.server.db, key, "intruder-1", station_id="t-01", count=2, days=1),
        cfg,
    )
    with pytest.raises(BatchFileError, match="not trusted"):
        import_batch(cfg, tmp_path / "foreign.json")
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(BatchFileError, match="truncated"):
        import_batch(cfg, truncated)
    write_signed(tmp_path / "clear.json", signed)
    with pytest.raises(BatchFileError, match=r"not sealed to this station \(a batch in clear"):
        import_batch(cfg, tmp_path / "clear.json")
    assert not cfg.db_path.exists() or buffered(cfg) == 0


def test_forged_record_in_a_signed_batch_is_reported_failed(
    tmp_path: Path, central: Central
) -> None:
    """A record whose own signature fails inside a validly signed batch is never buffered
    for printing: it is reported failed, the others are buffered."""
    central.seed(3)
    central.server.add_records(
        [sign_record(make_record(900, seed=9), Ed25519PrivateKey.generate(), "central-1")]
    )
    cfg = load_config(station_config(tmp_path, central))
    report = import_batch(cfg, issue(central, tmp_path / "batch.json", cfg, count=4))
    assert (report.buffered, report.refused) == (3, 1)
    assert buffered(cfg) == 3
    conn = sqlite3.connect(cfg.db_path)
    try:
        bodies = [json.loads(r[0]) for r in conn.execute("SELECT body FROM outbox")]
    finally:
        conn.close()
    assert [(b["record_id"], b["outcome"]) for b in bodies] == [("PRR-000900", "failed")]


def test_results_file_needs_the_registered_station_key(tmp_path: Path, central: Central) -> None:
    """The centre ingests a results file only when it verifies against the key registered
    for that station: unregistered, re-keyed or altered files change nothing."""
    central.server.add_records(
        [sign_record(make_record(901, seed=9), Ed25519PrivateKey.generate(), "central-1")]
    )
    cfg = load_config(station_config(tmp_path, central))
    import_batch(cfg, issue(central, tmp_path / "batch.json", cfg, count=1))  # one failed
    exported = export_results(cfg, tmp_path / "results.json")
    assert exported.results == 1
    assert station_key_path(cfg).stat().st_mode & 0o777 == 0o600
    with pytest.raises(BatchFileError, match="no results key registered"):
        ingest_results(central.server.db, read_signed(exported.path))

    (tmp_path / "elsewhere").mkdir()
    elsewhere = load_config(station_config(tmp_path / "elsewhere", central))
    register_station_key(central.server.db, "t-01", station_public_key(elsewhere))
    with pytest.raises(BatchFileError, match="does not verify"):
        ingest_results(central.server.db, read_signed(exported.path))

    register_station_key(central.server.db, "t-01", station_public_key(cfg))
    data = json.loads(exported.path.read_text())
    data["body"]["results"][0]["outcome"] = "printed"
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(data))
    with pytest.raises(BatchFileError, match="does not verify"):
        ingest_results(central.server.db, read_signed(altered))
    assert central.server.summary().results == 0
    assert ingest_results(central.server.db, read_signed(exported.path)).new == 1
    assert central.server.summary().failed == 1


def test_renewals_never_shorten_a_batch_lease(tmp_path: Path, central: Central) -> None:
    """A station online again renews its batch leases without cutting them to the normal
    lease time: the days granted stay granted."""
    from station.link.client import QueueClient

    central.seed(2)
    cfg = load_config(station_config(tmp_path, central))
    body = opened(issue(central, tmp_path / "b.json", cfg, count=2, days=2), cfg)
    lease_ids = [r.lease_id for r in body.records]
    client = QueueClient(central.server.url, "t-01")
    try:
        renewed = client.renew(lease_ids).renewed
    finally:
        client.close()
    assert set(renewed) == set(lease_ids)
    assert all(ttl > 1.9 * 86400 for ttl in renewed.values())


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    sub = parser.add_subparsers(dest="command", required=True)
    add_batch_commands(sub)
    central = sub.add_parser("central").add_subparsers(dest="central_command", required=True)
    add_central_batch_commands(central)
    return run_verb(parser.parse_args(argv))


def test_cli_verbs_carry_a_batch_both_ways(
    tmp_path: Path, central: Central, capsys: pytest.CaptureFixture[str]
) -> None:
    """The technician's and the operator's verbs: key, register, create, import, export,
    ingest, each answering one line; a second ingest reports everything already known."""
    central.seed(3)
    config = station_config(tmp_path, central)
    db = str(central.db)
    assert _cli("--config", str(config), "batch", "key") == 0
    pub = tmp_path / "t-01.pub"
    pub.write_text(capsys.readouterr().out.strip())
    assert _cli("--config", str(config), "batch", "pubkey") == 0
    box = tmp_path / "t-01.box"
    box.write_text(capsys.readouterr().out.strip())
    out = str(tmp_path / "b.json")
    create = ["central", "batch", "create", "--db", db, "--key-dir", str(central.key_dir)]
    create += ["--station", "t-01", "--count", "3", "--days", "2", "--out", out]
    assert _cli(*create) == 2
    assert "no batch key registered for station 't-01'" in capsys.readouterr().err
    assert central.server.summary().leased == 0  # nothing leased for a file never written
    assert (
        _cli(
            "central",
            "batch",
            "register",
            "--db",
            db,
            "--station",
            "t-01",
            "--key",
            str(pub),
            "--batch-key",
            str(box),
        )
        == 0
    )
    assert "results and batch key registered" in capsys.readouterr().out
    assert _cli(*create) == 0
    assert _cli("--config", str(config), "batch", "import", str(tmp_path / "b.json")) == 0
    assert "3 records buffered" in capsys.readouterr().out
    assert _cli("--config", str(config), "batch", "export", str(tmp_path / "r.json")) == 0
    assert "0 results written" in capsys.readouterr().out
    assert _cli("central", "batch", "ingest", "--db", db, str(tmp_path / "r.json")) == 0
    assert "0 results" in capsys.readouterr().out
    assert _cli("--config", str(config), "batch", "import", str(tmp_path / "nope.json")) == 2
    assert "cannot read" in capsys.readouterr().err


def test_batch_whose_leases_already_expired_is_refused_at_import(
    tmp_path: Path, central: Central, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch whose leases end before the station's lease margin is refused at import
    with the reason (nothing buffered to expire unprinted); in a batch with some such
    leases only those are left out, counted and named in the import line."""
    central.seed(5)
    config = station_config(tmp_path, central)
    cfg = load_config(config)
    short = issue(central, tmp_path / "short.json", cfg, count=3, days=30 / 86400)
    with pytest.raises(
        BatchFileError,
        match=r"every lease in it has expired \(or ends "
        r"within 60 s\)",
    ):
        import_batch(cfg, short)
    assert not cfg.db_path.exists() or buffered(cfg) == 0

    key_id, key = load_or_create_key(central.key_dir)
    signed = create_batch(central.server.db, key, key_id, station_id="t-01", count=2, days=2)
    body = BatchBody.model_validate(signed.body)
    stale = body.records[0].model_copy(update={"expires_at": dt.datetime.now(dt.UTC)})
    mixed = body.model_copy(update={"records": [stale, body.records[1]]})
    seal(tmp_path / "mixed.json", sign_body(mixed, key, key_id), cfg)
    assert _cli("--config", str(config), "batch", "import", str(tmp_path / "mixed.json")) == 0
    assert (
        "1 records buffered, 0 already known, 0 refused, 1 not buffered: their lease had expired"
    ) in capsys.readouterr().out
    assert buffered(cfg) == 1


def test_sealed_batch_opens_only_at_its_station_and_carries_no_pii_in_clear(
    tmp_path: Path, central: Central
) -> None:
    """The batch file's bytes hold no NIK or name (the same batch in clear does); another
    station cannot open it, not even by putting its own key in the header; a changed byte
    is refused; its own station opens it, with its batch key kept 0600."""
    central.seed(3)
    a = load_config(station_config(tmp_path, central))
    (tmp_path / "b").mkdir()
    b = load_config(station_config(tmp_path / "b", central, station_id="t-02"))
    key_id, key = load_or_create_key(central.key_dir)
    signed = create_batch(central.server.db, key, key_id, station_id="t-01", count=3, days=2)
    sealed = seal(tmp_path / "batch.ektp", signed, a).read_bytes()
    write_signed(tmp_path / "clear.json", signed)
    clear = (tmp_path / "clear.json").read_bytes()
    people = personal_values(central)
    assert len(people) == 6
    assert all(v in clear for v in people)
    assert not [v for v in people if v in sealed]

    with pytest.raises(
        BatchFileError,
        match="is sealed for station t-01's key, not this station's: only that station can open it",
    ):
        import_batch(b, tmp_path / "batch.ektp")
    head, _, rest = sealed.partition(b"\n")
    header, _, cipher = rest.partition(b"\n")
    fields = json.loads(header)
    fields["recipient"] = batch_public_key(b)
    (tmp_path / "rekeyed.ektp").write_bytes(
        head + b"\n" + json.dumps(fields).encode() + b"\n" + cipher
    )
    with pytest.raises(BatchFileError, match="cannot be opened with this station's batch key"):
        import_batch(b, tmp_path / "rekeyed.ektp")
    flipped = bytearray(sealed)
    flipped[-20] ^= 0x01
    (tmp_path / "flipped.ektp").write_bytes(bytes(flipped))
    with pytest.raises(BatchFileError, match="cannot be opened with this station's batch key"):
        import_batch(a, tmp_path / "flipped.ektp")
    assert not b.db_path.exists() or buffered(b) == 0

    assert import_batch(a, tmp_path / "batch.ektp").buffered == 3
    assert (a.state_dir / "batch.key").stat().st_mode & 0o777 == 0o600
