"""Acceptance: a fake Graph and a fake HTTPS authority serving the sample tenant; collection equals it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ir_toolkit.case import Case
from ir_toolkit.sources.graph.sources import SOURCES
from tests.conftest import cli
from tests.fakes.authority import FakeAuthority
from tests.fakes.graph_server import FakeGraph
from tests.test_collect_cli import SECRET, _case, _case_records


def test_collecting_the_sample_tenant_returns_exactly_its_records(tmp_path: Path) -> None:
    """Acceptance: a fake Graph serving the sample tenant; every source collected equals its records."""
    from ir_toolkit.paths import sample_tenant_dir
    from tests.fakes.records import SAMPLE_FOLDERS, load_sample_tenant

    tenant = load_sample_tenant(sample_tenant_dir())
    assert len(tenant["signins"]) > 1000 and len(tenant["audit_log"]) > 1000
    times = [pd.Timestamp(r.get("createdDateTime") or r["activityDateTime"])
             for key in ("signins", "audit_log", "directory_audits") for r in tenant[key]]
    since, until = min(times).floor("D"), (max(times) + pd.Timedelta(seconds=1)).ceil("D")
    with FakeAuthority(tmp_path, secret=SECRET) as sts, FakeGraph(tenant, token_ok=sts.token_ok) as graph:
        case = _case(tmp_path)
        r = cli("collect", case, "--client-id", sts.client_id, "--client-secret-env", "COLLECT_SECRET",
                "--since", since.isoformat(), "--until", until.isoformat(), "--authority-url", sts.authority(),
                "--graph-url", graph.url, "--audit-operations", "all", "--slice-hours", "168", "--json",
                env={"REQUESTS_CA_BUNDLE": str(sts.ca_file), "IR_TOOLKIT_COLLECT_TIME_SCALE": "0.001",
                     "COLLECT_SECRET": SECRET})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["complete"]
    got = _case_records(case)
    served = {"signins_interactive": "interactiveUser", "signins_noninteractive": "nonInteractiveUser",
              "signins_serviceprincipal": "servicePrincipal", "signins_managedidentity": "managedIdentity"}
    for name in SOURCES:
        if name in served:
            want = {x["id"] for x in tenant["signins"] if served[name] in x["signInEventTypes"]}
        else:
            want = {x["id"] for x in tenant[name]}
        ids = got.get(name, [])
        assert len(ids) == len(set(ids)) and set(ids) == want, name
    # collected and imported cases are identical downstream
    files = sorted(p for sub in SAMPLE_FOLDERS for p in (sample_tenant_dir() / sub).glob("page-*.json*"))
    imported = _case(tmp_path, "imported")
    r = cli("import", imported, *files, "--json")
    assert r.returncode == 0, r.stderr
    a, b = Case.open(case).read_events(), Case.open(imported).read_events()
    columns = [c for c in a.columns if c not in ("evidence",)]
    key = ["source", "record_id"]
    a = a[columns].sort_values(key).reset_index(drop=True)
    b = b[columns].sort_values(key).reset_index(drop=True)
    assert len(a) == len(b) > 20000
    pd.testing.assert_frame_equal(a, b)
