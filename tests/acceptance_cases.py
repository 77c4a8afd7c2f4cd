"""Generated tenants imported once per test run, and partial-evidence variants of them.

A tenant is built as a responder builds a case: ``ir-toolkit sample make``, ``Case.init`` and
``Case.import_files`` of the raw logs. It is built once per run, shared by every test module
and every pytest-xdist worker (the ``tenants`` fixture of tests/conftest.py): the first worker
to need it builds it under a file lock, the others wait for it and read it. Tests that write
to a case (detect, scope) work on a copy (:meth:`Tenants.copy`), never on the shared one.
A variant (a dropped source, a hole punched into one) is a new case holding the imported events
minus the dropped ones, which is what importing the variant's files gives
(tests/test_acceptance_evidence.py checks that against ``sample make --drop/--gap`` once).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ir_toolkit.analysis.detect import detect
from ir_toolkit.analysis.scope import scope
from ir_toolkit.case import Case
from ir_toolkit.paths import sample_tenant_dir
from tests.built_once import build_once
from tests.conftest import cli

SIGNINS = ("signin_interactive", "signin_noninteractive", "signin_serviceprincipal")


def exported_files(folder: Path) -> list[Path]:
    """Every file ``sample make`` wrote into ``folder`` but its answer key and README: what a client hands over."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in ("answer_key.json", "README.md"))


def log_files(folder: Path) -> list[Path]:
    """The tenant's sign-in, directory audit and unified audit log files (not the directory snapshots)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in ("answer_key.json", "README.md")
                  and ("signins" in p.as_posix() or "audit" in p.as_posix()))


class Tenants:
    """Builds each named tenant once: ``sample-tenant`` (committed) or ``seed-N`` / ``seed-N+OPTION``.

    ``root`` may be shared by several processes (pytest-xdist workers): each tenant is built once
    (:func:`tests.built_once.build_once`).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.built: dict[str, tuple[Path, Case, dict[str, Any]]] = {}

    def _build(self, name: str, folder: Path) -> None:
        if name == "sample-tenant":
            tenant = sample_tenant_dir()
        else:
            seed, *options = name.removeprefix("seed-").split("+")
            tenant = folder / "tenant"
            r = cli("sample", "make", tenant, "--seed", seed, *[f"--{o}" for o in options])
            assert r.returncode == 0, r.stderr
        case = Case.init(folder / "case", tenant="sample")
        case.import_files(log_files(tenant))
        (folder / "tenant-path").write_text(str(tenant), encoding="utf-8")

    def get(self, name: str) -> tuple[Path, Case, dict[str, Any]]:
        """(tenant folder, imported case, answer key) of ``name``; the case is shared: read it, never write."""
        if name not in self.built:
            folder = build_once(self.root / name, lambda f: self._build(name, f))
            tenant = Path((folder / "tenant-path").read_text(encoding="utf-8"))
            key = json.loads((tenant / "answer_key.json").read_text(encoding="utf-8"))
            self.built[name] = (tenant, Case.open(folder / "case"), key)
        return self.built[name]

    def copy(self, name: str, dest: Path) -> tuple[Path, Case, dict[str, Any]]:
        """(tenant folder, a writable copy at ``dest`` of the imported case, answer key) of ``name``."""
        tenant, case, key = self.get(name)
        shutil.copytree(case.root, dest)
        return tenant, Case.open(dest, writable=True), key


def variant(base: Case, folder: Path, drop: Iterable[str] = (),
            gaps: Iterable[tuple[str, str, float]] = ()) -> Case:
    """A new case with ``base``'s events minus the ``drop`` sources and the ``gaps`` (source, ISO start, hours)."""
    events = base.read_events()
    events = events[~events["source"].isin(list(drop))]
    for source, start, hours in gaps:
        s = pd.Timestamp(start)
        e = s + pd.Timedelta(hours=hours)
        events = events[~((events["source"] == source) & (events["time"] >= s) & (events["time"] < e))]
    case = Case.init(folder, tenant="sample")
    case.write_events(events.reset_index(drop=True))
    return case


def scoped(case: Case) -> dict[str, Any]:
    """detect + scope of ``case``: the scope.json document."""
    detect(case)
    return scope(case)
