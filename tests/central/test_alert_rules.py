"""The example alert rules (config/prometheus/ektp-alerts.yml) are valid and each alert
fires on its test series (config/prometheus/ektp-alerts.test.yml) under promtool."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.promtool import needs_promtool, promtool

RULES = Path(__file__).resolve().parents[2] / "config" / "prometheus"


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    """`promtool check rules` accepts the four alert rules."""
    assert "SUCCESS: 4 rules found" in promtool("check", "rules", RULES / "ektp-alerts.yml").stdout


@needs_promtool
def test_promtool_unit_tests_pass_with_a_case_for_every_alert() -> None:
    """`promtool test rules` passes, and every alert of the rules file has a test case."""
    alerts = {
        r["alert"]
        for g in yaml.safe_load((RULES / "ektp-alerts.yml").read_text())["groups"]
        for r in g["rules"]
    }
    cases = yaml.safe_load((RULES / "ektp-alerts.test.yml").read_text())["tests"]
    tested = {t["alertname"] for case in cases for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert tested == alerts
    assert "SUCCESS" in promtool("test", "rules", RULES / "ektp-alerts.test.yml").stdout
