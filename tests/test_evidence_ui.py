"""`ir-toolkit evidence`, the report's "What the evidence holds" section and its headline sentence."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from ir_toolkit.report.headline import headline
from ir_toolkit.report.html import render_report
from tests import detect_events as ev
from tests import evidence_cases as ec
from tests import reportcase as rc
from tests.conftest import cli

HOSTILE_SOURCE = "<script>window.pwned=5</script>"
HOSTILE_REASON = "export lost <img src=x onerror=\"window.pwned=6\">"


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _summary(page: str) -> list[str]:
    """The report's first page: its lead sentence first, then the answer's other entries."""
    section = re.search(r'<section id="summary">.*?</section>', page, re.S)
    assert section
    lead = re.search(r'<p class="lead" id="answer-headline">(.*?)</p>', section.group(0), re.S)
    assert lead
    return [" ".join(_text(lead.group(1)).split()),
            *[_text(dd).strip() for dd in re.findall(r"<dd[^>]*>(.*?)</dd>", section.group(0), re.S)]]


# ----- CLI ---------------------------------------------------------------------------------------
def test_cli_evidence_json_reports_the_punched_hole(tmp_path: Path) -> None:
    case = ec.holed_case(tmp_path / "case")
    r = cli("evidence", case.root, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # exactly one JSON document
    nonint = doc["sources"]["signin_noninteractive"]
    assert nonint["held"] and nonint["events"] > 1500
    assert len(nonint["holes"]) == 1
    hole = nonint["holes"][0]
    assert ec.hours_between(hole["start"], ec.HOLE_START) <= 1.5
    assert ec.hours_between(hole["end"], ec.HOLE_END) <= 1.5
    assert 34 <= hole["hours"] <= 39 and "rhythm" in hole["method"]
    assert not doc["sources"]["signin_interactive"]["holes"]  # the other sign-in source is whole
    assert "signin_holes" in doc["limits"]
    assert any("holes" in s and "unverifiable" in s for s in doc["cannot_prove"])
    assert "no_signin_noninteractive" not in doc["limits"]
    # the readable summary: one line per source, the hole with its hours, then what cannot be proven
    text = cli("evidence", case.root)
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert re.search(r"signin_noninteractive\s+held\s+\d+ events\s+2023-06-01 .*1 hole\(s\)", out)
    assert re.search(r"signin_serviceprincipal\s+absent", out)
    assert re.search(r"signin_noninteractive\s+2023-06-16 0\d:\d\d:\d\dZ \.\. 2023-06-17 2\d:\d\d:\d\dZ\s+3\d\.\d h",
                     out)
    assert out.index("This case cannot prove:") > out.index("holes: 1")
    assert "Sign-in logs have holes" in out.split("This case cannot prove:")[1]


def test_cli_evidence_without_noninteractive_signins(tmp_path: Path) -> None:
    case = ec.interactive_only_case(tmp_path / "case")
    r = cli("evidence", case.root, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert "no_signin_noninteractive" in doc["limits"]
    assert "signin_noninteractive" in doc["absent"] and not doc["sources"]["signin_noninteractive"]["held"]
    assert any(s.startswith("No non-interactive sign-ins") for s in doc["cannot_prove"])


def test_cli_evidence_not_a_case_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    for target in (tmp_path / "plain", tmp_path / "missing"):
        for extra in ((), ("--json",)):
            r = cli("evidence", target, *extra)
            assert r.returncode == 2, r.stderr
            assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
            assert str(target) in r.stderr and r.stdout == ""


# ----- report ------------------------------------------------------------------------------------
def test_report_evidence_section_first_and_headline_names_missing_source(tmp_path: Path) -> None:
    case = ec.interactive_only_case(tmp_path / "case", days=10)
    actor = [ev.mail(ev.at(8, 2 + i / 10), f"user{i % 2}@contoso.com", rc.ACTOR_IP, app="app-evil",
                     token=f"tok-x{i}", ua="python-requests/2.31", messages=(f"<x{i}@contoso.com>",))
             for i in range(6)]
    case.write_events(ev.frame(*actor))
    doc = scope(case)
    assert doc["signin_coverage"]["judged"] is False and doc["evidence"]["limits"][0] == "no_signin_noninteractive"
    boxes = doc["compromised_mailboxes"]
    assert boxes and {b["confidence"] for b in boxes} == {"likely"}
    page = render_report(case).read_text(encoding="utf-8")
    assert page.index('<section id="summary">') < page.index('<section id="people">') \
        < page.index('<section id="holdings">')
    first = _summary(page)[0]
    assert first.startswith("No non-interactive sign-ins were provided: forged tokens cannot be told from refreshed")
    assert f"the {len(boxes)} mailbox(es) below are likely, not confirmed" in first
    holdings = _text(re.search(r'<section id="holdings">.*?</section>', page, re.S).group(0))  # type: ignore[union-attr]
    assert re.search(r"signin_noninteractive\s+absent", holdings)
    assert "This case cannot prove" in holdings and "No non-interactive sign-ins were provided" in holdings


def test_report_computes_the_profile_when_scope_json_lacks_it(tmp_path: Path) -> None:
    case = ec.holed_case(tmp_path / "case")  # not scoped: no scope.json at all
    page = render_report(case, tz="Europe/Berlin").read_text(encoding="utf-8")
    first = _summary(page)[0]
    assert first.startswith("The sign-in logs have 1 hole(s) (37 hours in all)"), first
    assert "the breach has not been scoped yet" in first
    holes = re.search(r'<table id="holdings-holes">.*?</table>', page, re.S)
    assert holes and holes.group(0).count("<tr>") == 2
    assert "2023-06-16 10:21:00 CEST" in holes.group(0)  # 08:21 UTC shown in the display zone


def _hostile_scope(case: Case) -> None:
    path = case.root / "scope.json"
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    hole = {"start": "2023-06-03T00:00:00Z", "end": "2023-06-04T00:00:00Z", "hours": 24.0, "expected": None,
            "observed": None, "method": "ledger", "reason": f"{HOSTILE_REASON} for {rc.UPN2}"}
    doc["evidence"] = {
        "sources": {HOSTILE_SOURCE: {"description": "x", "held": True, "events": 5, "first": "2023-06-01T00:00:00Z",
                                     "last": "2023-06-06T00:00:00Z", "files": 1, "holes": [hole]}},
        "absent": [], "throttled_mailboxes": [{"upn": rc.UPN, "first": "2023-06-05T02:00:00Z"}],
        "limits": ["signin_holes", "throttled"], "cannot_prove": ["Sign-in logs have holes.", "Throttled."],
        "mail_records_without_token": 0, "mail_records": 3}
    path.write_text(json.dumps(doc), encoding="utf-8")


def test_report_evidence_section_escapes_hostile_text(tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    _hostile_scope(case)
    page = render_report(case).read_text(encoding="utf-8")
    assert HOSTILE_SOURCE not in page and HOSTILE_REASON not in page
    assert "&lt;script&gt;window.pwned=5&lt;/script&gt;" in page
    holdings = _text(re.search(r'<section id="holdings">.*?</section>', page, re.S).group(0))  # type: ignore[union-attr]
    assert HOSTILE_SOURCE in holdings and HOSTILE_REASON in holdings  # shown to the reader, as text
    assert rc.UPN in holdings  # the throttled mailbox
    assert not re.search(r"<script|<img(?! src=\"data:image/png;base64,)", page)


def test_redacted_report_hides_upns_in_the_evidence_section(tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    _hostile_scope(case)
    page = render_report(case, redact=True).read_text(encoding="utf-8")
    seen = (page + _text(page)).lower()
    for secret in (rc.UPN, rc.UPN2, "adele", "megan", "contoso"):
        assert secret.lower() not in seen, secret
    assert 'id="holdings-throttled"' in page and "@redacted.invalid" in page


# ----- the headline sentence ---------------------------------------------------------------------
def _profile(limits: list[str]) -> dict[str, Any]:
    return {"sources": {"signin_interactive": {"held": True, "first": "2023-06-01T00:00:00Z",
                                               "last": "2023-06-20T00:00:00Z", "holes": []}},
            "limits": limits, "cannot_prove": [f"sentence of {n}." for n in limits], "throttled_mailboxes": []}


def test_headline_without_limits_names_the_gap_free_period() -> None:
    doc = {"signin_coverage": {"start": "2023-06-01T00:00:00Z", "end": "2023-06-20T00:00:00Z", "judged": True},
           "compromised_mailboxes": [{"confidence": "confirmed"}, {"confidence": "confirmed"}]}
    assert headline(doc, _profile([]), "UTC") == (
        "Every sign-in source that could have issued a token is held and gap-free over 2023-06-01 00:00:00 UTC to "
        "2023-06-20 00:00:00 UTC: the 2 mailbox(es) below are confirmed.")
    doc["compromised_mailboxes"] = []
    assert headline(doc, _profile([]), "UTC").endswith(": no mailbox was found compromised.")


def test_headline_orders_limits_and_counts_confidences() -> None:
    doc = {"signin_coverage": {"judged": True},
           "compromised_mailboxes": [{"confidence": "confirmed"}, {"confidence": "likely"}, {"confidence": "likely"}]}
    line = headline(doc, _profile(["no_audit_other", "signin_holes", "some_new_limit"]), "UTC")
    assert line.startswith("The sign-in logs have 0 hole(s)")
    assert "of the mailboxes below, 1 confirmed, 2 likely (2 more limit(s) below)." in line
    assert headline(None, _profile(["some_new_limit"])) == \
        "sentence of some_new_limit; the breach has not been scoped yet."
    assert headline(None, None).startswith("What the evidence can prove is unknown")
