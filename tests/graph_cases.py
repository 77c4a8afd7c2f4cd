"""The ``sample make --graph-activity`` tenant and its cases, built once per test session (issue 19).

A small tenant (12 users, 35 days: the generator's minimum) with Microsoft Graph activity logs; cases are
imported as a responder would (``Case.import_files`` of the raw files): the whole evidence, the same
without any sign-in log, and the same with one page of non-interactive sign-ins missing (a hole). The logs
all three share are imported once into a base case that each copies (a case folder is self-contained).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ir_toolkit.analysis.detect import detect, read_findings
from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from tests.built_once import build_once, shared_root
from tests.conftest import cli

HOLE_PAGE = "entra/signins_noninteractive/page-00002.json"


@dataclass
class GraphCase:
    """A scoped case of the Graph activity tenant."""

    case: Case
    findings: pd.DataFrame
    scope: dict[str, Any]
    key: dict[str, Any]


def graph_log_files(tenant: Path, signins: bool = True, others: bool = True, skip: str | None = None) -> list[Path]:
    """Sign-ins, directory audits, the unified audit log's Graph pages and the Graph activity blobs.

    Args:
        tenant: The sample folder.
        signins: Include the sign-in logs.
        others: Include the other logs (directory audits, unified audit log, Graph activity).
        skip: A tenant-relative file left out (a hole).
    """
    out = []
    for p in sorted(tenant.rglob("*")):
        rel = p.relative_to(tenant).as_posix()
        if not p.is_file() or rel == skip or rel.endswith(".csv"):  # the CSV export repeats the UAL pages
            continue
        if (others and rel.startswith(("entra/directory_audits/", "purview/", "azure/"))
                or (signins and rel.startswith("entra/signins_"))):
            out.append(p)
    return out


def _scoped(tenant: Path, base: Path, folder: Path, **kwargs: Any) -> GraphCase:
    """A copy of the case ``base`` (every log but the sign-ins) with the sign-ins ``kwargs`` select imported."""
    shutil.copytree(base, folder)
    case = Case.open(folder, writable=True)
    files = graph_log_files(tenant, others=False, **kwargs)
    if files:
        case.import_files(files)
    findings = detect(case)
    return GraphCase(case, findings, scope(case, findings), json.loads((tenant / "answer_key.json").read_text()))


@pytest.fixture(scope="session")
def graph_tenant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tenant, written once per run for every xdist worker (test_detect_spark's group runs on another)."""
    def make(folder: Path) -> None:
        r = cli("sample", "make", folder / "tenant", "--graph-activity", "--users", "12", "--days", "35",
                "--no-progress")
        assert r.returncode == 0, r.stderr

    return build_once(shared_root(tmp_path_factory, "graph-activity"), make) / "tenant"


@pytest.fixture(scope="session")
def graph_base(graph_tenant: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A case holding every log of the tenant but the sign-ins (imported once per run; the cases below copy it)."""
    def make(folder: Path) -> None:
        Case.init(folder / "case", tenant="sample").import_files(graph_log_files(graph_tenant, signins=False))

    return build_once(shared_root(tmp_path_factory, "graph-base"), make) / "case"


@pytest.fixture(scope="session")
def graph_case(graph_tenant: Path, graph_base: Path, tmp_path_factory: pytest.TempPathFactory) -> GraphCase:
    """The whole evidence, detected and scoped once per run; shared by the workers: read it, never write it."""
    folder = build_once(shared_root(tmp_path_factory, "graph-case"),
                        lambda f: _scoped(graph_tenant, graph_base, f / "case")) / "case"
    case = Case.open(folder)
    findings = read_findings(case)
    assert findings is not None
    return GraphCase(case, findings, json.loads((folder / "scope.json").read_text()),
                     json.loads((graph_tenant / "answer_key.json").read_text()))


@pytest.fixture(scope="session")
def graph_case_without_signins(graph_tenant: Path, graph_base: Path,
                               tmp_path_factory: pytest.TempPathFactory) -> GraphCase:
    return _scoped(graph_tenant, graph_base, tmp_path_factory.mktemp("graph-nosignins") / "case", signins=False)


@pytest.fixture(scope="session")
def graph_case_with_hole(graph_tenant: Path, graph_base: Path, tmp_path_factory: pytest.TempPathFactory) -> GraphCase:
    return _scoped(graph_tenant, graph_base, tmp_path_factory.mktemp("graph-hole") / "case", skip=HOLE_PAGE)
