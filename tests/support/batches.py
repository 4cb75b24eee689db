"""Signed batch files for the offline tests: issued by the centre, sealed to a station."""

from __future__ import annotations

from pathlib import Path

from central.batches import create_batch
from central.seed import load_or_create_key
from station.batchkeys import batch_public_key, load_or_create_batch_key
from station.config import StationConfig
from station.link.batchfile import BatchBody, SignedFile, load_box_key, read_sealed, write_sealed
from tests.support.harness import Central


def seal(path: Path, signed: SignedFile, to: StationConfig) -> Path:
    """Write ``signed`` sealed to ``to``'s batch key, as the centre's create verb does."""
    write_sealed(path, signed, to.station_id, load_box_key(batch_public_key(to)))
    return path


def issue(
    central: Central,
    path: Path,
    to: StationConfig,
    *,
    station: str | None = None,
    count: int = 10,
    days: float = 3.0,
) -> Path:
    """A batch of ``count`` records for ``station`` (default ``to``'s), sealed to ``to``."""
    key_id, key = load_or_create_key(central.key_dir)
    return seal(
        path,
        create_batch(
            central.server.db,
            key,
            key_id,
            station_id=station or to.station_id,
            count=count,
            days=days,
        ),
        to,
    )


def opened(path: Path, cfg: StationConfig) -> BatchBody:
    """The batch inside a sealed file, opened with ``cfg``'s batch key."""
    return BatchBody.model_validate(read_sealed(path, load_or_create_batch_key(cfg)).body)
