"""`ir-toolkit demo`: the sample tenant through the token-forgery playbook to the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from ir_toolkit.paths import sample_tenant_dir
from tests.conftest import cli


def test_demo_refuses_a_folder_that_is_not_a_demo_case(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    r = cli("demo", "--out", tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not a demo case" in r.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


@pytest.mark.slow
def test_demo_runs_every_notebook_on_the_sample_tenant(tmp_path: Path) -> None:
    out = tmp_path / "demo-case"
    r = cli("demo", "--out", out, timeout=600)
    assert r.returncode == 0, r.stderr
    # rerunnable: a second run replaces the demo case; a relative --out works from any folder
    r = cli("demo", "--out", "demo-case", timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = out / "reports" / "report.html"
    assert "report written: demo-case/reports/report.html" in r.stdout
    assert re.search(r"demo finished in [\d.]+ s", r.stdout)  # the time is printed; the goal is in bench/
    for path in sorted((out / "reports" / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, path.name
    assert len(list((out / "reports" / "notebooks").glob("*.ipynb"))) == 5
    page = report.read_text(encoding="utf-8")
    assert "<title>Incident report:" in page
    key = json.loads((sample_tenant_dir() / "answer_key.json").read_text(encoding="utf-8"))
    timeline = nbformat.read(out / "reports" / "notebooks" / "03-timeline.ipynb", as_version=4)
    assert any("image/png" in o.get("data", {}) for c in timeline.cells for o in c.get("outputs", []))
    assert page.count('<img src="data:image/png;base64,') >= 4
    scope = json.loads((out / "scope.json").read_text(encoding="utf-8"))
    assert sorted(b["upn"] for b in scope["compromised_mailboxes"]) == sorted(
        b["upn"] for b in key["compromised_mailboxes"])
    for box in key["compromised_mailboxes"]:
        assert box["upn"] in page
    # the token-abuse family: forged OAuth tokens ruled in, each mailbox carried by that member, in notebook 05
    status = {f["member"]: f["status"] for f in scope["family"]}
    assert status["forged-oauth-token"] == "ruled_in" and status["golden-saml"] == "not_judged"
    assert all(b["members"] == ["forged-oauth-token"] for b in scope["compromised_mailboxes"])
    final = (out / "reports" / "notebooks" / "05-scope-report.ipynb").read_text(encoding="utf-8")
    assert "Token-abuse family: ruled in: forged-oauth-token" in final
    assert 'id="answer-family"' in page
