"""The fleet page in a real browser: Debian's chromium, headless, driven by selenium,
against a centre fed 50 stations' heartbeats through the protocol.

Skipped when chromium, its driver or selenium is missing, except under CI (``CI`` set),
where that fails: CI cannot pass by skipping. ``EKTP_FLEET_SCREENSHOT=docs/fleet.png``
also saves the page's screenshot there (the README's).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central.server import CentralServer
from tests.support.fleet_page import REGENCIES, Clock, Made, make_fleet, make_history

REGENCY_CODES = [code for code, _n in REGENCIES]
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
#: What the user sees: the traffic light's colour on screen.
RGB = {
    "green": "rgba(46, 125, 50, 1)",
    "amber": "rgba(249, 168, 37, 1)",
    "red": "rgba(198, 40, 40, 1)",
}


def _missing() -> str | None:
    if CHROMIUM is None or DRIVER is None:
        return "chromium or chromedriver not installed (apt-get install chromium chromium-driver)"
    if importlib.util.find_spec("selenium") is None:
        return "selenium not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless chromium for one test (quitting it closes the connections it kept
    open to the centre)."""
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1500"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Made], Any]]:
    clock = Clock()
    with CentralServer(tmp_path_factory.mktemp("fleet") / "c.db", clock=clock) as centre:
        history = make_history(centre.url, clock, "3273-01")
        made = make_fleet(centre.url, clock)
        yield centre.url, made, history


def _follow(browser: Any, element: Any) -> None:
    """Click a link or button and wait for the page it leads to (a new URL, loaded)."""
    from selenium.webdriver.support.ui import WebDriverWait

    before = browser.current_url
    element.click()
    WebDriverWait(browser, 20).until(
        lambda b: (
            b.current_url != before and b.execute_script("return document.readyState") == "complete"
        )
    )


def _rows(browser: Any) -> list[Any]:
    return list(browser.find_elements("css selector", "#stations tr.station"))


def test_each_station_shows_its_colour_and_each_regency_its_counts(
    browser: Any, fleet: tuple[str, list[Made], Any], tmp_path: Path
) -> None:
    """All 50 stations are listed under their regency with the light their state calls
    for, in its colour on screen, and the regency table counts each colour right."""
    url, made, _history = fleet
    browser.get(url + "/fleet")
    assert browser.find_element("tag name", "h1").text == "Armada"
    rows = _rows(browser)
    assert len(rows) == 50
    want = {m.station_id: m for m in made}
    for row in rows:
        sid = row.get_attribute("data-station")
        dot = row.find_element("css selector", "span.light")
        assert (sid, dot.value_of_css_property("background-color")) == (
            sid,
            RGB[want[sid].light],
        ), want[sid].kind
    groups = browser.find_elements("css selector", "#stations tr.group")
    assert [g.text for g in groups][:2] == [
        "DKI JAKARTA › KOTA JAKARTA SELATAN",
        "JAWA BARAT › KOTA BANDUNG",
    ]
    expected = {
        r: Counter(m.light for m in made if m.regency == r) for r in {m.regency for m in made}
    }
    for tr in browser.find_elements("css selector", "#regencies tr[data-regency]"):
        counts = {
            td.get_attribute("data-count"): int(td.text)
            for td in tr.find_elements("css selector", "td[data-count]")
        }
        regency = tr.get_attribute("data-regency")
        assert counts == {
            "green": expected[regency]["green"],
            "amber": expected[regency]["amber"],
            "red": expected[regency]["red"],
            "total": sum(expected[regency].values()),
        }, regency
    shot = tmp_path / "fleet.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("EKTP_FLEET_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["EKTP_FLEET_SCREENSHOT"])


def test_sorting_by_stock_and_filtering_by_light_follow_the_links(
    browser: Any, fleet: tuple[str, list[Made], Any]
) -> None:
    """Clicking the stock header sorts the stations by stock, clicking again reverses it;
    the red filter leaves only the red stations (all without JavaScript)."""
    url, made, _history = fleet
    browser.get(url + "/fleet?lang=en")
    assert browser.find_element("tag name", "h1").text == "Fleet"
    _follow(browser, browser.find_element("link text", "Stock"))
    stock = [int(r.find_elements("tag name", "td")[4].text) for r in _rows(browser)]
    assert stock == sorted(m.blanks for m in made)
    _follow(browser, browser.find_element("link text", "Stock"))
    stock = [int(r.find_elements("tag name", "td")[4].text) for r in _rows(browser)]
    assert stock == sorted((m.blanks for m in made), reverse=True)
    assert browser.find_element("tag name", "h1").text == "Fleet"  # the language is kept
    browser.get(url + "/fleet?lang=en")
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("name", "light")).select_by_value("red")
    _follow(browser, browser.find_element("css selector", "form button"))
    shown = {r.get_attribute("data-station") for r in _rows(browser)}
    assert shown == {m.station_id for m in made if m.light == "red"}


def test_the_station_page_charts_its_last_30_days(
    browser: Any, fleet: tuple[str, list[Made], Any]
) -> None:
    """A station's page draws a bar a day for 30 days: its printed cards as sent each
    day, and spoiled blanks stacked by class adding up to what was sent."""
    url, _made, history = fleet
    browser.get(url + "/fleet")
    _follow(browser, browser.find_element("link text", "3273-01"))
    assert browser.find_element("tag name", "h1").text == "3273-01"
    svg = browser.find_element("id", "chart")
    printed = svg.find_elements("css selector", "rect.printed")
    got = [int(r.get_attribute("data-count")) for r in printed]
    # 29 days as sent; today's heartbeat (the fleet's) printed nothing yet: no bar.
    assert got == [n for n, _s in history]
    spoiled = Counter[str]()
    for r in svg.find_elements("css selector", "rect.spoiled"):
        spoiled[r.get_attribute("data-class")] += int(r.get_attribute("data-count"))
        assert r.size["height"] > 0
    sent = Counter[str]()
    for _n, by_class in history:
        sent.update(by_class)
    assert spoiled == +sent
    heights = [r.size["height"] for r in printed]
    assert max(heights) > 2 * min(heights)  # bars scale with the day's cards
    assert browser.find_element("id", "printed-30").text == str(sum(n for n, _s in history))
