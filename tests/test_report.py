"""The HTML report: sections, escaping, self-containment, redaction, CLI."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from ir_toolkit.case import Case
from ir_toolkit.report import casedata
from ir_toolkit.report.html import CSP, render_report
from ir_toolkit.report.redact import KEY_FILE, Redactor, case_key, for_case
from ir_toolkit.schema import FINDING_COLUMNS, conform, to_arrow
from tests import reportcase as rc
from tests.conftest import cli


@pytest.fixture
def case(tmp_path: Path) -> Case:
    return rc.build(tmp_path / "case")


def _text(page: str) -> str:
    """The page with tags removed and entities decoded: what a reader can see or copy."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_report_has_every_section_and_is_self_contained(case: Case) -> None:
    path = render_report(case)
    assert path == case.root / "reports" / "report.html"
    page = path.read_text(encoding="utf-8")
    assert f"<title>{html.escape(rc.TITLE)}</title>" in page
    for section in ("summary", "key-events", "recommendations", "people", "actor", "timeline", "graph", "findings",
                    "holdings", "method", "evidence"):
        assert f'<section id="{section}">' in page
    assert page.index('id="answer"') < page.index('id="toc"') < page.index('<section id="key-events">') \
        < page.index('<section id="recommendations">') < page.index('<section id="people">') \
        < page.index('<section id="findings">') < page.index('id="appendix-messages"')
    assert f'content="{CSP}"' in page
    assert 'id="scope-mailboxes"' in page and 'id="scope-ips"' in page and 'id="custody-actions"' in page
    # every table-of-contents link leads to an element of the page
    targets = re.findall(r'<a href="#([^"]+)"', page)
    assert len(targets) >= 12 and all(f'id="{t}"' in page for t in targets)
    appendix = re.search(r'<section id="appendix-messages".*?</section>', page, re.S)
    assert appendix and appendix.group(0).count('<span class="mono">&lt;m') == 3
    assert "&lt;m3@example.org&gt;" in appendix.group(0)
    counts = re.search(r'<table id="scope-message-counts">.*?</table>', page, re.S)
    assert counts and re.search(r"<td>3</td><td>2</td><td>0</td><td>1</td>", counts.group(0))
    # the message list as CSV, neutralised, with the pseudonym a redacted report shows
    csv = pd.read_csv(case.root / "reports" / "messages.csv")
    assert list(csv.columns) == ["mailbox", "InternetMessageId", "folder", "first_access", "last_access", "binds",
                                 "pseudonym"]
    assert len(csv) == 3 and set(csv["mailbox"]) == {rc.UPN}
    assert all(not str(f).startswith(("=", "+", "-", "@")) for f in csv["folder"])
    # no external resource of any kind: every src is an embedded PNG, no link/href/url()/@import
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"<link|url\(|@import|<script", page, re.IGNORECASE)
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))  # in-page links only


def test_report_content_summary_findings_evidence_custody(case: Case) -> None:
    text = _text(render_report(case, tz="Europe/Berlin").read_text(encoding="utf-8"))
    assert "An actor read mail in 1 mailbox(es) with access tokens the tenant never issued" in text
    assert "3 distinct message(s) named by the actor" in text
    assert "1 finding(s) (confirmed 1, likely 0, possible 0)" in text
    # key events, dated in the display zone; what to do now with the retention deadlines
    assert f"2023-06-05 04:00:00 CEST First actor activity (from {rc.ACTOR_IP})" in " ".join(text.split())
    assert f"First actor access to {rc.UPN} (confirmed)" in text and "Last actor activity seen" in text
    assert "Revoke the sessions and refresh tokens of the 1 mailbox owner(s)" in text
    assert re.search(r"signin_interactive\s+held\s+30\s+2023-07-05 04:00:00 CEST\s+aged out", text)
    # times shown in the display zone: 02:00 UTC is 04:00 in Berlin (CEST)
    assert "2023-06-05 04:00:00 CEST" in text
    # evidence references resolve record ids to the evidence file and line
    assert "raw/imports/ual.csv#2 (+1 more)" in text
    # data coverage: events per source, and custody entries counted
    assert re.search(r"mail_access\s+Exchange MailItemsAccessed audit records\s+3", text)
    assert "test.note" in text and "case.init" in text
    # method: the missing-data note for a case without a ledger
    assert "No live collection" in text


def test_payloads_are_escaped_text_never_markup(case: Case) -> None:
    page = render_report(case).read_text(encoding="utf-8")
    for payload in (rc.PAYLOAD_UA, rc.PAYLOAD_FOLDER, rc.PAYLOAD_NAME, rc.PAYLOAD_EXPLANATION, "<b>Exchange</b>"):
        assert payload not in page
    text = _text(page)
    for payload in (rc.PAYLOAD_UA, rc.PAYLOAD_NAME, rc.PAYLOAD_EXPLANATION):
        assert payload in text  # shown to the reader, as text
    assert "&lt;script&gt;window.pwned=4&lt;/script&gt;" in page
    assert "<b>" not in page and "<svg" not in page
    assert all(tag.startswith('<img src="data:image/png;base64,') for tag in re.findall(r"<img[^>]*>", page))


def test_report_without_findings_or_scope_says_so(case_dir: Path) -> None:
    page = render_report(Case.open(case_dir)).read_text(encoding="utf-8")
    assert casedata.NO_FINDINGS in page
    assert "The breach has not been scoped yet" in page
    assert "The case holds no events yet." in page


def test_redacted_report_holds_no_identity(case: Case) -> None:
    page = render_report(case, redact=True).read_text(encoding="utf-8")
    seen = (page + _text(page)).lower()
    for secret in (rc.UPN, rc.UPN2, "adele", "megan", "vance", "bowen", "contoso", rc.TENANT_EGRESS,
                   *rc.INTERNAL_IPS):
        assert secret.lower() not in seen, secret
    assert rc.ACTOR_IP in page  # the actor's infrastructure is what the recipient acts on
    assert "Redacted for sharing" in page
    key = (case.root / KEY_FILE).read_text().strip()
    assert key not in page
    # consistent: the mailbox pseudonym of the scope table is the one the findings use
    pseudonym = for_case(case).address(rc.UPN)
    assert page.count(pseudonym) >= 3


def test_cli_report_redact_and_out(case: Case, tmp_path: Path) -> None:
    out = tmp_path / "shared" / "r.html"
    r = cli("report", case.root, "--redact", "--out", out)
    assert r.returncode == 0, r.stderr
    assert str(out) in r.stdout and out.exists()
    assert rc.UPN not in out.read_text(encoding="utf-8")
    # the classification line: escaped in the page, reduced to safe characters in the @page margin rule
    r = cli("report", case.root, "--out", out, "--classification", 'TLP:RED "</style><b>x</b>')
    assert r.returncode == 0, r.stderr
    page = out.read_text(encoding="utf-8")
    assert '<p class="classification" id="classification">TLP:RED &#34;&lt;/style&gt;&lt;b&gt;x&lt;/b&gt;</p>' in page
    assert 'content: "TLP:RED /stylebx/b";' in page and page.count("</style>") == 1
    bad = cli("report", case.root, "--tz", "Mars/Olympus")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "time zone" in bad.stderr
    missing = cli("report", tmp_path / "nope")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_redactor_is_consistent_and_keyed(case: Case, tmp_path: Path) -> None:
    r1 = Redactor(b"k1", domains=["contoso.com"], names=["Adele Vance"])
    r2 = Redactor(b"k2", domains=["contoso.com"], names=["Adele Vance"])
    text = ("Adele Vance <Adele@Contoso.com> from 10.1.2.3 and fe80::1 via contoso.com at 10:30:00 from 8.8.8.8, "
            "folder Contoso-Board, app Contoso Archiver")
    once, twice = r1.text(text), r1.text(text)
    assert once == twice == r1.text(once)  # consistent and idempotent
    assert r1.address("adele@contoso.com") in once and r1.name("adele vance") in once
    assert r1.text(text) != r2.text(text)
    for gone in ("Adele", "Contoso", "10.1.2.3", "fe80::1"):
        assert gone.lower() not in once.lower()
    assert "10:30:00" in once and "8.8.8.8" in once
    # frames: strings and lists are redacted, times untouched
    frame = pd.DataFrame({"time": [pd.Timestamp("2023-06-01", tz="UTC")], "who": ["adele@contoso.com"],
                          "ids": [["<x@contoso.com>"]]})
    red = r1.frame(frame)
    assert red["time"].iloc[0] == frame["time"].iloc[0]
    assert "contoso" not in str(red.to_dict()).lower()
    # one key per case, created once, never changed
    assert case_key(case) == case_key(Case.open(case.root))
    other = rc.build(tmp_path / "other")
    assert for_case(other).address(rc.UPN) != for_case(case).address(rc.UPN)


def test_findings_load_from_parquet_or_json(case: Case) -> None:
    from_parquet = casedata.load_findings(case)
    (case.root / "findings.parquet").unlink()
    from_json = casedata.load_findings(case)
    assert list(from_parquet["finding_id"]) == list(from_json["finding_id"]) == ["orphan-token-1"]
    assert list(from_json["evidence"].iloc[0]) == list(from_parquet["evidence"].iloc[0]) == ["ma-1", "ma-2"]
    assert str(from_json["first"].dtype) == "datetime64[us, UTC]"
    assert "raw/imports/ual.csv#2" in render_report(case).read_text(encoding="utf-8")


def test_findings_grouped_per_detection_and_verdict_with_a_table_that_adds_up(case: Case) -> None:
    base = casedata.load_findings(case).iloc[0].to_dict()
    verdicts = ("confirmed", "likely", "possible", "unverifiable", "benign")
    rows = [{**base, "finding_id": f"f{i}", "detection": "new-address" if i % 3 else "orphan-token",
             "severity": "low" if i < 44 else "critical", "verdict": verdicts[i % 5],
             "explanation": f"finding number {i}"} for i in range(45)]
    frame = conform(pd.DataFrame(rows), FINDING_COLUMNS)
    pq.write_table(to_arrow(frame, FINDING_COLUMNS), case.root / "findings.parquet")
    page = render_report(case).read_text(encoding="utf-8")
    by = re.search(r'<table id="findings-by-detection" class="totals">.*?</table>', page, re.S)
    assert by
    cells = [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", by.group(0), re.S)[1:]]
    for row in cells:  # confirmed + likely + possible + unverifiable + benign == total, totals row included
        assert sum(int(c) for c in row[2:7]) == int(row[7]), row
    assert cells[-1][0] == "all detections" and cells[-1][7] == "45"
    # 27 findings (confirmed, likely, possible); the 18 unverifiable or benign ones are in Appendix B, not counted
    assert "27 finding(s) (confirmed 9, likely 9, possible 9); 9 unverifiable and 9 benign" in _text(page)
    body = page[page.index('<section id="findings">'):page.index('<section id="holdings">')]
    appendix = page[page.index('<section id="appendix-results"'):]
    assert 'id="findings-orphan-token-confirmed"' in body
    assert not re.search(r'id="findings-[\w-]+-(unverifiable|benign)"', body)
    assert 'id="findings-new-address-benign"' in appendix and 'id="findings-orphan-token-unverifiable"' in appendix
    assert page.index(">finding number 0<") < page.index(">finding number 6<")  # confirmed before likely


def test_case_data_for_the_notebooks(case: Case) -> None:
    events = case.read_events()
    findings = casedata.load_findings(case)
    scope = casedata.load_scope(case)
    actor = casedata.actor_events(events, findings, scope)
    assert sorted(actor["record_id"]) == ["ma-1", "ma-2"]
    # a benign (or possible, unverifiable) finding's token is not the actor's
    benign = pd.concat([findings, findings.assign(finding_id="b1", verdict="benign", token_id="tok-issued-1",
                                                  session_id="sess-a")], ignore_index=True)
    assert sorted(casedata.actor_events(events, benign, scope)["record_id"]) == ["ma-1", "ma-2"]
    msgs = casedata.messages_accessed(actor, [rc.UPN])
    assert sorted(msgs["message_id"]) == [f"<m1@{rc.TENANT}>", "<m2@example.org>", "<m3@example.org>"]
    assert casedata.actor_user_agents(actor)["events"].tolist() == [2]
    assert casedata.actor_folders(actor)["folder"].tolist() == [rc.PAYLOAD_FOLDER]
    one = casedata.in_window(events, "2023-06-02", "2023-06-05T23:00:00Z", mailbox=rc.UPN.upper())
    assert sorted(one["record_id"]) == ["ma-0", "ma-1", "ma-2"]
    gaps = casedata.gaps(case, window_start="2023-05-01T00:00:00Z")
    assert any("starts before the sign-in logs" in g for g in gaps)
    deadlines = casedata.retention_deadlines("2023-06-05T02:00:00Z")
    assert deadlines.iloc[0]["ages_out"] == pd.Timestamp("2023-07-05T02:00:00Z")
    assert casedata.retention_deadlines(None).empty


def test_weak_results_are_capped_per_detection_strong_ones_never(case: Case) -> None:
    from ir_toolkit.report import sections

    base = casedata.load_findings(case).iloc[0].to_dict()
    n = sections.WEAK_ROWS + 5
    rows = [{**base, "finding_id": f"f{i}", "verdict": v, "first": pd.Timestamp("2023-06-01", tz="UTC")
             + pd.Timedelta(hours=i)} for v in ("possible", "confirmed") for i in range(n)]
    frame = conform(pd.DataFrame(rows), FINDING_COLUMNS)
    groups = {g["verdict"]: g for g in sections.finding_groups(frame, {}, sections.FINDING_VERDICTS, "UTC",
                                                                 lambda s: s)}
    assert groups["confirmed"]["count"] == n and len(groups["confirmed"]["table"]["rows"]) == n
    assert groups["possible"]["count"] == n and len(groups["possible"]["table"]["rows"]) == sections.WEAK_ROWS
    assert groups["possible"]["more"] == 5
