"""The bearer token goes only to the Graph root it was issued for, over https, and never into a case.

A fake Graph over real HTTPS hands out hostile ``@odata.nextLink`` values (another host, plain
http) and error bodies that quote the token back; a second loopback server stands where the
links point and records whether anything reached it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ir_toolkit.case import Case
from ir_toolkit.case.collect import collect_case
from ir_toolkit.cli import main
from ir_toolkit.sources.graph.client import UnsafeLink, link_problem
from tests.collect_helpers import RECORDS, SINCE, UNTIL, fast_client, fast_options
from tests.fakes.authority import make_tls_cert
from tests.fakes.graph_server import FakeGraph

SOURCE = "signins_interactive"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


JWT = ".".join([_b64({"typ": "JWT", "alg": "RS256", "kid": "k1"}),
                _b64({"aud": "https://graph.microsoft.com", "tid": "t", "appid": "a", "uti": "secretish"}),
                "c2lnbmF0dXJlLWJ5dGVzLW9mLXRoZS10b2tlbg"])
OPAQUE = "opaque~Tok3n_value-0123456789"  # no known shape: only the client's own memory of it can scrub it
LONG_JWT = ".".join([_b64({"typ": "JWT", "alg": "RS256"}), _b64({"roles": ["AuditLog.Read.All"] * 30}),
                     "c2lnbmF0dXJl" * 20])  # longer than the part of an error message that is kept


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tls_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def catcher() -> Iterator[FakeGraph]:
    """Where hostile links point: any request reaching it is a leak."""
    with FakeGraph(RECORDS) as server:
        yield server


@pytest.mark.parametrize("url,ok", [
    ("https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=x", True),
    ("https://GRAPH.microsoft.com:443/beta/x", True),
    ("http://graph.microsoft.com/v1.0/x", False),
    ("https://graph.microsoft.com.evil.example/v1.0/x", False),
    ("https://graph.microsoft.com@evil.example/v1.0/x", False),
    ("https://evil.example\\@graph.microsoft.com/v1.0/x", False),
    ("https://graph.microsoft.com:8443/v1.0/x", False),
    ("//evil.example/v1.0/x", False),
    ("ftp://graph.microsoft.com/x", False),
])
def test_link_guard(url: str, ok: bool) -> None:
    assert (link_problem(url, "https://graph.microsoft.com") is None) is ok


def test_link_guard_allows_plain_http_only_on_a_plain_http_loopback_root() -> None:
    assert link_problem("http://127.0.0.1:9/v1.0/x", "http://127.0.0.1:9") is None
    assert link_problem("http://127.0.0.1:9/v1.0/x", "https://127.0.0.1:9") is not None
    assert link_problem("http://localhost:9/v1.0/x", "http://127.0.0.1:9") is not None  # another host


def _collect(case_dir: Path, graph: FakeGraph, tls: tuple[Path, Path], token: str = JWT) -> dict[str, object]:
    case = Case.open(case_dir, writable=True)
    return collect_case(case, client_id="app", mode="client_secret", since=SINCE, until=UNTIL, sources=SOURCE,
                        graph_url=graph.url, client=fast_client(token, verify=str(tls[0])),
                        options=fast_options(page_size=5))


@pytest.mark.parametrize("hostile", ["https://localhost:{port}", "http://127.0.0.1:{port}"],
                         ids=["foreign-host", "plain-http"])
def test_hostile_next_link_stops_the_source_and_the_token_is_not_sent(
        hostile: str, case_dir: Path, tls: tuple[Path, Path], catcher: FakeGraph) -> None:
    with FakeGraph(RECORDS, tls=tls, next_link_root=hostile.format(port=catcher.port)) as graph:
        summary = _collect(case_dir, graph, tls)
        assert graph.served("auditLogs/signIns", status=200) >= 1  # the real root was asked
    assert catcher.log == [] and catcher.tokens_seen == set()  # nothing, and no token, went there
    assert not summary["complete"]
    ledger = Case.open(case_dir).manifest["collection"]["ledger"]
    assert ledger and all(not row["complete"] for row in ledger)
    why = "another host (localhost" if "localhost" in hostile else "plain http URL"
    assert any("@odata.nextLink" in row["gap"] and "leaves the Graph root" in row["gap"] and why in row["gap"]
               and "token was not sent" in row["gap"] for row in ledger), ledger
    assert all("leaves the Graph root" in row["gap"] for row in ledger)  # the whole source stopped


def _leaks(folder: Path, secret: str) -> list[str]:
    return [p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.mark.parametrize("token", [JWT, OPAQUE, LONG_JWT], ids=["jwt", "opaque", "long-jwt"])
def test_error_body_echoing_the_token_reaches_no_file_and_no_output(
        token: str, case_dir: Path, tls: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    with FakeGraph(RECORDS, tls=tls) as graph:
        graph.inject("echo_token", path="auditLogs/signIns", nth=2)
        summary = _collect(case_dir, graph, tls, token)
        assert graph.tokens_seen == {token}
    gaps = [g["gap"] for g in summary["gaps"]]  # type: ignore[index, union-attr]
    assert any("Access token validation failure: [redacted]" in g and "Authorization: Bearer [redacted]" in g
               for g in gaps), gaps
    outputs = [caplog.text]
    for args in (["report", case_dir], ["report", case_dir, "--redact", "--out", case_dir / "reports" / "r.html"],
                 ["verify", case_dir, "--json"], ["case", "show", case_dir, "--json"]):
        assert main([str(a) for a in args]) == 0
        out = capsys.readouterr()
        outputs += [out.out, out.err]
    assert json.loads(outputs[-2])["evidence_files"] == 2  # the two other slices were collected
    assert (case_dir / "reports" / "r.html").exists() and (case_dir / ".collect" / ".checkpoint.json").exists()
    assert "[redacted]" in (case_dir / "case.json").read_text()
    assert _leaks(case_dir, token[:40]) == []  # not even the start of a token cut short
    assert not any(token[:40] in str(o) for o in outputs)


def test_a_client_bound_to_a_root_sends_nothing_elsewhere(catcher: FakeGraph) -> None:
    client = fast_client(JWT, allowed_root="https://graph.microsoft.com")
    try:
        with pytest.raises(UnsafeLink, match="another host"):
            client.get(f"https://127.0.0.1:{catcher.port}/v1.0/applications")
        with pytest.raises(UnsafeLink, match="plain http"):
            client.get(f"http://127.0.0.1:{catcher.port}/v1.0/applications")
    finally:
        client.close()
    assert catcher.log == []
