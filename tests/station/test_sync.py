"""How much the station holds: the buffer follows the measured print rate within caps."""

from __future__ import annotations

from station.config import CentralConfig, buffer_target

CFG = CentralConfig(
    url="http://127.0.0.1:1",
    trusted_keys={"k": "/dev/null"},
    buffer_target=50,
    buffer_hours=8,
    max_records_at_rest=1000,
)


def test_before_the_rate_is_known_the_configured_target_holds() -> None:
    """With no cards printed yet the station holds buffer_target records."""
    assert buffer_target(CFG, None) == 50


def test_hours_of_work_at_the_measured_rate() -> None:
    """At 100 cards an hour, 8 hours of work is 800 records."""
    assert buffer_target(CFG, 100.0) == 800


def test_never_more_personal_records_at_rest_than_the_cap() -> None:
    """A fast printer would want 2,400; the cap of 1,000 records at rest wins."""
    assert buffer_target(CFG, 300.0) == 1000
