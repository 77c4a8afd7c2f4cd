"""`ir-toolkit collect` end to end: real MSAL flows against a fake HTTPS authority, a fake Graph,
crash and resume with kill -9, and no secret or token anywhere on disk or in the logs."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ir_toolkit.case import Case
from ir_toolkit.sources.graph.checkpoint import read_lines
from ir_toolkit.sources.graph.sources import DEFAULT_AUDIT_OPERATIONS, SOURCES
from tests.collect_helpers import RECORDS, SINCE, UNTIL
from tests.conftest import ROOT, cli
from tests.fakes.authority import FakeAuthority, make_client_cert
from tests.fakes.graph_server import FakeGraph
from tests.fakes.records import expected_ids

SECRET = "Sup3r-s3cret~value.that/never+leaks"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[FakeAuthority, FakeGraph, dict[str, str], Path]]:
    pem, pfx, cert = make_client_cert(tmp_path)
    with FakeAuthority(tmp_path, secret=SECRET, client_cert_pem=cert) as sts, \
            FakeGraph(RECORDS, token_ok=sts.token_ok) as graph:
        env = {"REQUESTS_CA_BUNDLE": str(sts.ca_file), "IR_TOOLKIT_COLLECT_TIME_SCALE": "0.001",
               "COLLECT_SECRET": SECRET, "XDG_RUNTIME_DIR": str(tmp_path / "runtime")}
        yield sts, graph, env, tmp_path


def _case(tmp_path: Path, name: str = "case") -> Path:
    r = cli("case", "init", tmp_path / name, "--tenant", "contoso-tenant")
    assert r.returncode == 0, r.stderr
    return tmp_path / name


def _args(sts: FakeAuthority, graph: FakeGraph, case: Path, *auth: str, sources: str | None = None) -> list[Any]:
    args: list[Any] = ["collect", case, "--client-id", sts.client_id, *auth, "--since", SINCE, "--until", UNTIL,
                       "--authority-url", sts.authority(), "--graph-url", graph.url, "--json"]
    return args + (["--sources", sources] if sources else [])


def _case_records(case: Path) -> dict[str, list[str]]:
    manifest = json.loads((case / "case.json").read_text())
    out: dict[str, list[str]] = {}
    for e in manifest["evidence"]:
        if e["source"].startswith("collect:"):
            out.setdefault(e["source"][8:], []).extend(r["id"] for r in read_lines(case / e["path"]))
    return out


def _expected(source: str) -> set[str]:
    return expected_ids(RECORDS, source, DEFAULT_AUDIT_OPERATIONS if source == "audit_log" else None)


def test_client_secret_collects_every_source_exactly_and_leaks_nothing(servers: Any) -> None:
    sts, graph, env, tmp = servers
    case = _case(tmp)
    graph.inject("expire", path="auditLogs/directoryAudits", nth=2)  # the token expires mid-run
    r = cli("-vv", *_args(sts, graph, case, "--client-secret-env", "COLLECT_SECRET"), env=env)
    assert r.returncode == 0, r.stderr
    assert sts.grants.count("client_credentials") == 2  # MSAL fetched a fresh token after the 401
    doc = json.loads(r.stdout)
    assert doc["complete"] and not doc["gaps"] and set(doc["sources"]) == set(SOURCES)
    records = _case_records(case)
    for name in SOURCES:
        assert len(records[name]) == len(set(records[name])) and set(records[name]) == _expected(name), name
        assert doc["sources"][name]["records"] == len(_expected(name))
    manifest = json.loads((case / "case.json").read_text())
    ledger = manifest["collection"]["ledger"]
    assert ledger == doc["ledger"] and all(row["complete"] for row in ledger)
    assert {"source", "slice_start", "slice_end", "requested", "pages", "records", "retries", "throttle_wait_s",
            "complete", "gap"} <= set(ledger[0])
    assert all(e["path"].startswith("raw/collect/") and len(e["sha256"]) == 64 for e in manifest["evidence"])
    assert cli("verify", case).returncode == 0
    custody = (case / "custody.log").read_text()
    assert '"collect.start"' in custody and '"collect.end"' in custody and "COLLECT_SECRET" in custody
    # secrets: neither the client secret nor any access token anywhere
    assert sts.issued and graph.tokens_seen >= sts.issued
    haystacks = {"stdout": r.stdout, "stderr (-vv logs)": r.stderr}
    for f in [*case.rglob("*"), *(tmp / "runtime").rglob("*")]:
        if f.is_file() and f.suffix != ".gz":
            haystacks[str(f)] = f.read_text(errors="replace")
    for where, text in haystacks.items():
        assert SECRET not in text, f"client secret in {where}"
        assert not any(tok in text for tok in sts.issued), f"access token in {where}"


def test_device_code_flow_prompts_and_collects(servers: Any) -> None:
    sts, graph, env, tmp = servers
    case = _case(tmp)
    r = cli(*_args(sts, graph, case, "--device-code", sources="signins_interactive,applications"), env=env)
    assert r.returncode == 0, r.stderr
    assert "enter FAKE-CODE" in r.stderr and sts.device_polls >= 2
    records = _case_records(case)
    assert set(records) == {"signins_interactive", "applications"}
    assert set(records["signins_interactive"]) == _expected("signins_interactive")
    cache_files = [f for f in (tmp / "runtime").rglob("*") if f.is_file()]
    for f in cache_files:  # an encrypted cache (or its signal file) never holds a token in clear
        assert not any(tok.encode() in f.read_bytes() for tok in sts.issued)


@pytest.mark.parametrize("cert_name", ["app-cred.pem", "app-cred.pfx"])
def test_certificate_pem_and_pfx(servers: Any, cert_name: str) -> None:
    sts, graph, env, tmp = servers
    case = _case(tmp)
    r = cli(*_args(sts, graph, case, "--certificate", tmp / cert_name, sources="directory_audits"), env=env)
    assert r.returncode == 0, r.stderr
    assert set(_case_records(case)["directory_audits"]) == _expected("directory_audits")
    assert "client_credentials" in sts.grants


@pytest.mark.parametrize("extra,message", [
    (["--client-secret-env", "NOT_SET_ANYWHERE"], "NOT_SET_ANYWHERE: that environment variable is not set"),
    (["--client-secret-env", "WRONG_SECRET"], "invalid_client"),
    (["--client-secret-env", "COLLECT_SECRET", "--sources", "mail"], "unknown source 'mail'"),
    (["--certificate", "/nonexistent.pem"], "/nonexistent.pem: no such file"),
])
def test_bad_input_is_one_line_and_exit_2(servers: Any, extra: list[str], message: str) -> None:
    sts, graph, env, tmp = servers
    case = _case(tmp)
    r = cli(*_args(sts, graph, case, *extra), env={**env, "WRONG_SECRET": "nope"})
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert SECRET not in r.stderr


def test_bad_window_is_exit_2(servers: Any) -> None:
    sts, graph, env, tmp = servers
    case = _case(tmp)
    args = _args(sts, graph, case, "--client-secret-env", "COLLECT_SECRET")
    args[args.index("--until") + 1] = "2023-05-01"
    r = cli(*args, env=env)
    assert r.returncode == 2 and "is not after --since" in r.stderr


def test_killed_at_random_points_resumes_to_the_identical_record_set(servers: Any) -> None:
    sts, graph, env, tmp = servers
    sources = "signins_interactive,signins_noninteractive,directory_audits,audit_log,applications"
    tuning = ["--page-size", "8", "--slice-hours", "12", "--no-progress"]
    reference = _case(tmp, "reference")
    r = cli(*_args(sts, graph, reference, "--client-secret-env", "COLLECT_SECRET", sources=sources), *tuning,
            env=env)
    assert r.returncode == 0, r.stderr
    total_requests = graph.served()
    graph.page_delay = 0.004
    case = _case(tmp, "crashed")
    rng = random.Random(5)
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    argv = [sys.executable, "-m", "ir_toolkit",
            *map(str, _args(sts, graph, case, "--client-secret-env", "COLLECT_SECRET", sources=sources)), *tuning]
    kills = 0
    for _ in range(12):  # killed after a random number of Graph requests
        at = graph.served() + rng.randrange(2, max(3, total_requests // 15))
        proc = subprocess.Popen(argv, env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and graph.served() < at:
            time.sleep(0.001)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 10
    importing = 0
    for _ in range(3):  # killed while importing the collected files into the event store
        proc = subprocess.Popen(argv, env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = {p: p.stat().st_mtime_ns for p in (case / "events").rglob("*") if p.is_file()}
        while proc.poll() is None and {p: p.stat().st_mtime_ns for p in (case / "events").rglob("*")
                                       if p.is_file()} == before:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.05))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            importing += 1
        proc.wait(timeout=60)
    assert importing >= 1
    r = cli(*_args(sts, graph, case, "--client-secret-env", "COLLECT_SECRET", sources=sources), *tuning, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["complete"]
    got, want = _case_records(case), _case_records(reference)
    assert set(got) == set(want)
    for name in want:
        assert len(got[name]) == len(set(got[name])), f"{name}: duplicated after resume"
        assert set(got[name]) == set(want[name]) == _expected(name), f"{name}: differs after resume"
    assert cli("verify", case).returncode == 0
    events = [Case.open(c).read_events().drop(columns=["evidence"]).sort_values(["source", "record_id"])
              .reset_index(drop=True) for c in (case, reference)]
    assert len(events[0]) > 0
    pd.testing.assert_frame_equal(events[0], events[1])
