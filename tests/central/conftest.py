"""Fixtures of the centre's tests: a PostgreSQL cluster for the modules that use one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres import PgCluster, running_cluster


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster on loopback, one for each module that asks."""
    with running_cluster() as cluster:
        yield cluster
