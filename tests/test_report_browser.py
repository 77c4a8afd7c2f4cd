"""Open the report in headless Debian chromium (Playwright, no downloaded browser)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ir_toolkit.report.html import render_report
from tests import reportcase as rc

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _open(browser: Any, report: Path) -> tuple[Any, list[str], list[str]]:
    """Open the report; return the page, every request URL and every console message."""
    page = browser.new_page()
    requests: list[str] = []
    console: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: console.append(m.text))
    page.goto(report.as_uri(), wait_until="load")
    return page, requests, console


def test_report_opens_offline_with_images_and_scope(browser: Any, tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    report = render_report(case)
    page, requests, _ = _open(browser, report)
    try:
        assert page.title() == rc.TITLE
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        rows = page.locator("#scope-mailboxes tbody tr")
        assert rows.count() == 1
        assert rc.UPN in rows.first.inner_text()
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        assert widths and all(w > 0 for w in widths)
        # the only request is the report file itself (embedded images make no request of their own)
        assert [u for u in requests if not u.startswith(("file://", "data:"))] == []
        assert report.as_uri() in requests
    finally:
        page.close()


def test_payloads_render_as_text_and_run_no_script(browser: Any, tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    page, requests, _ = _open(browser, render_report(case))
    try:
        assert page.evaluate("typeof window.pwned") == "undefined"
        assert page.title() == rc.TITLE  # a payload would have set it to 'pwned'
        body = page.inner_text("body")
        for payload in (rc.PAYLOAD_UA, rc.PAYLOAD_NAME, rc.PAYLOAD_FOLDER, rc.PAYLOAD_EXPLANATION):
            assert payload in body
        assert page.locator("script, svg, iframe, object, embed").count() == 0
        assert page.locator("img").count() == page.locator('img[src^="data:image/png;base64,"]').count()
        assert [u for u in requests if not u.startswith(("file://", "data:"))] == []
    finally:
        page.close()


def test_redacted_report_in_browser_shows_no_identity(browser: Any, tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    page, _, _ = _open(browser, render_report(case, redact=True))
    try:
        body = page.inner_text("body").lower() + page.title().lower()
        for secret in (rc.UPN, "adele", "megan", "contoso", rc.TENANT_EGRESS, *rc.INTERNAL_IPS):
            assert secret.lower() not in body, secret
        assert rc.ACTOR_IP in body
    finally:
        page.close()
