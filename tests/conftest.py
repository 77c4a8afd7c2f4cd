"""Shared fixtures: run the CLI as a real subprocess, make cases, find shared fixtures.

Also how the suite runs on several cores (pytest-xdist, ``make test``): see
:func:`pytest_collection_modifyitems`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.acceptance_cases import Tenants

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SHARED = ROOT.parent / "shared"
TESTDATA = Path(__file__).resolve().parent / "data"


def cli(*args: str | os.PathLike[str], input: str | None = None, env: dict[str, str] | None = None,
        timeout: float = 300, cwd: os.PathLike[str] | str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ir_toolkit ARGS`` from this checkout and capture its output."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ir_toolkit", *map(str, args)],
        capture_output=True, text=True, input=input, env=full_env, timeout=timeout, cwd=cwd or ROOT,
    )


#: Spark in the tests runs tiny cases, where a cold JVM's optimising JIT and Spark's whole-stage code generation cost
#: more than the queries do (measured: a first token-forgery pack on a fresh JVM 100 s, 52 s with these; the same
#: plans, the same results). Set before any JVM starts, so the Spark fixture's, the CLI's and a playbook kernel's
#: (they inherit the environment) all start this way; a developer's own PYSPARK_SUBMIT_ARGS is left as it is.
os.environ.setdefault("PYSPARK_SUBMIT_ARGS", "--driver-java-options -XX:TieredStopAtLevel=1 "
                      "--conf spark.sql.codegen.wholeStage=false pyspark-shell")


@pytest.fixture(scope="session")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Tenants:
    """Generated tenants imported once per run, shared by all modules and all xdist workers (whose
    temporary folders share one parent, new for each run)."""
    from tests.acceptance_cases import Tenants
    from tests.built_once import shared_root

    return Tenants(shared_root(tmp_path_factory, "tenants"))


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    """A fresh case folder (created with the real Case API)."""
    from ir_toolkit.case import Case

    Case.init(tmp_path / "case", tenant="contoso.onmicrosoft.com")
    return tmp_path / "case"


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never depend on the developer's proxy settings (and never reach the internet)."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


# ----- running on several cores (pytest-xdist: ``make test`` runs ``-n auto --dist loadgroup``) -----------------
#: Modules whose tests are grouped by the generated tenant they run on (``tenant`` parameter) rather than by
#: module: the tenant is built once per run for every worker (the ``tenants`` fixture), so its tests can go to
#: any worker, and splitting the biggest module lets both cores work on it.
SPLIT_BY_TENANT = ("test_acceptance_evidence.py", "test_acceptance_sample.py")
#: Every test that runs Spark (``spark`` marker) is in one group, handed out first: one worker pays one cold JVM
#: (about a minute of warm-up) and runs the comparisons (about a third of the suite's work) while the other takes
#: everything else.
SPARK = "spark"
#: The slowest groups, slowest first (measured): xdist hands groups out in this order, so none starts last.
#: Groups not named here follow in collection order.
SLOWEST_FIRST = (
    SPARK,
    "tenant:seed-42+shared-vpn+frontend-ips", "tenant:seed-558+shared-vpn", "tenant:seed-1234", "tenant:seed-7",
    "tenant:sample-tenant", "test_graph_activity_sample.py", "test_story_app_abuse.py",
    "test_large_case_memory.py", "test_demo.py", "test_playbook.py", "test_acceptance_evidence.py",
)


def _group(item: pytest.Item) -> str:
    module = item.path.name
    params = getattr(item, "callspec", None)
    if module in SPLIT_BY_TENANT and params is not None and "tenant" in params.params:
        return f"tenant:{params.params['tenant']}"
    if item.get_closest_marker(SPARK) is not None:
        return SPARK
    return module


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker: every test joins a group (its module, or its tenant: :data:`SPLIT_BY_TENANT`), so
    ``--dist loadgroup`` runs a module's module-scoped fixtures once, on one worker; slowest groups first.

    Runs before xdist's own hook, which turns the ``xdist_group`` marks into the groups. A plain (one-process)
    run is left as it is.
    """
    if not hasattr(config, "workerinput"):
        return
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    groups = {item.nodeid: _group(item) for item in items}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))

    def order(item: pytest.Item) -> int:  # stable: collection order within a rank
        return rank.get(groups[item.nodeid], len(rank))

    items.sort(key=order)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session per test process, shared by every module that compares the engines."""
    from ir_toolkit.analysis.spark import spark_session

    session = spark_session("local[2]", app_name="ir-toolkit-tests")
    yield session
    session.stop()
