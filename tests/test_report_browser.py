"""Open the report in headless Debian chromium (Playwright, no downloaded browser)."""

from __future__ import annotations

import shutil
import unicodedata
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


# ----- the sample tenant's report, printed (issue 17) ------------------------------------------------
MAX_PAGES = 25
CLASSIFICATION = "TLP:AMBER - privileged and confidential"


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The sample tenant imported, detected, scoped and reported (plain, with a classification line)."""
    import json

    from ir_toolkit.analysis.detect import detect
    from ir_toolkit.analysis.scope import scope
    from ir_toolkit.case import Case
    from ir_toolkit.paths import sample_tenant_dir
    from tests.acceptance_cases import exported_files

    sample = sample_tenant_dir()
    key = json.loads((sample / "answer_key.json").read_text(encoding="utf-8"))
    case = Case.init(tmp_path_factory.mktemp("sample") / "case", tenant=key["tenant"]["domain"])
    case.import_files(exported_files(sample))
    detect(case)
    scope(case)
    return render_report(case, classification=CLASSIFICATION), key


def _pdf_pages(browser: Any, report: Path, out: Path) -> list[tuple[str, int]]:
    """Print the report as a user would (A4, CSS page size honoured): each page's text and image count."""
    import pypdf

    page = browser.new_page()
    try:
        page.goto(report.as_uri(), wait_until="load")
        page.pdf(path=str(out), format="A4", prefer_css_page_size=True, print_background=True)
    finally:
        page.close()
    # NFKC: the PDF's ligatures (ﬁ, ﬂ) back to letters
    return [(unicodedata.normalize("NFKC", p.extract_text() or ""), len(p.images))
            for p in pypdf.PdfReader(str(out)).pages]


def test_sample_report_prints_in_at_most_25_pages_with_no_heading_at_a_page_end(
        browser: Any, sample_report: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    report, key = sample_report
    printed = _pdf_pages(browser, report, tmp_path / "report.pdf")
    pages = [text for text, _ in printed]
    assert 3 <= len(pages) <= MAX_PAGES, len(pages)
    for number, text in enumerate(pages, start=1):
        assert CLASSIFICATION in text and f"Page {number} of {len(pages)}" in text  # margin boxes on every page
    # no heading is the last thing on a page: its content would start on the next one
    html_page = browser.new_page()
    try:
        html_page.goto(report.as_uri(), wait_until="load")
        headings = [h.strip() for h in html_page.eval_on_selector_all(
            "h2, h3, h4", "els => els.map(e => e.innerText)") if h.strip()]
        captions = html_page.eval_on_selector_all("figure:has(img) figcaption strong",
                                                  "els => els.map(e => e.innerText)")
    finally:
        html_page.close()
    # each figure prints whole: on every page, as many images as captions of drawn figures
    assert sum(n for _, n in printed) == len(captions) >= 5
    for number, (text, images) in enumerate(printed, start=1):
        flat = " ".join(text.split())
        assert images == sum(flat.count(c + ":") for c in captions), (number, images)
    for number, text in enumerate(pages, start=1):
        body = [line.strip() for line in text.splitlines()
                if line.strip() and CLASSIFICATION not in line and "Page " not in line and "ir_toolkit" not in line]
        if number < len(pages) and body:
            last = body[-1]
            assert not any(last == h or (len(last) > 12 and h.startswith(last)) for h in headings), (number, last)
    # the first page answers: which mailboxes (all compromised ones of the answer key), when, how strong
    first = " ".join(pages[0].split())
    assert "The answer" in first and "Which mailboxes" in first and "Evidence strength" in first
    for box in key["compromised_mailboxes"]:
        assert box["upn"] in first
    assert "2023-05-15" in first and "2023-06-14" in first  # the malicious window


def test_sample_report_toc_links_lead_to_their_sections(browser: Any,
                                                        sample_report: tuple[Path, dict[str, Any]]) -> None:
    report, key = sample_report
    page = browser.new_page()
    try:
        page.goto(report.as_uri(), wait_until="load")
        links = page.eval_on_selector_all("nav.toc a", "as => as.map(a => a.getAttribute('href'))")
        assert len(links) >= 12
        for href in links:
            page.click(f'nav.toc a[href="{href}"]')
            assert page.evaluate("location.hash") == href
            top = page.eval_on_selector(href, "e => e.getBoundingClientRect().top")
            assert abs(top) < 5, (href, top)  # scrolled to the section
            page.evaluate("window.scrollTo(0, 0)")
        summary = page.inner_text("#summary")
        counts = page.inner_text("#answer-strength")
        assert "finding(s)" in counts and "benign result(s) are not findings" in counts
        assert str(len(key["compromised_mailboxes"])) + " confirmed" in summary or "likely" in summary
        # the per-detection table adds up, its totals row included
        rows = page.eval_on_selector_all("#findings-by-detection tbody tr",
                                         "rs => rs.map(r => [...r.cells].map(c => c.innerText))")
        for row in rows:
            assert sum(int(c) for c in row[2:7]) == int(row[7]), row
    finally:
        page.close()
