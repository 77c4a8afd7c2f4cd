"""Playbooks and notebooks: loading, parameter checks, papermill execution, failures, pairing."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

import ir_toolkit
from ir_toolkit.case import Case
from ir_toolkit.errors import UserError
from ir_toolkit.paths import notebooks_dir, playbooks_dir
from ir_toolkit.playbook import PlaybookFailed, load_playbook, parse_assignments, run_playbook
from ir_toolkit.tokens import fingerprint
from tests import reportcase as rc
from tests.conftest import cli
from tests.token_factory import claims, rsa_key, sign


def report_text(case: Case) -> str:
    return (case.root / "reports" / "report.html").read_text(encoding="utf-8")

NOTEBOOKS = sorted(notebooks_dir().glob("0*.ipynb"))
PARAMETERS = {"case_path", "tenant", "window_start", "window_end", "tz", "baseline_days", "redact", "engine"}


@pytest.mark.parametrize("name", ["token-forgery", "single-mailbox"])
def test_shipped_playbooks_load(name: str) -> None:
    pb = load_playbook(name)
    assert pb.id == name and pb.notebooks and pb.outputs and pb.data_sources
    assert all((notebooks_dir() / nb).exists() for nb in pb.notebooks)
    assert {"tz", "baseline_days", "redact", "engine", "mailbox"} <= set(pb.parameters)
    assert pb.parameters["baseline_days"].type == "int"


def test_parameters_are_typed_and_checked() -> None:
    pb = load_playbook("token-forgery")
    got = parse_assignments(pb, ["baseline_days=14", "redact=yes", "window_start=2023-05-15",
                                 "engine=spark", "import_paths=a.json, b.csv"])
    assert got["baseline_days"] == 14 and got["redact"] is True and got["engine"] == "spark"
    assert got["window_start"] == "2023-05-15T00:00:00Z" and got["import_paths"] == ["a.json", "b.csv"]
    assert got["tz"] == "UTC"  # defaults fill the rest
    for bad, words in (["baseline_days=many"], "not a valid int"), (["redact=perhaps"], "not a valid bool"), \
            (["engine=excel"], "choose one of duckdb, spark"), (["window_start=yesterday-ish"], "datetime"), \
            (["nosuch=1"], "has no parameter 'nosuch'"), (["novalue"], "expected NAME=VALUE"):
        with pytest.raises(UserError, match=words):
            parse_assignments(pb, bad)
    with pytest.raises(UserError, match="needs -p mailbox"):
        parse_assignments(load_playbook("single-mailbox"), [])


def test_cli_bad_parameter_and_playbook_are_one_line_exit_2(tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    for argv in (["run", "token-forgery", "--case", case.root, "-p", "baseline_days=x"],
                 ["run", "no-such-playbook", "--case", case.root],
                 ["run", "token-forgery", "--case", tmp_path / "missing"]):
        r = cli(*argv)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not (case.root / "reports" / "notebooks").exists()  # nothing ran


def test_a_bad_import_path_is_one_line_in_the_notebook_and_exit_2(tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    r = cli("run", "token-forgery", "--case", case.root, "-p", f"import_paths={tmp_path / 'nope.json'}")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "nope.json: no such file or folder" in r.stderr
    setup = nbformat.read(case.root / "reports" / "notebooks" / "01-setup-case.ipynb", as_version=4)
    errors = [o for c in setup.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert len(errors) == 1 and len(errors[0]["traceback"]) == 1  # one line, not a traceback
    assert errors[0]["traceback"][0].startswith("BadInput: import path")


def test_failing_cell_stops_the_run_naming_notebook_cell_error(tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("case_path = ''", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import sys, ir_toolkit\nprint(sys.executable, ir_toolkit.__file__)"),
                nbformat.v4.new_markdown_cell("a step that breaks"),
                nbformat.v4.new_code_cell("raise ValueError('mailbox table is empty')"),
                nbformat.v4.new_code_cell("open('never-reached', 'w')")]
    nbformat.write(nb, tmp_path / "broken.ipynb")
    (tmp_path / "later.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    (tmp_path / "broken.yaml").write_text("id: broken\nnotebooks: [broken.ipynb, later.ipynb]\n")
    with pytest.raises(PlaybookFailed, match=r"notebook broken.ipynb failed at cell \d+ .*ValueError: mailbox "
                                              r"table is empty"):
        run_playbook(tmp_path / "broken.yaml", case)
    executed = case.root / "reports" / "notebooks"
    assert (executed / "broken.ipynb").exists() and not (executed / "later.ipynb").exists()
    assert not (case.root / "never-reached").exists()
    # the kernel is this interpreter (this venv), importing this checkout's ir_toolkit
    ran = nbformat.read(executed / "broken.ipynb", as_version=4)
    printed = next(c for c in ran.cells if "sys.executable" in c.source).outputs[0]["text"].split()
    assert printed == [sys.executable, str(Path(ir_toolkit.__file__))]
    r = cli("run", tmp_path / "broken.yaml", "--case", case.root)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "ValueError" in r.stderr, r.stderr


def test_notebooks_share_one_kernel_each_from_an_empty_namespace(tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    for name, code in (("first", "leak = 'from the first notebook'"),
                       ("second", "assert 'leak' not in globals(), leak")):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("case_path = ''", metadata={"tags": ["parameters"]}),
                    nbformat.v4.new_code_cell(code),
                    nbformat.v4.new_code_cell(f"import os\nopen('{name}.pid', 'w').write(str(os.getpid()))")]
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    (tmp_path / "two.yaml").write_text("id: two\nnotebooks: [first.ipynb, second.ipynb]\n")
    run_playbook(tmp_path / "two.yaml", case)  # the second notebook fails if the first one's variable is left
    pids = {(case.root / f"{n}.pid").read_text() for n in ("first", "second")}
    assert len(pids) == 1  # one kernel process ran both
    ran = nbformat.read(case.root / "reports" / "notebooks" / "second.ipynb", as_version=4)
    assert [c.execution_count for c in ran.cells if c.cell_type == "code"][0] == 1  # numbered as if alone


@pytest.mark.slow
def test_token_forgery_playbook_runs_every_notebook_and_writes_the_report(tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    token = sign(claims(), rsa_key(), kid="kid-in-no-catalogue")
    (tmp_path / "proxy.log").write_text(f"GET /owa Authorization: Bearer {token}\n")
    r = cli("run", "token-forgery", "--case", case.root, "-p", "tz=Europe/Berlin",
            "-p", f"token_files={tmp_path / 'proxy.log'}", "-p", f"seed={rc.ACTOR_IP}", "-p", "hops=1",
            "-p", "exclude=tok-issued-1")
    assert r.returncode == 0, r.stderr
    report = case.root / "reports" / "report.html"
    assert f"report written: {report}" in r.stdout
    executed = case.root / "reports" / "notebooks"
    pb = load_playbook("token-forgery")
    for name in pb.notebooks:
        nb = nbformat.read(executed / name, as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert outputs and not [o for o in outputs if o.get("output_type") == "error"], name
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and "Europe/Berlin" in injected[0].source
    triage = (executed / "02-triage.ipynb").read_text(encoding="utf-8")
    assert fingerprint(token) in triage and token not in triage  # judged, never printed
    assert token.split(".")[1] not in report_text(case)
    text = (executed / "05-scope-report.ipynb").read_text(encoding="utf-8")
    assert "compromised mailbox(es)" in text and "Report written" in text  # the scope statement and report ran
    # every table in the tz parameter's zone: the actor's 02:00 UTC access shows as 04:00+02:00 (Berlin, CEST)
    timeline = nbformat.read(executed / "03-timeline.ipynb", as_version=4)
    tables = [o["data"]["text/html"] for c in timeline.cells for o in c.get("outputs", [])
              if "text/html" in o.get("data", {})]
    assert tables and "2023-06-05 04:00:00+02:00" in tables[0]  # the actor's events come first
    assert not any("+00:00" in t for t in tables)
    # explanations whole; identifiers shortened in their column, in full at the end
    triage_nb = nbformat.read(executed / "02-triage.ipynb", as_version=4)
    triage_html = "".join(o["data"]["text/html"] for c in triage_nb.cells for o in c.get("outputs", [])
                          if "text/html" in o.get("data", {}))
    explanations = sorted(re.findall(r"<td>([^<]*issued[^<]*)</td>", triage_html), key=len)
    assert explanations and len(explanations[-1]) > 150 and explanations[-1].endswith(".")  # never cut at 80
    assert "<th>token_id (full)</th>" in tables[0] and "<td>tok-forg…</td>" in tables[0]
    graph_nb = (executed / "04-actor-graph.ipynb").read_text(encoding="utf-8")
    assert f"Seed(s): `{rc.ACTOR_IP}`; 1 hop(s)" in graph_nb and "1 node(s) excluded" in graph_nb
    assert "CEST" in report.read_text(encoding="utf-8")
    done = [e for e in case.custody() if e["action"] == "playbook.done"]
    assert done and done[-1]["details"]["missing_outputs"] == [o for o in pb.outputs if not (case.root / o).exists()]
    assert "reports/report.html" not in done[-1]["details"]["missing_outputs"]


@pytest.mark.slow
def test_single_mailbox_playbook_reports_that_mailbox_only(tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    report = run_playbook("single-mailbox", case, {"mailbox": rc.UPN})
    page = report.read_text(encoding="utf-8")
    assert rc.UPN in page  # the mailbox under review is the subject: named
    assert 'id="subject"' in page and "The rest of the tenant appears only as counts" in page
    assert "Adele Vance" in page  # the owner's name too: the subject
    # no other mailbox's (or person's) real name anywhere in what the playbook writes beside the report
    others = (rc.UPN2, "megan", "bowen", rc.TENANT_EGRESS, *rc.INTERNAL_IPS)
    written = [p for p in (case.root / "reports").rglob("*") if p.is_file()]
    assert report in written
    for path in written:
        text = path.read_text(encoding="utf-8", errors="replace").lower()
        assert [o for o in others if o.lower() in text] == [], path.name
    # the executed notebooks hold real names: never beside the shareable report
    executed = sorted(p.name for p in (case.root / "work" / "notebooks").glob("*.ipynb"))
    assert executed == ["01-setup-case.ipynb", "02-triage.ipynb", "03-timeline.ipynb", "05-scope-report.ipynb"]
    assert not (case.root / "reports" / "notebooks").exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_committed_clean_paired_and_parameterised(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "outputs committed"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assert PARAMETERS <= {line.split(":")[0] for line in params[0].source.splitlines() if ":" in line}
    assert any(c.cell_type == "markdown" and len(c.source) > 300 for c in nb.cells), "teach the reasoning"
    paired = jupytext.read(path.with_suffix(".py"))
    assert [(c.cell_type, c.source) for c in paired.cells] == [(c.cell_type, c.source) for c in nb.cells], \
        "the .py pair is out of sync: run jupytext --sync notebooks/*.py"


def test_every_notebook_is_in_the_main_playbook() -> None:
    assert [p.name for p in NOTEBOOKS] == list(load_playbook("token-forgery").notebooks)
    assert {p.stem for p in playbooks_dir().glob("*.yaml")} >= {"token-forgery", "single-mailbox"}


def test_make_lab_opens_at_the_project_root_and_runs_as_root() -> None:
    import os
    import subprocess

    root = Path(__file__).resolve().parent.parent
    r = subprocess.run(["make", "--no-print-directory", "-n", "lab"], cwd=root, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    command = [line for line in r.stdout.splitlines() if "jupyter" in line][-1]  # also when run under make
    assert "jupyter lab" in command and f'--ServerApp.root_dir="{root}"' in command
    assert ("--allow-root" in command) == (os.getuid() == 0)
    assert ".ipynb_checkpoints/" in (root / ".gitignore").read_text(encoding="utf-8").splitlines()
