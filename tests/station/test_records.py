"""Print-ready records as the station reads them: content checks before any blank is fed."""

from __future__ import annotations

import pytest

from station.central.seed import make_record
from station.records import RecordError, parse_record


def test_a_seeded_record_parses() -> None:
    """A record from the reference seeder is accepted as it is."""
    assert parse_record(make_record(3)).chip_script


def test_a_malformed_chip_step_fails_the_record_naming_the_step() -> None:
    """A record whose third chip step is malformed is rejected with that step named."""
    record = make_record(3)
    record["chip_script"][2]["apdu"] = "00A4000C0501"
    with pytest.raises(RecordError, match=r"chip_script\.2: Value error, malformed APDU"):
        parse_record(record)


def test_a_bad_status_word_pattern_fails_the_record() -> None:
    """An expect_sw that is not four hex digits or x names the step and the pattern."""
    record = make_record(3)
    record["chip_script"][0]["expect_sw"] = ["90"]
    with pytest.raises(RecordError, match=r"chip_script\.0\.expect_sw\.0"):
        parse_record(record)
