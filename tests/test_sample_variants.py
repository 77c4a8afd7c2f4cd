"""Evidence variants of ``sample make``: each option changes exactly what it says, read from the raw files.

Small tenants (12 users, 35 days); every expectation is re-derived here from the raw pages and the
Purview export with tests/sample_reading.py, never through the importer.
"""

from __future__ import annotations

import csv
import hashlib
import ipaddress
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, cli
from sample_reading import bare_ip, csv_export, pages, records, ual

from ir_toolkit.sample import make_sample

SMALL = {"seed": 11, "users": 12, "days": 35}
SIGNIN_DIRS = ("signins_interactive", "signins_noninteractive", "signins_serviceprincipal")
GRAPH_UAL = Path("purview") / "audit_log_query_records"


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text.endswith("Z") else \
        datetime.fromisoformat(text + "+00:00")


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _key(root: Path) -> dict[str, Any]:
    return json.loads((root / "answer_key.json").read_text())


def _graph_ual(root: Path) -> list[dict[str, Any]]:
    return [r["auditData"] for r in records(root / GRAPH_UAL)]


def _actor(key: dict[str, Any], rec: dict[str, Any]) -> bool:
    apps = {a["field"]: a["app_id"] for a in key["actor_apps"]}
    return rec.get("AppId") == apps["AppId"] and rec.get("ClientAppId") == apps["ClientAppId"]


def _truth(key: dict[str, Any]) -> tuple[Any, ...]:
    return (key["compromised_mailboxes"], key["actor_ips"], key["window"], key["actor_token_ids"], key["cover_up"])


@pytest.fixture(scope="module")
def make(tmp_path_factory: pytest.TempPathFactory) -> Any:
    made: dict[tuple[Any, ...], Path] = {}

    def _make(**options: Any) -> Path:
        tag = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))
        if tag not in made:
            root = tmp_path_factory.mktemp("variant") / "tenant"
            make_sample(root, **SMALL, **options)
            made[tag] = root
        return made[tag]
    return _make


@pytest.fixture(scope="module")
def base(make: Any) -> Path:
    return make()


@pytest.mark.parametrize(("names", "gone"), [
    (["signins"], [f"entra/{d}" for d in SIGNIN_DIRS]),
    (["signin_noninteractive"], ["entra/signins_noninteractive"]),
    (["directory_audit"], ["entra/directory_audits"]),
    (["ual"], ["purview"]),
    (["ual_csv"], ["purview/audit_search_export.csv"]),
    (["ual_graph"], ["purview/audit_log_query_records"]),
    (["signins", "directory_audit"], [*(f"entra/{d}" for d in SIGNIN_DIRS), "entra/directory_audits"]),
])
def test_drop_removes_exactly_those_files(make: Any, base: Path, names: list[str], gone: list[str]) -> None:
    root = make(drop=names)
    before, after = _digest(base), _digest(root)
    lost = {p for p in before if any(p == g or p.startswith(g + "/") for g in gone)}
    assert lost and not any((root / g).exists() for g in gone)
    kept = set(before) - lost - {"answer_key.json", "README.md"}
    assert {p: after.get(p) for p in kept} == {p: before[p] for p in kept}, "every other file byte-identical"
    assert set(after) - {"answer_key.json", "README.md"} == kept
    key, truth = _key(root), _key(base)
    assert key["evidence_variant"]["dropped"] == names and {f["path"] for f in key["files"]} == kept
    if names == ["ual"]:                                 # nothing about the actor is provable
        assert not key["compromised_mailboxes"] and not key["actor_ips"] and not key["actor_token_ids"]
        assert key["window"] == {"first_malicious": None, "last_malicious": None} and not key["cover_up"]
        assert key["actor_records_removed"] == sum(m["events"] for m in truth["compromised_mailboxes"])
    else:                                                # sign-in, directory, one UAL form: the truth stands
        assert _truth(key) == _truth(truth) and key["actor_records_removed"] == 0


def test_drop_ual_other_keeps_only_mail_items_accessed(make: Any, base: Path) -> None:
    root = make(drop=["signins", "directory_audit", "ual_other"])      # "mail audit only"
    assert not (root / "entra" / "directory_audits").exists()
    assert not any((root / "entra" / d).exists() for d in SIGNIN_DIRS)
    for recs in (_graph_ual(root), list(ual(root))):
        assert recs and {r["Operation"] for r in recs} == {"MailItemsAccessed"}
    assert [r["Id"] for r in _graph_ual(root)] == [r["Id"] for r in _graph_ual(base)
                                                   if r["Operation"] == "MailItemsAccessed"]
    key, truth = _key(root), _key(base)
    assert _truth(key)[:4] == _truth(truth)[:4] and truth["cover_up"] and not key["cover_up"]


@pytest.mark.parametrize(("gap", "family"), [
    ("ual:2023-06-01T00:00Z:24", "ual"), ("ual_csv:2023-05-24:48", "ual_csv"),
    ("signins:2023-06-05T06:00:00Z:6", "signins"), ("ual_other:2023-06-07:24", "ual_other"),
])
def test_gap_removes_the_records_inside_it_only(make: Any, base: Path, gap: str, family: str) -> None:
    root = make(gaps=[gap])
    start = datetime.fromisoformat(gap.split(":", 1)[1].rsplit(":", 1)[0].replace("Z", "")).replace(tzinfo=UTC)
    end = start + timedelta(hours=float(gap.rsplit(":", 1)[1]))
    key = _key(root)
    assert key["evidence_variant"]["gaps"] == [{"source": gap.split(":")[0], "start": start.strftime(
        "%Y-%m-%dT%H:%M:%SZ"), "end": end.strftime("%Y-%m-%dT%H:%M:%SZ")}]
    inside = lambda t: start <= t < end                                       # noqa: E731
    if family == "signins":
        for d in SIGNIN_DIRS:
            times = [_t(r["createdDateTime"]) for r in records(root / "entra" / d)]
            assert not any(inside(t) for t in times)
            old = [r["id"] for r in records(base / "entra" / d) if not inside(_t(r["createdDateTime"]))]
            assert [r["id"] for r in records(root / "entra" / d)] == old
        both = [_t(r["createdDateTime"]) for r in records(root / "entra" / "signins_noninteractive")]
        assert any(start - timedelta(hours=12) <= t < start for t in both) and any(end <= t < end + timedelta(
            hours=12) for t in both), "records on both sides of the hole"
        assert _truth(key) == _truth(_key(base))
        return
    forms = {"graph": _graph_ual(root), "csv": list(ual(root))}
    hit = {"ual": ("graph", "csv"), "ual_other": ("graph", "csv"), "ual_csv": ("csv",)}[family]
    for name, recs in forms.items():
        times = [_t(r["CreationTime"]) for r in recs if family != "ual_other" or r["Operation"] != "MailItemsAccessed"]
        assert any(inside(t) for t in times) == (name not in hit), name
        assert any(start - timedelta(hours=24) <= t < start for t in times)
        assert any(end <= t < end + timedelta(hours=24) for t in times)
    for p in pages(root / GRAPH_UAL)[:-1]:
        assert "$skiptoken=" in p["@odata.nextLink"]
    assert "@odata.nextLink" not in pages(root / GRAPH_UAL)[-1]
    # the truth counts only actor MailItemsAccessed records still written somewhere
    written = {r["Id"]: r for recs in forms.values() for r in recs}
    actor = [r for r in written.values() if r["Operation"] == "MailItemsAccessed" and _actor(key, r)]
    base_actor = [r for r in _graph_ual(base) if r["Operation"] == "MailItemsAccessed" and _actor(key, r)]
    assert sum(m["events"] for m in key["compromised_mailboxes"]) == len(actor)
    assert key["actor_records_removed"] == len(base_actor) - len(actor)
    assert (key["actor_records_removed"] > 0) == (family == "ual" and any(inside(_t(r["CreationTime"]))
                                                                          for r in base_actor))
    cover = [r for r in written.values() if r["Operation"] != "MailItemsAccessed" and _actor(key, r)]
    assert len(key["cover_up"]) == len(cover)


def test_shared_vpn_address_serves_the_actor_and_a_legitimate_user(make: Any, base: Path) -> None:
    root = make(shared_vpn=True)
    key = _key(root)
    vpn = next(d["entities"] for d in key["decoys"] if d["kind"] == "shared_vpn")
    ip, upn = vpn["ip"], vpn["upn"]
    assert key["evidence_variant"]["shared_vpn"] is True and ip in {i["ip"] for i in key["actor_ips"]}
    assert upn not in {m["upn"] for m in key["compromised_mailboxes"]}
    others = {d["kind"]: d["entities"] for d in key["decoys"]}
    assert upn != others["traveller"]["upn"] and ip not in (others["traveller"]["ip"], *others["password_spray"]["ips"])
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("203.0.113.0/24")
    assert not any(ip in json.dumps(r) for r in ual(base)), "the address is new to the tenant"
    mail = [r for r in ual(root) if r["Operation"] == "MailItemsAccessed" and bare_ip(r["ClientIPAddress"]) == ip]
    actor = [r for r in mail if _actor(key, r)]
    legit = [r for r in mail if not _actor(key, r)]
    assert actor and legit and {r["MailboxOwnerUPN"] for r in legit} == {upn}
    assert {r["MailboxOwnerUPN"] for r in actor} <= {m["upn"] for m in key["compromised_mailboxes"]}
    kinds: dict[str, list[dict[str, Any]]] = {d: [r for r in records(root / "entra" / d) if r["ipAddress"] == ip]
                                              for d in SIGNIN_DIRS}
    assert kinds["signins_interactive"] and kinds["signins_noninteractive"] and not kinds["signins_serviceprincipal"]
    signed = [r for rs in kinds.values() for r in rs]
    assert {r["userPrincipalName"] for r in signed} == {upn} and all(r["status"]["errorCode"] == 0 for r in signed)
    issued = {r["uniqueTokenIdentifier"] for r in signed}
    assert any(r.get("AppAccessContext", {}).get("UniqueTokenId") in issued for r in legit), "tokens issued"
    assert not any(r["AppAccessContext"]["UniqueTokenId"] in issued for r in actor)
    days = lambda rs: {r["CreationTime"][:10] for r in rs}                    # noqa: E731
    assert days(actor) & days(legit), "both use it on the same day"
    assert next(i for i in key["actor_ips"] if i["ip"] == ip)["events"] == len(actor)


def test_frontend_addresses_lie_in_the_shipped_ranges_and_are_shared(make: Any, base: Path) -> None:
    root = make(frontend_ips=True)
    key = _key(root)
    with (DATA / "reference" / "exchange_online_frontend_ranges.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == {"cidr", "service", "note"}
    nets = [ipaddress.ip_network(r["cidr"]) for r in rows]
    assert {"40.96.0.0/13", "52.96.0.0/14", "2603:1036::/36", "13.107.6.152/31"} <= {r["cidr"] for r in rows}
    ips = next(d["entities"]["ips"] for d in key["decoys"] if d["kind"] == "exchange_frontend")
    assert len(ips) >= 3 and any(":" in i for i in ips) and any("." in i for i in ips)
    for ip in ips:
        a = ipaddress.ip_address(ip)
        assert any(a.version == n.version and a in n for n in nets), ip
    by_ip: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in ual(root):
        if r["Operation"] == "MailItemsAccessed" and bare_ip(r["ClientIPAddress"]) in ips:
            by_ip[bare_ip(r["ClientIPAddress"])].append(r)
    assert set(by_ip) == set(ips)
    for ip, recs in by_ip.items():
        assert len({r["MailboxOwnerUPN"] for r in recs}) >= 3 and len({r["AppId"] for r in recs}) >= 2, ip
        assert not any(_actor(key, r) for r in recs)
    assert not {r["ipAddress"] for d in SIGNIN_DIRS for r in records(root / "entra" / d)} & set(ips)
    infos = {r["ClientInfoString"] for rs in by_ip.values() for r in rs}
    assert "Client=OWA;Action=ViaProxy" in infos and "Client=REST;Client=RESTSystem;;" in infos
    assert _truth(key) == _truth(_key(base)), "front ends change no actor record"


def test_options_are_deterministic(tmp_path: Path) -> None:
    opts = ["--drop", "ual_csv", "--gap", "signins:2023-06-01:24", "--gap", "ual:2023-05-22T03:30Z:1.5",
            "--shared-vpn", "--frontend-ips"]
    r = cli("sample", "make", tmp_path / "a", "--seed", "11", "--users", "12", "--days", "35", *opts, "--json")
    assert r.returncode == 0, r.stderr
    make_sample(tmp_path / "b", **SMALL, drop=["ual_csv"], gaps=["signins:2023-06-01:24", "ual:2023-05-22T03:30Z:1.5"],
                shared_vpn=True, frontend_ips=True)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    key = _key(tmp_path / "a")
    assert key["evidence_variant"]["gaps"][1] == {"source": "ual", "start": "2023-05-22T03:30:00Z",
                                                  "end": "2023-05-22T05:00:00Z"}
    assert "--shared-vpn" in (tmp_path / "a" / "README.md").read_text()
    assert not (tmp_path / "a" / "purview" / "audit_search_export.csv").exists()
    _, rows = csv_export(DATA / "sample-tenant")                    # the default stays the committed tenant
    assert rows


@pytest.mark.parametrize(("args", "words"), [
    (["--drop", "mail"], "unknown log family 'mail' (known: signin_interactive"),
    (["--gap", "ual"], "expected SOURCE:START:HOURS"),
    (["--gap", "ual:2023-06-01"], "expected SOURCE:START:HOURS"),
    (["--gap", "nope:2023-06-01:4"], "--gap: unknown log family 'nope'"),
    (["--gap", "ual:June 1st:4"], "is not an ISO date or time"),
    (["--gap", "ual:2023-06-01:-3"], "is not a positive number"),
    (["--gap", "ual:2023-06-01:many"], "is not a positive number"),
    (["--gap", "ual:2023-06-01:nan"], "is not a positive number"),
])
def test_bad_option_values_exit_2_with_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    r = cli("sample", "make", tmp_path / "t", "--users", "12", "--days", "35", *args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and words in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "t").exists()


@pytest.mark.slow
def test_default_tenant_unchanged_by_the_variant_code(tmp_path: Path) -> None:
    """The committed tenant, made again with every option at its default, is byte-identical."""
    key = _key(DATA / "sample-tenant")
    t = key["tenant"]
    assert key["evidence_variant"] == {"dropped": [], "gaps": [], "shared_vpn": False, "frontend_ips": False}
    make_sample(tmp_path / "again", seed=t["seed"], users=t["users_param"], days=t["days_param"], gzip=t["gzip"],
                drop=(), gaps=(), shared_vpn=False, frontend_ips=False)
    assert _digest(tmp_path / "again") == _digest(DATA / "sample-tenant")
    assert datetime.now(UTC) > _t(key["tenant"]["collected_at"])
