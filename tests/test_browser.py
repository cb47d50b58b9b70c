"""The "E-gov ranking" page in a real browser: headless Debian Chromium (Playwright) logs into the Airflow
UI, opens the page from the nav entry and finds the top province; anonymous API calls get 401.

Screenshots: under the test's tmp_path and in <repo>/test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_server import ApiServer

pytest_plugins = ["airflow_server"]  # the session's data root and api-server, shared with test_ui_page.py
pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"  # Debian's package (scripts/system-deps.sh); no `playwright install`
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"
SCREENSHOT = "egov-ranking-page.png"
TIMEOUT_MS = 60_000  # the page's first request imports pandas/pyarrow in the api-server


def test_logged_in_user_opens_the_ranking_page_from_the_nav(api_server: ApiServer, top: dict, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} missing: run scripts/system-deps.sh (apt-get install chromium)"
    )
    base = api_server.base_url
    started = time.perf_counter()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            # anonymous: no session cookie -> the page's API and the page itself answer 401
            anonymous = browser.new_context()
            assert anonymous.request.get(f"{base}/egov-ranking/api/ranking").status == 401
            assert anonymous.request.get(f"{base}/egov-ranking/").status == 401
            anonymous.close()

            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            # the SimpleAuthManager login page; it sets the `_token` cookie and goes back to `next`
            page.goto(f"{base}/auth/login?next={base}/")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", api_server.admin_password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            assert "_token" in {c["name"] for c in context.cookies()}

            # the nav entry: Browse -> E-gov ranking, shown inside the UI (an iframe)
            page.get_by_role("button", name="Browse").click()
            page.get_by_role("menuitem", name="E-gov ranking").click()
            page.wait_for_url("**/plugin/egov-ranking")
            frame = page.frame_locator("iframe")
            first = frame.locator("#province-ranking tbody tr").first
            expect(first).to_contain_text(top["name"])
            expect(first).to_have_attribute("data-code", top["code"])
            expect(frame.locator("#sources")).to_be_visible()
            for path in (tmp_path / SCREENSHOT, ARTIFACTS / SCREENSHOT):
                path.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(path))

            # the province's commune table, in the same frame
            first.get_by_role("link").click()
            expect(frame.locator("h1")).to_contain_text(top["name"])
            expect(frame.locator("#commune-ranking tbody tr").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "egov-ranking-communes.png"))

            # the logged-in session reaches the API (cookie), the anonymous one above did not
            assert context.request.get(f"{base}/egov-ranking/api/ranking").status == 200
            # the whole page outside the UI, full length
            page.goto(f"{base}/egov-ranking/")
            expect(page.locator("#province-ranking tbody tr").first).to_contain_text(top["name"])
            page.screenshot(path=str(ARTIFACTS / "egov-ranking-page-full.png"), full_page=True)

            # the Data Docs link, and a link inside them, load with the same session
            with page.expect_response(lambda r: "/files/data_docs/latest/index.html" in r.url) as docs:
                page.locator("#data-docs-link").click()
            assert docs.value.status == 200
            with page.expect_response(lambda r: "/files/data_docs/latest/validations/" in r.url) as inner:
                page.locator("a[href^='validations/']").first.click()
            assert inner.value.status == 200
            context.close()
        finally:
            browser.close()
    print(
        f"\n[test_browser] browser session {time.perf_counter() - started:.1f} s; screenshots in {ARTIFACTS}"
    )
