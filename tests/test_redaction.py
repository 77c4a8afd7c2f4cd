"""Redaction that holds (issue 17): awkward names, addresses and paths; linear-time patterns (issue 16)."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import pytest

from ir_toolkit.case import Case
from ir_toolkit.report import patterns
from ir_toolkit.report.html import render_report
from ir_toolkit.report.redact import Redactor, for_case
from tests import awkwardcase as ac
from tests.conftest import ROOT, cli


@pytest.fixture(scope="module")
def awkward(tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, str]:
    case = ac.build(tmp_path_factory.mktemp("awkward") / "case")
    page = render_report(case, redact=True, out=case.root / "reports" / "shared.html").read_text(encoding="utf-8")
    return case, page


def test_no_awkward_identity_reaches_the_redacted_report(awkward: tuple[Case, str]) -> None:
    case, page = awkward
    seen = (page + html.unescape(page)).lower()
    leaks = [s for s in ac.SECRETS if s.lower() in seen]
    assert leaks == []
    # the actor's own infrastructure stays readable: its address, its app its agent
    assert ac.ACTOR_IP in page and ac.ACTOR_APP in page and "python-requests/2.31" in page
    # pseudonyms are consistent: the mailbox of the scope table is the one the figures and findings name
    red = for_case(case, actor_ips=[ac.ACTOR_IP])
    assert page.count(red.address(ac.SIOBHAN)) >= 3
    # the tenant id is pseudonymised in the title too
    title = re.search(r"<title>(.*?)</title>", page)
    assert title and "tenant-" in title.group(1)


def test_figure_labels_are_redacted_by_their_own_text(awkward: tuple[Case, str]) -> None:
    case, page = awkward
    alts = [html.unescape(a) for a in re.findall(r'<img src="data:image/png;base64,[^"]*" alt="([^"]*)"', page)]
    labelled = [a for a in alts if "Text in the figure:" in a]
    assert labelled, "every drawn figure lists the text it draws"
    red = for_case(case, actor_ips=[ac.ACTOR_IP])
    # the mailbox figure's tick labels are mailbox names: there, as pseudonyms
    assert any(red.address(ac.SIOBHAN) in a for a in labelled)
    for alt in labelled:
        for secret in ac.SECRETS:
            assert secret.lower() not in alt.lower(), (secret, alt[:80])


def test_message_ids_keep_their_domain_shape_and_the_report_says_how_to_resolve(awkward: tuple[Case, str]) -> None:
    case, page = awkward
    text = html.unescape(page)
    red = for_case(case, actor_ips=[ac.ACTOR_IP])
    pseudonym = red.message_id(f"<{ac.MESSAGE_LOCAL}@mail.{ac.DOMAIN}>")
    assert re.fullmatch(r"<msg-[0-9a-f]{12}@mail\.domain-[0-9a-f]{8}\.invalid>", red.text(pseudonym))
    assert red.text(f"<{ac.MESSAGE_LOCAL}@mail.{ac.DOMAIN}>") in text
    assert re.search(r"<msg-[0-9a-f]{12}@x\.outlook\.com>", text)  # a foreign domain is kept as it is
    assert "messages.csv" in text and "redaction key" in text


def test_redactor_variants_one_by_one() -> None:
    r = Redactor(b"k", domains=[ac.DOMAIN], people=[("Siobhán O’Brien", "Siobhán", "O’Brien"), ("王伟", "伟", "王"),
                                                   ("Thi Nguyen", "Thi", "Nguyen"), ("May Li", "May", "Li")],
                 local_parts=[ac.THI], orgs=[ac.ORG], tenant_ids=[ac.TENANT_ID], examiners=["jane@lab-pc"],
                 keep_ips=[ac.ACTOR_IP], case_root="/srv/cases/awkward")
    for raw, gone in (
        ("Mr O'Brien and O’Brien and OBrien's", "brien"), ("用户王伟的邮箱", "王伟"), ("Nguyen, Thi wrote", "nguyen"),
        ("FABRIKAM\\tnguyen logged on", "tnguyen"), ("owner thi.nguyen.", "thi.nguyen"),
        (f"u={ac.THI.replace('@', '%40')}&x", "nguyen"), ("Fabrikam Legal LLP", "fabrikam"),
        (f"tenant {ac.TENANT_ID.upper()}", ac.TENANT_ID), ("by jane@lab-pc", "jane"),
        ("hops 10.9.8.7. then (192.168.1.20), 172.16.5.4; fd12::9,", "10.9.8.7"),
        ("office 198.51.100.23.", "198.51.100.23"), ("see /home/jane/x/y.json", "/home/jane"),
        ("see C:\\Users\\jdoe\\a b.csv", "jdoe"),
    ):
        out = r.text(raw)
        assert gone.lower() not in out.lower(), (raw, out)
        assert r.text(out) == out  # idempotent
    assert r.text("/srv/cases/awkward/reports/r.html") == "CASE/reports/r.html"
    # kept: the actor's address, version numbers, times, common words that are also first names
    kept = f"{ac.ACTOR_IP} Chrome/106.0.0.0 at 10:30:00: more items may have been read in May"
    assert r.text(kept) == kept


def test_patterns_have_only_bounded_repeats() -> None:
    """No unbounded quantifier (so no repeat over a repeat can make the engine backtrack without end)."""
    import re._parser as sre  # type: ignore[import-not-found]

    def repeats(tree: object) -> list[int]:
        found: list[int] = []
        for op, av in tree:  # type: ignore[attr-defined]
            if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
                found.append(av[1])
                found += repeats(av[2])
            elif op in (sre.SUBPATTERN,):
                found += repeats(av[-1])
            elif op is sre.BRANCH:
                for branch in av[1]:
                    found += repeats(branch)
        return found

    r = Redactor(b"k", domains=[ac.DOMAIN], people=[("Siobhán O’Brien", "", "")], local_parts=[ac.THI],
                 orgs=[ac.ORG], examiners=["jane@lab"])
    compiled = [patterns.EMAIL, patterns.MESSAGE_ID, patterns.IPV4, patterns.IPV6, patterns.GUID, patterns.PATH,
                r._name_re, r._local_re, r._domain_re, r._org_re, r._account_re, r._examiner_re]
    for pattern in compiled:
        assert pattern is not None
        bounds = repeats(sre.parse(pattern.pattern, pattern.flags))
        assert max(bounds, default=0) <= 255, pattern.pattern[:80]


HOSTILE = r"""
import sys, time
from ir_toolkit.report.redact import Redactor
r = Redactor(b"k", domains=["contoso.com"], people=[("Adele Vance", "Adele", "Vance")], local_parts=["a.b@contoso.com"],
             orgs=["Contoso"], tenant_ids=["5f2b8c1e-4d3a-4b2c-9e8f-7a6b5c4d3e2f"], keep_ips=[])
n = 200_000
for s in ("a" * n, "a." * (n // 2), "1." * (n // 2), "a@" * (n // 2), "a:" * (n // 2), "/a" * (n // 2),
          "C:\\" + "a\\" * (n // 2), "<" + "a" * n + "@", "Mozilla/5.0 " + "x.y-z_" * (n // 6) + "@contoso"):
    r.text(s)
print("ok")
"""


def test_redaction_of_long_hostile_strings_finishes(tmp_path: Path) -> None:
    """200,000-character attacker strings: linear patterns finish in seconds (a quadratic one took minutes)."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", HOSTILE], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-500:]


def test_cli_redacted_report_of_the_awkward_case(awkward: tuple[Case, str], tmp_path: Path) -> None:
    case, _ = awkward
    out = tmp_path / "r.html"
    r = cli("report", case.root, "--redact", "--out", out)
    assert r.returncode == 0, r.stderr
    page = out.read_text(encoding="utf-8").lower()
    assert [s for s in ac.SECRETS if s.lower() in page] == []
