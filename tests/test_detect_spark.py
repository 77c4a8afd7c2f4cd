"""The Spark engine gives the same findings and scope.json as DuckDB (issue 10).

One local[2] SparkSession is shared by every test here (session-scoped fixture). Cases:
the committed sample tenant (its cover-up included); one other seed (99) with every registered story's
intruder (Storm-0558, actor token, abused application, Golden SAML with its AD FS audits) in one case, so that one
Spark run goes through each family member's views, detections and scope (each story's own answer key is
test_stories'); the Graph activity sample; hand-built app-abuse chains without directory audits; and the breach
scenario of test_scope (plus a forged token) as a hive-partitioned "lake table" read with ``events=URI``.
A Spark detect + scope costs a minute or more however small the case (a job per view and detection), hence one
case holding the stories rather than one comparison each.
The CLI is exercised for the missing-Java and missing-pyspark messages (exit 2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ir_toolkit.analysis.detect import detect
from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from ir_toolkit.sample.make import make_sample
from ir_toolkit.sample.stories import STORIES
from tests.acceptance_cases import Tenants, exported_files
from tests.conftest import ROOT, cli
from tests.detect_events import frame, tenant_background, token_event
from tests.graph_cases import GraphCase, graph_base, graph_case, graph_tenant
from tests.test_scope import build

pytestmark = [pytest.mark.spark, pytest.mark.slow]
__all__ = ["graph_base", "graph_case", "graph_tenant"]  # session fixtures shared with test_graph_activity_sample


def _key(findings: pd.DataFrame) -> list[tuple[Any, ...]]:
    return sorted((str(r.detection), str(r.verdict), str(r.member), str(r.user), str(r.mailbox), str(r.ip),
                   str(r.app_id), str(r.token_id), int(r.events), str(r.first), str(r.last), r.explanation,
                   tuple(sorted(r.evidence)))
                  for r in findings.itertuples(index=False))


def _scope_doc(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "generated_at"}


def _both(case: Case, spark: Any, events: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """Findings and scope with DuckDB, then with Spark (options: the shared session, events URI)."""
    duck = detect(case, write=False)
    duck_scope = scope(case, duck, write=False)
    opts = {"session": spark, "events": events}
    sprk = detect(case, write=True, engine="spark", engine_options=opts)
    sprk_scope = scope(case, write=True, engine="spark", engine_options=opts)
    return duck, sprk, duck_scope, sprk_scope


def test_sample_tenant_same_findings_and_scope(tmp_path: Path, spark: Any, tenants: Tenants) -> None:
    _, case, _ = tenants.copy("sample-tenant", tmp_path / "case")  # shared import: tests/acceptance_cases.py
    duck, sprk, duck_scope, sprk_scope = _both(case, spark)
    assert duck_scope["compromised_mailboxes"] and duck_scope["actor_ips"]
    # the cover-up (deleted mail, a hiding inbox rule) in the sample's story
    assert {"mail-cover-up", "hiding-inbox-rule", "orphan-token"} <= set(duck["detection"])
    assert duck_scope["cover_up"]
    assert _key(sprk) == _key(duck)
    assert _scope_doc(sprk_scope) == _scope_doc(duck_scope)
    written = json.loads((case.root / "scope.json").read_text(encoding="utf-8"))
    assert _scope_doc(written) == json.loads(json.dumps(_scope_doc(duck_scope), default=str))
    findings_doc = json.loads((case.root / "findings.json").read_text(encoding="utf-8"))
    assert findings_doc["engine"] == "spark" and len(findings_doc["findings"]) == len(duck)


@pytest.fixture(scope="module")
def stories_case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """Seed 99, 12 users, 35 days, once per registered story, every tenant's logs imported into one case (the
    tenants share their ordinary users and traffic: what repeats is imported once)."""
    base = tmp_path_factory.mktemp("stories-seed-99")
    case = Case.init(base / "case", tenant="sample")
    for name in STORIES:
        make_sample(base / name, seed=99, users=12, days=35, story_name=name)
        case.import_files(exported_files(base / name))
    return case


def test_every_story_in_one_case_same_findings_and_scope(stories_case: Case, spark: Any) -> None:
    duck, sprk, duck_scope, sprk_scope = _both(stories_case, spark)
    strong = duck[duck["verdict"].isin(["confirmed", "likely"])]
    assert {"forged-oauth-token", "actor-token", "app-abuse", "golden-saml"} <= set(strong["member"])
    assert {"orphan-token", "actor-token-directory-write", "golden-saml-signin"} <= set(strong["detection"])
    ruled_in = {f["member"] for f in duck_scope["family"] if f["status"] == "ruled_in"}
    assert ruled_in == {"forged-oauth-token", "actor-token", "app-abuse", "golden-saml"}
    assert duck_scope["compromised_mailboxes"] and duck_scope["actor_ips"]
    assert _key(sprk) == _key(duck)
    assert _scope_doc(sprk_scope) == _scope_doc(duck_scope)


def test_graph_activity_sample_same_findings_and_scope(graph_case: GraphCase, spark: Any) -> None:
    """orphan-graph-request and the Graph reads in scope: the same on Spark (issue 19). DuckDB's findings and scope
    are the session case's own (tests/graph_cases.py); Spark's are not written into that shared case."""
    duck, duck_scope, opts = graph_case.findings, graph_case.scope, {"session": spark}
    sprk = detect(graph_case.case, write=False, engine="spark", engine_options=opts)
    sprk_scope = scope(graph_case.case, sprk, write=False, engine="spark", engine_options=opts)
    verdicts = set(duck[duck["detection"] == "orphan-graph-request"]["verdict"])
    assert verdicts == {"confirmed", "benign"} and duck_scope["actor_graph_reads"]
    assert _key(sprk) == _key(duck)
    assert _scope_doc(sprk_scope) == _scope_doc(duck_scope)


def test_app_abuse_partial_chains_same_findings_and_scope(case_dir: Path, spark: Any) -> None:
    """Hand-built app-abuse cases: no directory audits (likely), changes from the office (possible), the decoy."""
    from tests import test_detect_app_abuse as aa

    case = Case.open(case_dir)
    case.write_events(frame(*tenant_background(), *aa.intrusion(directory=False), *aa.decoy(),
                            *aa.app_reads(9.2, "203.0.113.61", app="77aa0c2e-7d3b-4e8a-9c61-2b4d8e0f7a99"),
                            aa.grant(aa.at(9, 2), "user0@contoso.com", "10.0.0.1",
                                     app="77aa0c2e-7d3b-4e8a-9c61-2b4d8e0f7a99"),
                            aa.change(aa.at(9, 2.1), "Add service principal credentials", "user0@contoso.com",
                                      "10.0.0.1", app="77aa0c2e-7d3b-4e8a-9c61-2b4d8e0f7a99")))
    duck, sprk, duck_scope, sprk_scope = _both(case, spark)
    chain = duck[duck["detection"] == "app-abuse"]
    assert sorted(chain["verdict"]) == ["likely", "possible"]
    assert _key(sprk) == _key(duck)
    assert _scope_doc(sprk_scope) == _scope_doc(duck_scope)


def test_lake_table_uri(case_dir: Path, tmp_path: Path, spark: Any) -> None:
    """The breach scenario of test_scope with a forged token, its events read from a hive-partitioned Parquet table
    (source only in the folder names): the same findings and scope."""
    case, _ = build(case_dir)
    case.write_events(frame(token_event("forged-a1", "ses-x", "forged")))  # exercise forged-token too
    lake = tmp_path / "lake" / "events"
    files = [str(p) for p in case.events._files()]
    spark.read.parquet(*files).drop("raw").write.partitionBy("source").parquet(str(lake))
    empty = Case.init(tmp_path / "lake-case", tenant="contoso.onmicrosoft.com")
    duck = detect(case, write=False)
    duck_scope = scope(case, duck, write=False)
    sprk = detect(empty, engine="spark", engine_options={"session": spark, "events": lake.as_uri()})
    sprk_scope = scope(empty, engine="spark", engine_options={"session": spark, "events": lake.as_uri()})
    assert len(duck) > 20 and "forged-token" in set(duck["detection"]) and _key(sprk) == _key(duck)
    keep = ("window", "compromised_mailboxes", "actor_ips", "actor_apps", "signin_coverage", "pivots")
    assert {k: sprk_scope[k] for k in keep} == {k: duck_scope[k] for k in keep}


def test_a_local_session_shuffles_into_a_partition_per_core(spark: Any) -> None:
    from ir_toolkit.analysis.spark import local_cores

    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"  # the fixture's local[2]
    assert [local_cores(m) for m in ("local", "local[3]", "local[64]", "local[4,2]")] == [1, 3, 8, 4]
    assert local_cores("local[*]") == max(1, min(os.cpu_count() or 1, 8))


def test_missing_lake_path_is_one_line(case_dir: Path, tmp_path: Path, spark: Any) -> None:
    from ir_toolkit.errors import UserError

    with pytest.raises(UserError, match="cannot read Parquet events with Spark"):
        detect(Case.open(case_dir), engine="spark",
               engine_options={"session": spark, "events": (tmp_path / "nowhere").as_uri()})


def _run(argv: list[str], env: dict[str, str], prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"import sys; {prelude}from ir_toolkit.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(ROOT)}, timeout=120)


def test_missing_java_is_one_line_exit_2(case_dir: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)  # an empty folder: no java on PATH, no JAVA_HOME
    r = _run(["detect", str(case_dir), "--engine", "spark"], env)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Java 17" in r.stderr and "JAVA_HOME" in r.stderr
    r = _run(["scope", str(case_dir), "--engine", "spark"], {**env, "JAVA_HOME": str(tmp_path / "nojdk")})
    assert r.returncode == 2 and "Java 17" in r.stderr, r.stderr


def test_missing_pyspark_is_one_line_exit_2(case_dir: Path) -> None:
    r = _run(["scope", str(case_dir), "--engine", "spark"], dict(os.environ), prelude="sys.modules['pyspark'] = None; ")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "pip install" in r.stderr and "pyspark" in r.stderr


def test_playbook_with_engine_spark(case_dir: Path, tmp_path: Path) -> None:
    """``-p engine=spark``: notebooks 02 and 05 detect and scope on Spark; the scope equals DuckDB's (a playbook of
    those two: 01, 03 and 04 take no engine, and each kernel that uses Spark starts its own JVM)."""
    case, _ = build(case_dir)
    (tmp_path / "spark.yaml").write_text(
        "id: spark-check\nnotebooks: [02-triage.ipynb, 05-scope-report.ipynb]\n"
        "parameters:\n  engine: {type: choice, choices: [duckdb, spark], default: duckdb}\n", encoding="utf-8")
    r = cli("run", tmp_path / "spark.yaml", "--case", case.root, "-p", "engine=spark", timeout=900)
    assert r.returncode == 0, r.stderr
    findings_doc = json.loads((case.root / "findings.json").read_text(encoding="utf-8"))
    assert findings_doc["engine"] == "spark"
    spark_scope = json.loads((case.root / "scope.json").read_text(encoding="utf-8"))
    duck_scope = scope(case, detect(case, write=False), write=False)
    assert spark_scope["compromised_mailboxes"]
    assert _scope_doc(spark_scope) == json.loads(json.dumps(_scope_doc(duck_scope), default=str))
    assert (case.root / "reports" / "report.html").exists()
