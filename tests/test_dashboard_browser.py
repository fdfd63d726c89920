"""The dashboard in a real headless Chromium (Debian's, driven by playwright) against
the real stack: workers, beat and a sandbox slow enough that a campaign takes
several seconds. The page must show the campaign's progress moving without a
reload, a sender closed for today, the held count, and refuse a browser
without the key.

DREAMS_DASHBOARD_SCREENSHOTS=docs saves docs/dashboard.png (mid-campaign) and
docs/dashboard-campaign.png (the campaigns table) for the README.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from e2e_helpers import make_stack, nums, wait_for

from dreams_sms.api.dashboard import make_router
from dreams_sms.config import Settings
from dreams_sms.queue.quota import DailyQuota

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
KEY = "test-key"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = os.environ.get("DREAMS_DASHBOARD_SCREENSHOTS", "")

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):  # CI installs it (scripts/setup): missing there is a failure
        raise RuntimeError(f"{CHROMIUM} is missing on CI: scripts/setup should install it")
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (scripts/setup does)",
                allow_module_level=True)

from playwright.sync_api import BrowserContext, Page, sync_playwright  # noqa: E402
from playwright.sync_api import Error as PlaywrightError  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def stack():
    """The stack of conftest, with unknown outcomes held for review (not reconciled)."""
    s = make_stack(workers=1, concurrency=2, env={"DREAMS_ON_UNKNOWN": "hold"})
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def dashboard(stack) -> Iterator[str]:
    """A tiny app with only the dashboard router, served by uvicorn in a thread."""
    import redis
    import uvicorn
    from fastapi import FastAPI

    settings = Settings.from_env(stack.env())
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    app = FastAPI()
    app.include_router(make_router(lambda secret: secret == KEY, r, settings))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    r.close()


@pytest.fixture(scope="module")
def playwright():
    with sync_playwright() as pw:
        yield pw


def chromium(playwright, tmp_path: Path, **options) -> BrowserContext:
    """Debian's Chromium with a fresh profile of its own."""
    return playwright.chromium.launch_persistent_context(
        str(tmp_path), executable_path=CHROMIUM, args=ARGS, headless=True,
        viewport={"width": 1280, "height": 900}, **options)


@pytest.fixture
def page(playwright, tmp_path) -> Iterator[Page]:
    context = chromium(playwright, tmp_path / "profile",
                       http_credentials={"username": "ops", "password": KEY})
    yield context.pages[0] if context.pages else context.new_page()
    context.close()


def progress(page: Page, cid: str) -> float:
    return float(page.get_attribute(f'progress[data-campaign="{cid}"]', "value") or 0)


def open_refused(context: BrowserContext, url: str) -> None:
    """Navigating must not show the page: a 401, or Chromium giving up on the prompt."""
    page = context.new_page()
    try:
        answer = page.goto(url)
    except PlaywrightError as exc:  # headless: no prompt to answer, the load is cancelled
        assert "ERR_INVALID_AUTH_CREDENTIALS" in str(exc), exc
    else:
        assert answer is not None and answer.status == 401
    assert page.locator("#campaigns").count() == 0


@pytest.mark.parametrize("password", [None, "wrong-key"])
def test_without_the_key_the_browser_is_refused(playwright, tmp_path, dashboard, password):
    creds = {"http_credentials": {"username": "ops", "password": password}} if password else {}
    context = chromium(playwright, tmp_path / "no-key", **creds)
    try:
        open_refused(context, dashboard + "/dashboard")
        answer = context.request.get(dashboard + "/dashboard/data.json")
        assert answer.status == 401
        assert answer.headers["www-authenticate"].startswith("Basic ")
        assert "wrong-key" not in answer.text()
    finally:
        context.close()
    wrong = requests.get(dashboard + "/dashboard/data.json", auth=("ops", "nope"), timeout=5)
    assert wrong.status_code == 401 and "nope" not in wrong.text


def test_progress_moves_a_closed_sender_and_held_messages_show(stack, admin, p, page,
                                                               dashboard):
    # Held: the sandbox takes no call for 3 s, beyond the workers' 2 s read timeout.
    admin.faults(hang_rate=1.0, hang_s=3)
    held = p.send_bulk("Alerts", [(n, f"held {i}") for i, n in enumerate(nums(5, 8_000_000))])
    wait_for(lambda: p.campaign_status(held).unknown == 5, 60, "5 held messages", stack)
    # Closed for today: an operator set the sender's limit to 0.
    quota = DailyQuota(p.r, prefix=p.settings.prefix, tz=p.settings.tz)
    quota.set_limit("Closed", 0)
    p.send_bulk("Closed", [(n, "tomorrow") for n in nums(3, 8_100_000)])
    # A campaign that takes several seconds: 40 calls of 100, 350 ms each, two slots.
    admin.faults(reset=True, latency_ms=350)
    cid = p.send_bulk("Promo", [(n, f"ramadan {i}") for i, n in
                                enumerate(nums(4000, 8_200_000))], campaign="ramadan")

    page.goto(dashboard + "/dashboard")
    page.evaluate("window.__loaded_once = true")  # gone if the page ever reloads
    bar = f'progress[data-campaign="{cid}"]'
    page.wait_for_selector(bar)
    first = progress(page, cid)
    assert first < 4000
    # The script refreshes the page in place: the bar moves on, the marker stays.
    page.wait_for_function(
        """([bar, first]) => Number(document.body.dataset.polls || 0) >= 1
               && Number(document.querySelector(bar).value) > first""",
        arg=[bar, first], timeout=30_000)
    second = progress(page, cid)
    assert second > first
    assert page.evaluate("window.__loaded_once") is True
    assert page.get_attribute("#live", "data-state") == "live"

    closed = page.locator('tr[data-sender="Closed"] [data-state]')
    assert closed.get_attribute("data-state") == "closed"
    assert closed.inner_text() == "closed for today"
    assert "daily limit 0 reached" in page.inner_text('tr[data-sender="Closed"]')
    assert page.inner_text("#held-count") == "5"
    assert page.locator("#held-ids li").count() == 5
    assert "dreams-sms held resend" in page.inner_text("#held")
    alerts = page.inner_text("#alerts")
    assert "Sender Closed is closed for today" in alerts and "5 held message(s)" in alerts
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / "dashboard.png"), full_page=True)
        page.locator("#campaigns-section").screenshot(
            path=str(Path(SHOTS) / "dashboard-campaign.png"))

    # To the end, still without a reload: 100 %, every message sent.
    wait_for(lambda: p.campaign_status(cid).done, 120, "the campaign", stack)
    page.wait_for_function(
        """(bar) => document.querySelector(bar).closest('tr').classList.contains('finished')""",
        arg=bar, timeout=15_000)
    row = f'tr[data-campaign="{cid}"]'
    assert page.inner_text(f"{row} .pct") == "100%"
    assert page.inner_text(f'{row} td[data-state="sent"]') == "4000"
    assert progress(page, cid) == 4000
    assert page.evaluate("window.__loaded_once") is True
