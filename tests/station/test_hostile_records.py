"""The hostile-record corpus: over 1,000 seeded mutations of good records, each refused
with a reason naming the field; a sample of them through the real lease path and the
batch path, next to good records, prints none of them and spoils no blank."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.seed import load_or_create_key, make_record
from drivers.sim.printer import SimPrinter
from station.batch import import_batch
from station.config import load_config
from station.link.client import RefusedLease, parse_leased
from station.records import SignedRecord
from station.store.ingest import check
from tests.support.batches import issue
from tests.support.harness import (
    Central,
    db_counts,
    receive,
    running_station,
    station_config,
    tray_labels,
    wait_for,
)
from tests.support.hostile import Hostile, corpus, good_record, lease_item
from tests.support.relay import LeaseRewriter

KEY = Ed25519PrivateKey.generate()
KEYS = {"central-1": KEY.public_key()}
CORPUS = corpus(seed=0)


def refusal(item: dict[str, Any]) -> str:
    """The station's reason for refusing one lease item ("" if it would buffer it)."""
    parsed = parse_leased(item)
    if isinstance(parsed, RefusedLease):
        return parsed.reason
    return check(parsed.signed, KEYS).reason


def names_field(reason: str, field: str) -> bool:
    return re.search(rf"(^|field ){re.escape(field)}([:. ]|$)", reason) is not None


def test_the_corpus_is_large_and_covers_every_field() -> None:
    """Over 1,000 mutations, touching every field of the record, the signed envelope and
    the lease item."""
    assert len(CORPUS) >= 1000
    fields = {h.field.split(".")[0] for _, h in CORPUS}
    record = make_record(1)
    assert set(record) <= fields
    assert {f"person.{k}" for k in record["person"]} <= {h.field for _, h in CORPUS}
    assert {"lease_id", "ttl_s", "signature", "signed.key_id"} <= fields | {
        h.field for _, h in CORPUS
    }


def test_good_neighbours_pass() -> None:
    """The unmutated base records are accepted (the refusals below are the mutations')."""
    for index in range(1, 8):
        assert refusal(lease_item(index, None, KEY)) == ""


def test_every_hostile_record_is_refused_naming_its_field() -> None:
    """Each of the 1,000+ bad records is refused, the reason names the broken field, and
    no reason carries the base record's NIK or name."""
    missed: list[str] = []
    for index, hostile in CORPUS:
        reason = refusal(lease_item(index, hostile, KEY))
        if not names_field(reason, hostile.field):
            missed.append(f"{hostile.field} ({hostile.what}): {reason!r}")
        person = good_record(index)["person"]
        assert person["nik"] not in reason
        assert person["name"] not in reason
    assert missed == []


# -- through the station ---------------------------------------------------------------


def sample(count: int, *, layers: tuple[str, ...]) -> list[Hostile]:
    """``count`` mutations spread over the corpus, of the layers a path can carry, none
    of which hides the record id (a refusal is reported under it)."""
    usable = [
        h
        for _, h in CORPUS
        if h.layer in layers
        and not h.field.startswith("record_id")
        and not (h.layer == "lease" and h.field in ("lease_id", "signed"))
        and not (h.layer == "signed" and h.field.startswith("signed"))
    ]
    step = len(usable) / count
    return [usable[int(i * step)] for i in range(count)]


def add_hostile(central: Central, hostiles: list[Hostile], prefix: str) -> dict[str, Hostile]:
    """Queue each mutation at the centre under its own record id, signed with the centre's
    key (lease-layer ones as good records, to be mutated on their way)."""
    _, key = load_or_create_key(central.key_dir)
    by_id: dict[str, Hostile] = {}
    signed = []
    for i, hostile in enumerate(hostiles):
        rid = f"{prefix}-{i:03d}"
        item = lease_item(
            900 + i, hostile if hostile.layer != "lease" else None, key, record_id=rid
        )
        signed.append(SignedRecord.model_validate(item["signed"]))
        by_id[rid] = hostile
    central.server.add_records(signed)
    return by_id


def run_until_settled(config: Path, central: Central, *, printed: int, failed: int) -> None:
    """Run the station until the centre counts ``printed`` and ``failed`` results and the
    outbox is empty; its printer worker and sync thread must be alive at the end."""
    with running_station(config) as station:
        wait_for(
            f"{printed} printed and {failed} failed at the centre",
            lambda: (
                (central.server.summary().printed, central.server.summary().failed)
                == (printed, failed)
            ),
            timeout=60,
        )
        wait_for("an empty outbox", lambda: db_counts(load_config(config).db_path)["outbox"] == 0)
        assert station.worker.is_alive()
        assert station.sync._thread.is_alive()


def assert_clean_run(
    root: Path, central: Central, db: Path, good: int, bad: dict[str, Hostile]
) -> None:
    """The good printed once each, the bad never; no blank spoiled; the centre holds a
    ``failed`` result naming the field for each bad record."""
    labels = tray_labels(root)
    assert sum(labels.values()) == good
    assert set(labels.values()) == {1}
    assert not set(labels) & set(bad)
    assert SimPrinter(root / "printer.json").tray_cards("reject") == []
    counts = db_counts(db)
    assert (counts["used"], counts["spoiled"]) == (good, 0)
    for rid, hostile in bad.items():
        results = central.server.results_for(rid)
        assert [r.outcome for r in results] == ["failed"], rid
        assert names_field(results[0].reason or "", hostile.field), (rid, results[0].reason)


def test_hostile_records_through_the_lease_path(tmp_path: Path, central: Central) -> None:
    """40 bad records (content, signature, lease ttl) among 20 good ones through a running
    station: the 20 good print, none of the 40 does, no blank is spoiled, the worker and
    the sync thread stay alive and the centre gets ``failed`` naming each field."""
    central.seed(20)
    bad = add_hostile(central, sample(32, layers=("record", "signed")), "BAD")
    lease_bad = add_hostile(central, sample(8, layers=("lease",)), "BADL")

    def rewrite(item: dict[str, Any]) -> None:
        hostile = lease_bad.get(item["signed"]["record"]["record_id"])
        if hostile is not None:
            hostile.mutate(item)

    with LeaseRewriter(central.server.url, rewrite) as relay:
        config = station_config(
            tmp_path, central, url=relay.url, central={"buffer_target": 16, "lease_batch": 16}
        )
        receive(config, 30)
        cfg = load_config(config)
        run_until_settled(config, central, printed=20, failed=40)
    assert_clean_run(tmp_path, central, cfg.db_path, 20, {**bad, **lease_bad})


def test_hostile_records_through_the_batch_path(tmp_path: Path, central: Central) -> None:
    """A signed offline batch holding 20 bad records and 10 good ones: import buffers the
    10 and refuses the 20 with reasons; the station prints only the 10, spoils nothing,
    and the centre gets ``failed`` naming each field."""
    central.seed(10)
    bad = add_hostile(central, sample(20, layers=("record", "signed")), "BADB")
    config = station_config(tmp_path, central)
    receive(config, 20)
    cfg = load_config(config)
    report = import_batch(cfg, issue(central, tmp_path / "batch.json", cfg, count=30))
    assert (report.buffered, report.refused) == (10, 20)
    run_until_settled(config, central, printed=10, failed=20)
    assert_clean_run(tmp_path, central, cfg.db_path, 10, bad)


def test_corpus_is_seeded() -> None:
    """The same seed gives the same corpus (a failure can be replayed)."""
    again = corpus(seed=0)
    assert [(i, h.field, h.what) for i, h in again] == [(i, h.field, h.what) for i, h in CORPUS]
