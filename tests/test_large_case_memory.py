"""The report and every notebook read a large case filtered and counted, never every event (issue 20).

A tenant's month (ten million events) does not fit in pandas. Measured at a small scale: a case
whose stored events are cheap on disk (their ``raw`` compresses) but cost about 600 MB once read
into pandas. Each run is a child process whose peak resident memory is read from ``wait4`` (the
largest of the process and every child it waited for: the playbook's kernels). The control, a
process reading every event (``case.read_events()``), must exceed the bound; the playbook (notebooks
01-05 and the report), and the report alone, must stay well under it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ir_toolkit.case import Case
from tests import reportcase as rc
from tests.conftest import cli

ROOT = Path(__file__).resolve().parent.parent
FILLER = 150_000  # ordinary audit records of other users
RAW_BYTES = 4000  # each one's raw record: ~600 MB as Python strings, a few MB as zstd Parquet

OPEN = "import sys\nfrom ir_toolkit.case import Case\ncase = Case.open(sys.argv[1])\n"
BASE = OPEN + "print(case.duckdb().execute('SELECT count(*) FROM events').fetchone()[0])"
WHOLE = OPEN + "print(len(case.read_events()))"


FILL = """
import sys
import numpy as np
import pandas as pd
from ir_toolkit.case import Case
n, size, tenant = np.arange(int(sys.argv[2])), int(sys.argv[3]), sys.argv[4]
pad = "x" * size
Case.open(sys.argv[1], writable=True).write_events(pd.DataFrame({
    "time": pd.Timestamp("2023-06-01", tz="UTC") + pd.to_timedelta(n * 17 % (30 * 86400), unit="s"),
    "source": "audit_other", "operation": "FileAccessed", "result": "success",
    "user": [f"user{i % 500}@{tenant}" for i in n], "ip": [f"10.9.0.{i % 200}" for i in n],
    "record_id": [f"f{i}" for i in n], "raw": [f'{{"Id": "f{i}", "Pad": "{pad}"}}' for i in n],
}))
"""

# Runs argv and prints its peak RSS: a small process forks it, so the child's peak starts small (a forked
# child's ru_maxrss begins at its parent's, and the test process may be large).
MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
proc.returncode = os.waitstatus_to_exitcode(status)
print(proc.returncode, usage.ru_maxrss * 1024)
"""


@pytest.fixture(scope="module")
def big_case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    case = rc.build(tmp_path_factory.mktemp("large") / "case")
    subprocess.run([sys.executable, "-c", FILL, str(case.root), str(FILLER), str(RAW_BYTES), rc.TENANT],
                   check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return Case.open(case.root)


def peak_rss(argv: list[str]) -> int:
    """Peak resident bytes of a child process (and the children it waited for); fails on a non-zero exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", MEASURE, *argv], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True)
    code, peak = out.stdout.split()
    assert code == "0", out.stderr[-2000:]
    return int(peak)


@pytest.mark.slow
def test_report_and_every_notebook_stay_under_what_reading_every_event_takes(big_case: Case) -> None:
    case = str(big_case.root)
    base = peak_rss([sys.executable, "-c", BASE, case])
    whole = peak_rss([sys.executable, "-c", WHOLE, case])
    assert whole - base > 400e6, (base, whole)  # the control: reading every event costs this much
    bound = base + (whole - base) / 2
    for verb in ("detect", "scope"):  # each in its own process; scope reads the views detect kept in the case
        peak = peak_rss([sys.executable, "-m", "ir_toolkit", verb, case, *(["--no-progress"] * (verb == "detect"))])
        assert peak < bound, f"{verb} peaked at {peak / 1e6:.0f} MB ({whole / 1e6:.0f} MB reads every event)"
    kept = json.loads((big_case.root / "cache" / "prepared.json").read_text(encoding="utf-8"))["key"]
    scoped = json.loads((big_case.root / "scope.json").read_text(encoding="utf-8"))
    assert scoped["inputs"]["key"] == kept  # scope was made from the inputs of the preparation detect kept
    report = peak_rss([sys.executable, "-m", "ir_toolkit", "report", case])
    assert report < bound, f"the report peaked at {report / 1e6:.0f} MB: it reads every event ({whole / 1e6:.0f} MB)"
    playbook = peak_rss([sys.executable, "-m", "ir_toolkit", "run", "token-forgery", "--case", case,
                         "-p", f"seed={rc.ACTOR_IP}"])
    assert playbook < bound, (f"the playbook (a notebook or its report) peaked at {playbook / 1e6:.0f} MB: "
                              f"it reads every event ({whole / 1e6:.0f} MB; base {base / 1e6:.0f} MB)")
    executed = big_case.root / "reports" / "notebooks"
    assert sorted(p.name for p in executed.glob("*.ipynb")) == [f"0{i}-{n}.ipynb" for i, n in enumerate(
        ("setup-case", "triage", "timeline", "actor-graph", "scope-report"), start=1)]
    assert (big_case.root / "reports" / "report.html").exists()
    # what the report and the notebooks keep for the next reader (CASE/cache/memo/) are answers, never the events
    memo = list((big_case.root / "cache" / "memo").glob("*/*.parquet"))
    assert memo and sum(p.stat().st_size for p in memo) < 5e6, [(p.name, p.stat().st_size) for p in memo]
    again = peak_rss([sys.executable, "-m", "ir_toolkit", "report", case])  # reads what the playbook kept
    assert again < bound, f"the report from the memo peaked at {again / 1e6:.0f} MB"


def test_long_verbs_end_with_a_one_line_time_summary_on_stderr_never_on_stdout(tmp_path: Path) -> None:
    case = rc.build(tmp_path / "case")
    found = cli("detect", case.root, "--json", "--no-progress")
    assert found.returncode == 0, found.stderr
    assert "findings" in json.loads(found.stdout)  # stdout: the JSON document only
    summary = [line for line in found.stderr.splitlines() if line.startswith("ir-toolkit: detect finished in ")]
    assert len(summary) == 1 and re.search(r"in \d+\.\d s \(CPU \d+\.\d s, peak memory \d\.\d\d GB\)$", summary[0])
    bad = cli("report", tmp_path / "missing")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "finished" not in bad.stderr  # errors: one line
