"""Faults: kill -9 anywhere in import, detect and scope; two writers at once; a read-only case; a
full disk. Each ends, after the interrupted verb is run again, in a case that ``verify`` passes and
that holds each record once.

Kill points are counted, not timed: ``fault_runner.py`` kills the process at its Nth write into the
case (every open for writing, rename and removal inside CASE), so each point is reproducible.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, cli
from hostile_inputs import IMPORT, build, csv_file, texts, ual

from ir_toolkit.case import Case
from ir_toolkit.case.lock import write_lock

RUNNER = Path(__file__).resolve().parent / "fault_runner.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "IR_TOOLKIT_LOCK_WAIT": "20"}


def _inputs(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"signins.json": build("pages", texts(40)), "ual.json": build("json", texts(25, make=ual)),
             "purview.csv": csv_file(15)}
    out = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        out.append(folder / name)
    shutil.copy(IMPORT / "graph_signins_beta.json", folder / "beta.json")
    return [*out, folder / "beta.json"]


def _run(kill_at: int, case: Path, *args: str | Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNNER), str(kill_at), str(case), *map(str, args)],
                          capture_output=True, text=True, env=env or ENV, timeout=300, cwd=ROOT)


def _writes(p: subprocess.CompletedProcess[str]) -> int:
    return int(p.stderr.rsplit("WRITES ", 1)[1].split()[0])


def _held_once(case: Path) -> int:
    """Events in the store; asserts no (source, record_id) is held twice."""
    con = Case.open(case).duckdb()
    [(total, distinct)] = con.sql("SELECT count(*), count(DISTINCT (source, record_id)) FROM events").fetchall()
    assert total == distinct, f"{total - distinct} duplicated rows"
    return int(total)


def _intact(case: Path) -> None:
    c = Case.open(case)
    assert c.verify() == [], c.verify()
    shas = [e["sha256"] for e in c.evidence()]
    assert len(shas) == len(set(shas))


class Stage:
    """A case before a verb, that verb's clean result, and how many writes it makes."""

    def __init__(self, case: Path, args: list[str | Path], events: int, writes: int, result: object) -> None:
        self.case, self.args, self.events, self.writes, self.result = case, args, events, writes, result


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Stage]:
    tmp = tmp_path_factory.mktemp("faults")
    files = _inputs(tmp / "in")
    base = tmp / "base"
    assert cli("case", "init", base, "--tenant", "contoso.onmicrosoft.com").returncode == 0
    out: dict[str, Stage] = {}
    steps: list[tuple[str, list[str | Path]]] = [("import", ["import", "{case}", *files, "--json"]),
                                                 ("detect", ["detect", "{case}", "--json"]),
                                                 ("scope", ["scope", "{case}", "--json"])]
    for name, args in steps:
        before = tmp / f"before-{name}"
        shutil.copytree(base, before, symlinks=True)
        p = _run(0, base, *[str(a).replace("{case}", str(base)) for a in args])
        assert p.returncode == 0, p.stderr
        result = _summary(name, base)
        out[name] = Stage(before, args, _held_once(base), _writes(p), result)
    return out


def _summary(verb: str, case: Path) -> object:
    if verb == "import":
        return sorted((e["sha256"], e["records"], e["quarantined"]) for e in Case.open(case).evidence())
    if verb == "detect":
        return json.loads((case / "findings.json").read_text())["counts"]
    doc = json.loads((case / "scope.json").read_text())
    return sorted(m["upn"] for m in doc["compromised_mailboxes"]), doc["window"]


KILLS = [(verb, i) for verb, k in (("import", 8), ("detect", 6), ("scope", 6)) for i in range(k)]


@pytest.mark.parametrize(("verb", "nth"), KILLS, ids=[f"{v}-{i}" for v, i in KILLS])
def test_kill_9_then_run_again(stages: dict[str, Stage], tmp_path: Path, verb: str, nth: int) -> None:
    stage = stages[verb]
    k = sum(1 for v, _ in KILLS if v == verb)
    point = max(1, round(stage.writes * (nth + 0.5) / k))
    case = tmp_path / "case"
    shutil.copytree(stage.case, case, symlinks=True)
    args = [str(a).replace("{case}", str(case)) for a in stage.args]
    killed = _run(point, case, *args)
    assert killed.returncode == -9, (point, stage.writes, killed.stderr[-2000:])
    again = _run(0, case, *args)  # the responder runs the verb again
    assert again.returncode == 0, again.stderr
    _intact(case)
    assert _held_once(case) == stage.events
    assert _summary(verb, case) == stage.result


def test_two_importers_at_once_serialise(tmp_path: Path) -> None:
    files = _inputs(tmp_path / "in")
    case = tmp_path / "case"
    assert cli("case", "init", case, "--tenant", "t").returncode == 0
    procs = [subprocess.Popen([sys.executable, "-m", "ir_toolkit", "import", str(case), *map(str, part), "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
             for part in (files, files[::-1])]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    c = Case.open(case)
    assert sorted(Path(e["original"]).name for e in c.evidence()) == sorted(f.name for f in files)
    reports = [json.loads(o[0]) for o in outs]
    stored = _held_once(case)
    assert stored == sum(r["imported"] for rep in reports for r in rep)  # the second adds nothing twice
    _intact(case)


def test_a_second_writer_is_refused_with_one_line_readers_go_on(tmp_path: Path) -> None:
    files = _inputs(tmp_path / "in")
    case = tmp_path / "case"
    assert cli("case", "init", case, "--tenant", "t").returncode == 0
    assert cli("import", case, files[0]).returncode == 0
    before = sorted(p.relative_to(case).as_posix() for p in case.rglob("*") if p.name != ".lock")
    env = {"IR_TOOLKIT_LOCK_WAIT": "0.5"}
    with write_lock(case, "a test holding the case"):
        for verb in (["import", case, files[1]], ["detect", case], ["scope", case]):
            p = cli(*verb, env=env)
            assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
            assert "another ir-toolkit process is writing to this case" in p.stderr and "a test holding" in p.stderr
        assert cli("evidence", case).returncode == 0  # readers need no lock
        assert cli("timeline", case, "--out", tmp_path / "t.csv").returncode == 0
    after = sorted(p.relative_to(case).as_posix() for p in case.rglob("*") if p.name != ".lock")
    assert after == before
    assert cli("import", case, files[1], env=env).returncode == 0  # once the lock is free


def test_a_waiting_writer_goes_on_when_the_first_finishes(tmp_path: Path) -> None:
    files = _inputs(tmp_path / "in")
    case = tmp_path / "case"
    assert cli("case", "init", case, "--tenant", "t").returncode == 0
    held = threading.Event()

    def hold() -> None:
        with write_lock(case, "holder"):
            held.set()
            time.sleep(1.5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    p = cli("import", case, files[0], env={"IR_TOOLKIT_LOCK_WAIT": "30"})
    t.join()
    assert p.returncode == 0, p.stderr


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[tuple[Path, bool]]:
    """A 2 MB tmpfs when this machine lets the test mount one (else a plain folder)."""
    point = tmp_path / "mnt"
    point.mkdir()
    ok = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(point)],
                                              capture_output=True).returncode == 0
    try:
        yield point, ok
    finally:
        if ok:
            subprocess.run(["umount", str(point)], capture_output=True)


def test_full_disk_is_one_line_and_the_case_recovers(mount: tuple[Path, bool], tmp_path: Path) -> None:
    point, tmpfs = mount
    files = _inputs(tmp_path / "in")
    big = tmp_path / "in" / "big.json"
    big.write_bytes(build("json", texts(1500)))  # ~3 MB: more than the disk holds
    case = point / "case"
    assert cli("case", "init", case, "--tenant", "t").returncode == 0
    env = dict(ENV) if tmpfs else {**ENV, "FAULT_FSIZE": str(400_000)}
    p = _run(0, case, "import", case, files[0], big, env=env)
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if not ln.startswith("WRITES")]
    assert len(lines) == 1 and ("disk is full" in lines[0] or "cannot" in lines[0]), lines
    assert "Traceback" not in p.stderr
    # space comes back: the responder moves the case and runs import again
    moved = tmp_path / "moved"
    shutil.copytree(case, moved, symlinks=True)
    shutil.rmtree(case)
    assert _run(0, moved, "import", moved, files[0], big).returncode == 0
    _intact(moved)
    assert _held_once(moved) == 1500  # the 40 sign-ins share their ids with the first 40 of big.json


FULL_DUCKDB_WRITE = """
import resource, sys
from pathlib import Path
import duckdb
from ir_toolkit.case import Case
from ir_toolkit.case.lock import writes_case
from ir_toolkit.errors import CaseError
from ir_toolkit.sqltext import literal

@writes_case("detect")
def spill(case: Case) -> None:
    con = duckdb.connect()
    con.execute("COPY (SELECT repeat(md5(i::VARCHAR), 40) AS t FROM range(200000) r(i)) TO "
                + literal((case.root / "cache.csv").as_posix()) + " (FORMAT csv)")

resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
try:
    spill(Case.open(sys.argv[1], writable=True))
except CaseError as exc:
    print(exc)
"""


def test_a_full_disk_under_duckdb_is_a_case_error(tmp_path: Path) -> None:
    """DuckDB reports a full disk (its spill file, a Parquet or CSV write) as ``duckdb.IOException``, not as an
    OSError: the case's write seam turns it into the same one-line case error (exit 2 in the CLI)."""
    case = tmp_path / "case"
    assert cli("case", "init", case, "--tenant", "t").returncode == 0
    p = subprocess.run([sys.executable, "-c", FULL_DUCKDB_WRITE, str(case)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert p.stdout.count("\n") == 1 and "the disk is full" in p.stdout and "run detect again" in p.stdout, p.stdout


def test_read_only_case(mount: tuple[Path, bool], tmp_path: Path) -> None:
    point, tmpfs = mount
    files = _inputs(tmp_path / "in")
    case = point / "case"
    assert cli("case", "init", case, "--tenant", "t").returncode == 0
    assert cli("import", case, files[0], files[1]).returncode == 0
    assert cli("detect", case).returncode == 0
    if tmpfs:
        assert subprocess.run(["mount", "-o", "remount,ro", str(point)], capture_output=True).returncode == 0
    else:
        for p in [case, *case.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
    snapshot = {p.relative_to(case).as_posix(): p.stat().st_mtime_ns for p in case.rglob("*")}
    for verb in (["import", case, files[2]], ["detect", case], ["scope", case]):
        p = cli(*verb)
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and "read-only" in p.stderr, p.stderr
    assert cli("evidence", case, "--json").returncode == 0
    assert {p.relative_to(case).as_posix(): p.stat().st_mtime_ns for p in case.rglob("*")} == snapshot
    assert Case.open(case).verify() == [] and _held_once(case) == 40 + 25
    if tmpfs:
        subprocess.run(["mount", "-o", "remount,rw", str(point)], capture_output=True)


def test_a_case_path_with_quotes_and_globs_is_never_sql(tmp_path: Path) -> None:
    files = _inputs(tmp_path / "in")
    marker = tmp_path / "pwned.csv"
    name = f"x'); COPY (SELECT 1) TO '{marker}'; --[1]*?"
    with tempfile.TemporaryDirectory(dir=tmp_path) as parent:
        case = Path(parent) / name
        assert cli("case", "init", case, "--tenant", "t").returncode == 0
        assert cli("import", case, files[0], files[1]).returncode == 0
        for verb in (["detect", case], ["scope", case], ["timeline", case, "--out", tmp_path / "t.csv"]):
            p = cli(*verb)
            assert p.returncode == 0, p.stderr
        assert not marker.exists()
        assert _held_once(case) == 40 + 25
