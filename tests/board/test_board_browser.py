"""The status board as a person sees it: a real headless Chromium, driven through Debian's
chromedriver, against a real `serve --workers 2` on a machine that reaches no other host.

One server and one browser serve the whole module (a second browser without JavaScript, and a
second server that requires a key for reads, where a test needs one). The tests run in file
order: the live test adds a programme, so it comes after those that count the seeded ones.
Screenshots go to $ROADMAP_TEST_ARTIFACTS (CI keeps .ci/artifacts), else to the test's tmp_path.
"""

import base64
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.builders import API, bearer
from tests.support.servers import LiveServer, start_server

pytestmark = pytest.mark.live  # a real server and a headless Chromium

CHROMIUM = shutil.which("chromium")  # Debian's packages; .ci/run installs them
CHROMEDRIVER = shutil.which("chromedriver")

STATUSES = (
    "draft",
    "coordinated",
    "ministerially_approved",
    "supreme_council_approved",
    "in_implementation",
    "delayed",
    "completed",
    "carried_over",
    "withdrawn",
)
ROADMAP = "union-state-2021-2023"
GAS_MARKET_TITLE = "Union programme on forming a unified (joint) gas market"
GAS_MARKET_TITLE_RU = "Союзная программа по формированию объединенного рынка газа"
# What the page says, in the words of service/board/labels.py (copied, not imported: a typo
# there is what these tests are for).
LIVE_ON = "Live: the page refreshes when a change is recorded."
LIVE_OFF = "Not live: reload the page to see new changes."
LIVE_AS_OF = "A past date is shown: the page does not refresh itself."
CLOSED_TITLE = "The board is not public"
CLOSED_TITLE_RU = "Доступ закрыт"
BOARD_TITLE_RU = "Союзные программы: ход реализации"
LABELS_RU = {
    "completed": "Завершена",
    "carried_over": "Перенесена",
    "delayed": "Отстаёт от графика",
}
LABELS_EN = {"completed": "Completed", "carried_over": "Carried over", "delayed": "Delayed"}

PAGE_LOAD_TIMEOUT = 15  # seconds; a stalled navigation fails with TimeoutException
LIVE_WAIT = 10  # how long a change may take to show on an open page


# --- the server and the browsers ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(live_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Two workers: a page's event stream holds a connection while the next page loads.
    live = start_server(live_database, tmp_path_factory.mktemp("board") / "server.log", workers=2)
    yield live
    assert live.stop() == 0, "the server did not stop cleanly on SIGTERM"
    # Pages come and go with their streams open: none of that is an error.
    output = live.log.read_text()
    assert '"level": "ERROR"' not in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]


def new_driver(profile: Path, *, javascript: bool = True, language: str = "en-US,en") -> Any:
    """A headless Chromium that reaches only the loopback and records its network and console."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium is not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--lang=en-US",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
        # No other host: names resolve to nothing, and any address but the loopback (which
        # Chromium never proxies) goes to a proxy that is not there.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
    ):
        options.add_argument(argument)
    prefs: dict[str, Any] = {"intl.accept_languages": language}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # The given chromedriver: Selenium Manager would try to download one, and there is no network.
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    return driver


@pytest.fixture(scope="module")
def shared_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = new_driver(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


@pytest.fixture
def browser(shared_browser: Any) -> Any:
    """The module's browser, as a test left it undone: normal screen, no logs yet."""
    shared_browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    shared_browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    shared_browser.get("about:blank")
    shared_browser.get_log("performance")
    shared_browser.get_log("browser")
    return shared_browser


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    configured = os.environ.get("ROADMAP_TEST_ARTIFACTS")
    directory = Path(configured) if configured else tmp_path
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def editor(server: LiveServer, api_tokens: Mapping[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url, headers=bearer(api_tokens["editor"]), timeout=10
    ) as client:
        yield client


# --- what the browser saw -----------------------------------------------------------------------


def network(driver: Any) -> list[dict[str, Any]]:
    """The DevTools messages since the last call: requests sent, responses received."""
    return [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]


def requests_sent(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        message["params"]
        for message in messages
        if message["method"] == "Network.requestWillBeSent"
    ]


def responses(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        message["params"] for message in messages if message["method"] == "Network.responseReceived"
    ]


def other_hosts(urls: list[str], server: LiveServer) -> list[str]:
    return [
        url
        for url in urls
        if not (url.startswith(server.base_url + "/") or url.startswith("data:"))
    ]


def console_errors(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver: Any, path: Path) -> None:
    """The whole page, not only the window's part of it."""
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 1000, path


def wait(driver: Any, seconds: float = 5) -> WebDriverWait[Any]:
    """Polls a condition; an element that goes away as the page reloads itself is no answer."""
    return WebDriverWait(
        driver,
        seconds,
        poll_frequency=0.1,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )


def counts(driver: Any) -> dict[str, int]:
    """The counts table as shown: status → the number in its row."""
    shown = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "table.counts tr[data-status]"):
        cell = row.find_element(By.CSS_SELECTOR, "td[data-count]")
        assert cell.is_displayed()
        shown[row.get_attribute("data-status")] = int(cell.text.strip())
    return shown


def count_label(driver: Any, status: str) -> str:
    return str(
        driver.find_element(By.CSS_SELECTOR, f'table.counts tr[data-status="{status}"] th').text
    ).strip()


def group_of(driver: Any, code: str) -> str | None:
    """The status of the section that lists the programme, or None if no section does."""
    found = driver.find_elements(
        By.XPATH,
        f'//section[contains(concat(" ", @class, " "), " status-group ")]'
        f'[.//li[@data-program="{code}"]]',
    )
    assert len(found) <= 1, f"{code} is listed in {len(found)} sections"
    return found[0].get_attribute("data-status") if found else None


def programmes_in(driver: Any, status: str) -> list[str]:
    return [
        item.get_attribute("data-program")
        for item in driver.find_elements(
            By.CSS_SELECTOR, f'section.status-group[data-status="{status}"] li.program'
        )
    ]


def html_lang(driver: Any) -> str:
    return str(driver.find_element(By.TAG_NAME, "html").get_attribute("lang"))


def computed(driver: Any, element: WebElement, prop: str) -> str:
    return str(
        driver.execute_script(
            "return getComputedStyle(arguments[0]).getPropertyValue(arguments[1])", element, prop
        )
    )


def too_wide(driver: Any, width: int) -> list[str]:
    """The outermost elements that reach past `width`, and how far (outside scroll boxes)."""
    return list(
        driver.execute_script(
            """
            const found = [];
            for (const element of document.body.querySelectorAll("*")) {
              if (element.closest(".scroll") && !element.matches(".scroll")) continue;
              const box = element.getBoundingClientRect();
              const parent = element.parentElement.getBoundingClientRect();
              if (box.right > arguments[0] + 0.5 && parent.right <= arguments[0] + 0.5) {
                const name = element.tagName.toLowerCase() + (element.id ? "#" + element.id : "")
                  + (element.className ? "." + String(element.className).replace(/ /g, ".") : "");
                found.push(name + " to " + Math.round(box.right) + "px");
              }
            }
            return found.slice(0, 10);
            """,
            width,
        )
    )


# --- the tests ----------------------------------------------------------------------------------


def test_the_board_loads_offline_from_the_service_alone(
    browser: Any, server: LiveServer, artifacts: Path
) -> None:
    browser.get(server.base_url + "/board")
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.counts"))
    shown = counts(browser)
    assert list(shown) == list(STATUSES), shown  # every status, in the workflow's order
    assert shown["completed"] == 25
    assert shown["carried_over"] == 3
    assert sum(shown.values()) == 28
    assert count_label(browser, "completed") == "Completed"
    assert html_lang(browser) == "en"
    # A section per status that has programmes, listing exactly as many as the table counts.
    sections = [
        section.get_attribute("data-status")
        for section in browser.find_elements(By.CSS_SELECTOR, "section.status-group")
    ]
    assert sorted(sections) == sorted(status for status, n in shown.items() if n), sections
    for status in sections:
        assert len(programmes_in(browser, status)) == shown[status], status
        heading = browser.find_element(
            By.CSS_SELECTOR, f'section.status-group[data-status="{status}"] h2'
        ).text
        assert str(shown[status]) in heading, heading
    assert group_of(browser, "gas_market") == "carried_over"
    gas = browser.find_element(By.CSS_SELECTOR, 'li.program[data-program="gas_market"]')
    link = gas.find_element(By.TAG_NAME, "a")
    assert link.text.strip() == GAS_MARKET_TITLE
    href = urlsplit(link.get_attribute("href") or "")
    assert (href.netloc, href.path) == (
        urlsplit(server.base_url).netloc,
        "/board/programs/gas_market",
    )
    assert "energy" in gas.text
    assert gas.find_element(By.TAG_NAME, "time").get_attribute("datetime") == "2024-01-29"
    wait(browser).until(lambda d: d.find_element(By.ID, "live").text.strip() == LIVE_ON)
    screenshot(browser, artifacts / "board.png")

    messages = network(browser)
    urls = [request["request"]["url"] for request in requests_sent(messages)]
    assert urls, "no request recorded"
    elsewhere = other_hosts(urls, server)
    assert not elsewhere, f"the page asked other hosts: {elsewhere}"
    assert server.base_url + "/board-assets/board.css" in urls
    assert server.base_url + "/board-assets/board.js" in urls
    assert not [url for url in urls if url.endswith("/favicon.ico")]
    failed = [
        (response["response"]["url"], response["response"]["status"])
        for response in responses(messages)
        if response["response"]["status"] >= 400
    ]
    assert not failed, failed
    assert not console_errors(browser)


def test_the_as_of_form_shows_the_board_at_the_end_of_a_past_day(
    browser: Any, server: LiveServer
) -> None:
    browser.get(server.base_url + "/board")
    form = browser.find_element(By.CSS_SELECTOR, "form.filters")
    assert (form.get_attribute("method") or "").lower() == "get"
    date_input = form.find_element(By.CSS_SELECTOR, 'input[type="date"][name="as_of"]')
    # Typed as a person does, in the en-US field order (a click first would open the picker,
    # which takes the keys).
    date_input.send_keys("12312022")
    assert date_input.get_attribute("value") == "2022-12-31"
    form.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()
    wait(browser).until(lambda d: "as_of=2022-12-31" in d.current_url)
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.counts"))

    assert group_of(browser, "gas_market") == "delayed"
    gas = browser.find_element(By.CSS_SELECTOR, 'li.program[data-program="gas_market"]')
    assert gas.find_element(By.TAG_NAME, "time").get_attribute("datetime") == "2022-12-16"
    shown = counts(browser)
    assert shown["delayed"] == 1
    assert shown["in_implementation"] == 27
    assert shown["completed"] == 0
    assert shown["carried_over"] == 0
    assert programmes_in(browser, "delayed") == ["gas_market"]
    # The form shows what it asked for.
    again = browser.find_element(By.CSS_SELECTOR, 'form.filters input[name="as_of"]')
    assert again.get_attribute("value") == "2022-12-31"
    # A past day does not change: the page says it does not follow the stream, and does not.
    assert browser.find_element(By.ID, "live").text.strip() == LIVE_AS_OF
    assert not browser.find_element(By.TAG_NAME, "body").get_attribute("data-stream")
    kinds = [request.get("type") for request in requests_sent(network(browser))]
    assert "EventSource" in kinds  # the board before the form did follow it
    browser.get_log("performance")
    browser.refresh()
    assert "EventSource" not in [request.get("type") for request in requests_sent(network(browser))]


def test_the_board_speaks_russian_and_switches_back_to_english(
    browser: Any, server: LiveServer
) -> None:
    browser.get(server.base_url + "/board?lang=ru&sector=energy")
    assert html_lang(browser) == "ru"
    assert BOARD_TITLE_RU in browser.find_element(By.TAG_NAME, "h1").text
    for status, label in LABELS_RU.items():
        assert count_label(browser, status) == label
    completed = browser.find_element(
        By.CSS_SELECTOR, 'section.status-group[data-status="completed"] h2'
    ).text
    assert LABELS_RU["completed"] in completed, completed
    # The Russian title where one is known; else the English one, marked as English.
    gas_link = browser.find_element(By.CSS_SELECTOR, 'li.program[data-program="gas_market"] a')
    assert gas_link.text.strip() == GAS_MARKET_TITLE_RU
    assert (
        "энергетика"
        in browser.find_element(By.CSS_SELECTOR, 'li.program[data-program="gas_market"]').text
    )
    oil = browser.find_element(By.CSS_SELECTOR, 'li.program[data-program="oil_market"]')
    english = oil.find_elements(By.CSS_SELECTOR, 'a [lang="en"], a[lang="en"]')
    assert english, oil.get_attribute("outerHTML")
    assert english[0].text.strip() == "Unification of the oil and petroleum-products markets"
    assert set(programmes_in(browser, "completed")) | set(
        programmes_in(browser, "carried_over")
    ) == {"gas_market", "oil_market", "electricity_market", "nuclear_energy"}

    browser.find_element(By.CSS_SELECTOR, 'nav.languages a[hreflang="en"]').click()
    wait(browser).until(lambda d: html_lang(d) == "en")
    for status, label in LABELS_EN.items():
        assert count_label(browser, status) == label
    assert (
        browser.find_element(By.CSS_SELECTOR, 'li.program[data-program="gas_market"] a').text
        == GAS_MARKET_TITLE
    )
    assert "lang=en" in browser.current_url
    assert "sector=energy" in browser.current_url  # the switch keeps the filters
    assert len(browser.find_elements(By.CSS_SELECTOR, "li.program")) == 4


def test_accept_language_picks_russian(server: LiveServer, tmp_path: Path) -> None:
    driver = new_driver(tmp_path / "profile", language="ru-RU,ru")
    try:
        driver.get(server.base_url + "/")  # the board is the service's front page too
        assert html_lang(driver) == "ru"
        assert BOARD_TITLE_RU in driver.find_element(By.TAG_NAME, "h1").text
        assert count_label(driver, "carried_over") == LABELS_RU["carried_over"]
    finally:
        driver.quit()


def test_the_chart_draws_a_band_per_status(browser: Any, server: LiveServer) -> None:
    browser.get(server.base_url + "/board")
    figure = browser.find_element(By.CSS_SELECTOR, "figure.chart")
    svg = figure.find_element(By.CSS_SELECTOR, 'svg[role="img"]')
    assert svg.size["width"] > 100, svg.size
    assert svg.size["height"] > 50, svg.size
    title = svg.find_element(By.TAG_NAME, "title").get_attribute("textContent") or ""
    assert title.strip()
    assert figure.find_element(By.TAG_NAME, "figcaption").text.strip()
    bands = svg.find_elements(By.CSS_SELECTOR, "path.band")
    statuses = [band.get_attribute("data-status") for band in bands]
    assert len(statuses) == len(set(statuses)), statuses
    assert set(statuses) <= set(STATUSES), statuses
    # Today's statuses, and gas_market's delay of 2022-2024, are all drawn.
    assert {"completed", "carried_over", "delayed", "in_implementation"} <= set(statuses)
    for band in bands:
        assert re.search(r"\d", band.get_attribute("d") or ""), band.get_attribute("outerHTML")
    completed = svg.find_element(By.CSS_SELECTOR, 'path.band[data-status="completed"]')
    assert completed.size["width"] > 0
    assert completed.size["height"] > 0
    # The legend names every band, in words.
    legend = figure.text
    for status in statuses:
        label = {**LABELS_EN, "in_implementation": "In implementation"}.get(status)
        if label:
            assert label in legend, (label, legend)


def test_the_board_follows_changes_live(
    browser: Any, server: LiveServer, editor: httpx.Client
) -> None:
    browser.get(server.base_url + "/board")
    wait(browser).until(lambda d: d.find_element(By.ID, "live").text.strip() == LIVE_ON)
    assert browser.find_element(By.ID, "live").get_attribute("aria-live") == "polite"
    stream = browser.find_element(By.TAG_NAME, "body").get_attribute("data-stream") or ""
    assert stream.startswith("/api/v1/events/stream"), stream
    before = counts(browser)
    code = "board_live_probe"
    source = "https://example.org/board-live-probe"

    created = editor.post(
        f"{API}/programs",
        json={
            "code": code,
            "title": "A programme the live board must show",
            "sector": "energy",
            "roadmap": ROADMAP,
            "source_url": source,
        },
    )
    assert created.status_code == 201, created.text
    wait(browser, LIVE_WAIT).until(lambda d: group_of(d, code) == "draft")
    assert counts(browser)["draft"] == before["draft"] + 1

    moved = editor.post(
        f"{API}/programs/{code}/transitions",
        json={"to_status": "coordinated", "source_url": source, "note": "live probe"},
    )
    assert moved.status_code == 201, moved.text
    wait(browser, LIVE_WAIT).until(lambda d: group_of(d, code) == "coordinated")
    shown = counts(browser)
    assert shown["draft"] == before["draft"]
    assert shown["coordinated"] == before["coordinated"] + 1
    assert shown["completed"] == 25

    # The programme's own page follows its history too.
    browser.get(f"{server.base_url}/board/programs/{code}")
    wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "ol.history li.event")) == 2)
    moved = editor.post(
        f"{API}/programs/{code}/transitions",
        json={"to_status": "ministerially_approved", "source_url": source},
    )
    assert moved.status_code == 201, moved.text
    wait(browser, LIVE_WAIT).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "ol.history li.event")) == 3
    )
    assert (
        "Approved by the Council of Ministers"
        in browser.find_element(By.CSS_SELECTOR, 'ol.history li.event[data-seq="3"]').text
    )
    # Back to the board, which the browser kept as it was: it catches up by itself.
    browser.back()
    wait(browser, LIVE_WAIT).until(lambda d: group_of(d, code) == "ministerially_approved")
    assert counts(browser)["coordinated"] == before["coordinated"]
    assert not console_errors(browser)


def test_without_javascript_the_board_is_a_plain_page(server: LiveServer, tmp_path: Path) -> None:
    driver = new_driver(tmp_path / "profile", javascript=False)
    try:
        driver.get(server.base_url + "/board")
        shown = counts(driver)
        assert shown["completed"] == 25
        assert shown["carried_over"] == 3
        assert group_of(driver, "gas_market") == "carried_over"
        # Nothing is live, and the page does not say it is.
        assert driver.find_element(By.ID, "live").text.strip() == LIVE_OFF
        kinds = [request.get("type") for request in requests_sent(network(driver))]
        assert "EventSource" not in kinds, kinds
        # The filters are a plain GET form.
        driver.find_element(By.CSS_SELECTOR, 'form.filters select[name="status"]')
        driver.get(server.base_url + "/board?status=carried_over")
        assert sorted(
            item.get_attribute("data-program")
            for item in driver.find_elements(By.CSS_SELECTOR, "li.program")
        ) == sorted(programmes_in(driver, "carried_over"))
        assert len(driver.find_elements(By.CSS_SELECTOR, "li.program")) == 3
    finally:
        driver.quit()


def test_many_pages_in_a_row_do_not_stall(browser: Any, server: LiveServer) -> None:
    """Chromium opens at most 6 connections to a host: an event stream left open by each page
    (in the back/forward cache, say) would stall the 7th."""
    browser.get(server.base_url + "/board")
    codes = programmes_in(browser, "completed")[:4]
    assert len(codes) == 4
    timings: list[tuple[str, float]] = []

    def step(name: str, action: Callable[[], None], ready: str) -> None:
        started = time.monotonic()
        try:
            action()
            wait(browser, PAGE_LOAD_TIMEOUT).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, ready)
            )
        except TimeoutException:
            pytest.fail(f"page {len(timings) + 1} ({name}) stalled; before it: {timings}")
        timings.append((name, round(time.monotonic() - started, 2)))

    for code in codes:
        step(
            code,
            browser.find_element(By.CSS_SELECTOR, f'li.program[data-program="{code}"] a').click,
            "ol.history",
        )
        assert urlsplit(browser.current_url).path == f"/board/programs/{code}"
        step("back", browser.back, "table.counts")
    for code in codes[:2]:  # and forward again, by address
        step(code, partial(browser.get, f"{server.base_url}/board/programs/{code}"), "ol.history")
    step("board", partial(browser.get, server.base_url + "/board"), "table.counts")
    assert len(timings) == 11
    assert all(seconds < PAGE_LOAD_TIMEOUT for _, seconds in timings), timings
    # The last board is live still: its stream got a connection.
    wait(browser, LIVE_WAIT).until(lambda d: d.find_element(By.ID, "live").text.strip() == LIVE_ON)


def test_a_programme_page_tells_its_history(
    browser: Any, server: LiveServer, editor: httpx.Client
) -> None:
    browser.get(server.base_url + "/board/programs/gas_market")
    assert browser.find_element(By.TAG_NAME, "h1").text.strip() == GAS_MARKET_TITLE
    recorded = editor.get(f"{API}/programs/gas_market/history", params={"limit": 500}).json()
    events = browser.find_elements(By.CSS_SELECTOR, "ol.history li.event")
    seqs = [int(event.get_attribute("data-seq")) for event in events]
    assert seqs == sorted(seqs), seqs
    assert seqs == [item["seq"] for item in recorded["items"]]
    dates = [event.find_element(By.TAG_NAME, "time").get_attribute("datetime") for event in events]
    assert dates == [item["effective_date"] for item in recorded["items"]]
    assert dates[:7] == [
        "2019-09-06",
        "2021-09-09",
        "2021-09-10",
        "2021-11-04",
        "2021-11-04",
        "2022-12-16",
        "2024-01-29",
    ]

    def event(seq: int) -> WebElement:
        element: WebElement = browser.find_element(
            By.CSS_SELECTOR, f'ol.history li.event[data-seq="{seq}"]'
        )
        return element

    decree = event(4).text
    # The decision by its title, linked to the decision itself.
    assert "Decision: Supreme State Council Decree No. 6" in decree, decree
    assert event(4).find_elements(By.CSS_SELECTOR, 'a[href$="/ssc-decree-6-2021"]'), decree
    assert "Decision: Supreme State Council Decree No. 6" in event(5).text
    assert "Approved by the Council of Ministers" in decree
    assert "Approved by the Supreme State Council" in decree
    assert "seed" in decree  # who recorded it
    delay = event(6)
    assert "In implementation" in delay.text, delay.text
    assert "Delayed" in delay.text, delay.text
    assert "deadlines were missed" in delay.text
    cited = delay.find_elements(By.CSS_SELECTOR, 'a[rel~="external"]')
    links = [a.get_attribute("href") for a in cited]
    assert "https://tass.ru/mezhdunarodnaya-panorama/16611915" in links, links
    assert "Decision" not in delay.text  # no decision made the delay

    milestones = browser.find_element(By.CSS_SELECTOR, "table.milestones")
    row = milestones.find_element(By.XPATH, ".//tr[contains(., 'Addendum setting the principles')]")
    assert "2023-12-01" in row.text or row.find_elements(
        By.CSS_SELECTOR, 'time[datetime="2023-12-01"]'
    ), row.text
    assert "missed" in row.text, row.text
    sources = browser.find_element(By.CSS_SELECTOR, "ul.sources").text
    assert "https://tass.ru/mezhdunarodnaya-panorama/16611915" in sources or browser.find_elements(
        By.CSS_SELECTOR, 'ul.sources a[href="https://tass.ru/mezhdunarodnaya-panorama/16611915"]'
    )
    assert "reform.news (Galuzin)" in sources, sources

    # From the top of the page, Tab reaches a link, and a person can see where the focus is.
    browser.get(server.base_url + "/board/programs/gas_market")
    ActionChains(browser).send_keys(Keys.TAB).perform()
    focused = browser.switch_to.active_element
    assert focused.tag_name == "a", focused.get_attribute("outerHTML")
    assert focused.is_displayed()
    box = browser.execute_script("return arguments[0].getBoundingClientRect().toJSON()", focused)
    assert box["width"] > 0, box
    assert box["height"] > 0, box
    assert 0 <= box["left"] < 1280, box  # on screen, not off to a side
    assert 0 <= box["top"] < 900, box
    outline = computed(browser, focused, "outline-style")
    outline_width = computed(browser, focused, "outline-width")
    shadow = computed(browser, focused, "box-shadow")
    assert (outline != "none" and outline_width != "0px") or shadow != "none", (
        outline,
        outline_width,
        shadow,
    )
    target = focused.get_attribute("href") or ""
    if "#" in target:  # a skip link: it leads somewhere on the page
        anchor = target.split("#", 1)[1]
        assert browser.find_elements(By.ID, anchor), target


def test_a_programme_pages_source_links_lead_to_other_sites(
    browser: Any, server: LiveServer
) -> None:
    """Some recorded sources are not addresses ("reform.news (Galuzin)"): shown as a link, one
    would lead to a page of the board itself that does not exist."""
    own = urlsplit(server.base_url).netloc
    for code in ("gas_market", "competition_rules"):
        browser.get(f"{server.base_url}/board/programs/{code}")
        cited = browser.find_elements(By.CSS_SELECTOR, 'a[rel~="external"]')
        assert cited, code
        hrefs = [str(a.get_attribute("href")) for a in cited]  # as resolved by the browser
        broken = sorted({href for href in hrefs if urlsplit(href).netloc in ("", own)})
        assert not broken, f"{code}: source links that lead back into the board: {broken}"
        assert all(urlsplit(href).scheme in ("http", "https") for href in hrefs), hrefs


def test_on_a_phone_nothing_scrolls_sideways(
    browser: Any, server: LiveServer, artifacts: Path
) -> None:
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True},
    )
    overflowing = {}
    for page in (
        "/board",
        "/board?lang=ru",
        "/board?as_of=2022-12-31",
        "/board/programs/gas_market",
        "/board/programs/gas_market?lang=ru",
    ):
        browser.get(server.base_url + page)
        sizes = browser.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        # A phone widens its layout to fit content too wide for the screen (innerWidth grows),
        # and then the page scrolls sideways or shows at a fraction of its size.
        if max(sizes) != 390 or sizes[1] != 390:
            overflowing[page] = (
                f"{sizes[0]}px of content, a {sizes[1]}px layout; "
                f"wider than the screen: {too_wide(browser, 390)}"
            )
    browser.get(server.base_url + "/board")
    screenshot(browser, artifacts / "board-phone.png")
    assert not overflowing, overflowing


def test_print_leaves_out_the_controls(browser: Any, server: LiveServer) -> None:
    browser.get(server.base_url + "/board")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert browser.execute_script("return matchMedia('print').matches")
    for selector in ("form.filters", "nav.languages"):
        element = browser.find_element(By.CSS_SELECTOR, selector)
        assert computed(browser, element, "display") == "none", selector
    assert browser.find_element(By.CSS_SELECTOR, "table.counts").is_displayed()
    gas = browser.find_element(By.CSS_SELECTOR, 'li.program[data-program="gas_market"]')
    assert gas.is_displayed()
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    assert browser.find_element(By.CSS_SELECTOR, "form.filters").is_displayed()


def test_the_api_docs_render_offline(browser: Any, server: LiveServer) -> None:
    browser.get(server.base_url + "/docs")
    wait(browser, 15).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) > 10)
    assert "List Programs" in browser.find_element(By.TAG_NAME, "body").text
    urls = [request["request"]["url"] for request in requests_sent(network(browser))]
    elsewhere = other_hosts(urls, server)
    assert not elsewhere, elsewhere
    assert server.base_url + "/openapi.json" in urls


def test_a_closed_service_shows_a_closed_board(
    browser: Any, live_database: str, tmp_path: Path, editor: httpx.Client
) -> None:
    titles = [
        item["title"]
        for item in editor.get(f"{API}/programs", params={"limit": 500}).json()["items"]
    ]
    assert len(titles) >= 28
    closed = start_server(
        live_database,
        tmp_path / "closed.log",
        workers=1,
        extra_env={"ROADMAP_REQUIRE_AUTH_FOR_READS": "true"},
    )
    try:
        for page, heading in (
            ("/board", CLOSED_TITLE),
            ("/", CLOSED_TITLE),
            ("/board/programs/gas_market", CLOSED_TITLE),
            ("/board?lang=ru", CLOSED_TITLE_RU),
        ):
            browser.get_log("performance")
            browser.get(closed.base_url + page)
            documents = [
                response["response"]["status"]
                for response in responses(network(browser))
                if response.get("type") == "Document"
            ]
            assert documents == [403], (page, documents)
            text = browser.find_element(By.TAG_NAME, "body").text
            assert heading in browser.find_element(By.TAG_NAME, "h1").text, (page, text)
            assert heading in browser.title, browser.title
            shown = [title for title in titles if title in text]
            assert not shown, (page, shown)
            assert not browser.find_elements(
                By.CSS_SELECTOR, "li.program, [data-program], table.counts, figure.chart"
            )
            assert GAS_MARKET_TITLE_RU not in text
    finally:
        closed.stop()
