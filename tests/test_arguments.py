"""Bad arguments are refused before any network: one line naming the value, exit 2, within a second.

The authority and service URLs point at a local listener that records every connection, so
"no connection attempted" is observed, not assumed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ir_toolkit import cli as cli_module
from ir_toolkit.analysis.detections import load_pack
from ir_toolkit.arguments import guid, iso_time, number_in, window
from ir_toolkit.case import Case
from ir_toolkit.errors import UserError
from ir_toolkit.playbook import load_playbook, parse_assignments
from tests.conftest import ROOT, cli

GOOD = ["--since", "2023-06-01", "--until", "2023-06-04"]


class Listener:
    """A TCP listener on loopback that only counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("args") / "case"
    Case.init(root, tenant="contoso-tenant")
    return root


def _collect(case: Path, listener: Listener, *extra: str, window_args: list[str] | None = None) -> list[str]:
    base = f"https://127.0.0.1:{listener.port}"
    return ["collect", str(case), "--client-id", "11111111-2222-3333-4444-555555555555",
            "--client-secret-env", "ARGS_SECRET", *(GOOD if window_args is None else window_args),
            "--authority-url", f"{base}/contoso-tenant", "--graph-url", base,
            "--log-analytics-url", base, *extra]


BAD_COLLECT = [
    pytest.param([], ["--since", "2023-13-45", "--until", "2023-06-04"],
                 ["'2023-13-45'", "ISO 8601", "--since"], id="impossible-date"),
    pytest.param([], ["--since", "yesterday", "--until", "2023-06-04"], ["'yesterday'", "ISO 8601"], id="words"),
    pytest.param([], ["--since", "2023-06-05", "--until", "2023-06-04"],
                 ["'2023-06-04' is not after --since '2023-06-05'"], id="since-after-until"),
    pytest.param(["--sources", "bogus"], None, ["unknown source 'bogus'"], id="bogus-source"),
    pytest.param(["--page-size", "0"], None, ["--page-size 0: must be between 1 and 1000"], id="page-size"),
    pytest.param(["--slice-hours", "-1"], None, ["--slice-hours -1: must be between"], id="slice-hours"),
    pytest.param(["--from", "log-analytics"], None, ["--from log-analytics needs --workspace"], id="no-workspace"),
    pytest.param(["--from", "log-analytics", "--workspace", "my-workspace"], None,
                 ["--workspace 'my-workspace': not a GUID"], id="workspace-name"),
    pytest.param(["--from", "log-analytics", "--workspace", "1a2b3c4d-0000-4000-8000-00000000abcd",
                  "--sources", "OfficeActivty"], None, ["unknown source 'OfficeActivty'"], id="la-bogus-table"),
    pytest.param(["--from", "defender", "--sources", "SigninLogs"], None, ["unknown source 'SigninLogs'"],
                 id="table-of-another-backend"),
    pytest.param(["--workspace", "1a2b3c4d-0000-4000-8000-00000000abcd"], None,
                 ["--workspace only applies to --from log-analytics"], id="workspace-for-graph"),
]


@pytest.mark.parametrize("extra,win,needles", BAD_COLLECT)
def test_bad_collect_arguments_exit_2_in_one_line_within_a_second_without_connecting(
        case: Path, listener: Listener, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        extra: list[str], win: list[str] | None, needles: list[str]) -> None:
    monkeypatch.setenv("ARGS_SECRET", "s")
    before = listener.accepted
    started = time.perf_counter()
    code = cli_module.main(_collect(case, listener, *extra, window_args=win))  # the CLI in this process
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert elapsed < 1.0, f"refusing took {elapsed:.2f}s"
    time.sleep(0.1)  # a connection attempt would have been accepted by now
    assert listener.accepted == before, "a connection was attempted before the arguments were checked"


@pytest.mark.parametrize("extra,win,needles", [BAD_COLLECT[0], BAD_COLLECT[3], BAD_COLLECT[6]])
def test_the_real_command_exits_2_with_one_line(case: Path, listener: Listener, extra: list[str],
                                                win: list[str] | None, needles: list[str]) -> None:
    before = listener.accepted
    r = cli(*_collect(case, listener, *extra, window_args=win), env={"ARGS_SECRET": "s"}, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needles[0] in r.stderr, r.stderr
    assert listener.accepted == before


# ----- detection and playbook parameters --------------------------------------------------------
@pytest.mark.parametrize("pair,needle", [
    ("baseline_days=-3", "baseline_days=-3: must be between 1 and 3650"),
    ("baseline_days=0", "baseline_days=0: must be between 1 and 3650"),
    ("likely_score=9", "likely_score=9: must be between 1 and 4"),
    ("rare_app_share=1.5", "rare_app_share=1.5: must be between 0.0 and 1.0"),
    ("work_start_hour=25", "work_start_hour=25: must be between 0 and 23"),
    ("baseline_days=seven", "baseline_days: 'seven' is not a int"),
])
def test_detect_parameters_checked_before_the_case_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           pair: str, needle: str) -> None:
    code = cli_module.main(["detect", str(tmp_path / "no-such-case"), "-p", pair])
    err = capsys.readouterr().err
    assert code == 2 and needle in err, err  # the parameter, not the missing case
    assert len(err.strip().splitlines()) == 1


def test_pack_bounds_and_order() -> None:
    pack = load_pack("token-forgery")
    assert pack.resolve({"baseline_days": "14"})["baseline_days"] == 14
    with pytest.raises(UserError, match="coverage_end=2023-06-01 is before coverage_start=2023-06-02"):
        pack.resolve({"coverage_start": "2023-06-02", "coverage_end": "2023-06-01"})


@pytest.mark.parametrize("pair,needle", [
    ("baseline_days=-3", "playbook token-forgery: parameter baseline_days=-3: must be between 0 and 3650"),
    ("tz=Mars/Olympus", "tz='Mars/Olympus': not a time zone"),
    ("window_start=2023-06-10", None),
])
def test_playbook_parameters_bounds(pair: str, needle: str | None) -> None:
    playbook = load_playbook("token-forgery")
    if needle is None:
        assert parse_assignments(playbook, [pair])["window_start"].startswith("2023-06-10")
        with pytest.raises(UserError, match="window_end=.* is before window_start"):
            parse_assignments(playbook, [pair, "window_end=2023-06-01"])
        return
    with pytest.raises(UserError) as err:
        parse_assignments(playbook, [pair])
    assert needle in str(err.value)


def test_run_refuses_a_negative_baseline_in_one_line(tmp_path: Path) -> None:
    r = cli("run", "token-forgery", "--case", tmp_path / "nowhere", "-p", "baseline_days=-3", timeout=60)
    assert r.returncode == 2 and "baseline_days=-3: must be between 0 and 3650" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# ----- the pure checks --------------------------------------------------------------------------
def test_pure_checks() -> None:
    assert str(iso_time("--since", "2023-06-01T02:00:00+02:00")) == "2023-06-01 00:00:00+00:00"
    assert window("2023-06-01", "2023-06-01T00:00:01Z")[1].second == 1
    with pytest.raises(UserError, match="not after"):
        window("2023-06-01", "2023-06-01")
    with pytest.raises(UserError, match=r"'2023-02-30': not a valid date"):
        iso_time("--until", "2023-02-30")
    number_in("--page-size", None, 1, 10)
    assert guid("--workspace", "1A2B3C4D-0000-4000-8000-00000000ABCD") == "1a2b3c4d-0000-4000-8000-00000000abcd"
def test_preflight_bad_arguments_never_connect(listener: Listener) -> None:
    base = f"https://127.0.0.1:{listener.port}"
    before = listener.accepted
    r = cli("preflight", "--tenant", "contoso-tenant", "--client-id", "c", "--client-secret-env", "ARGS_SECRET",
            "--workspace", "not-a-guid", "--authority-url", f"{base}/t", "--graph-url", base,
            env={"ARGS_SECRET": "s"}, timeout=60)
    assert r.returncode == 2 and "--workspace 'not-a-guid': not a GUID" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and listener.accepted == before




def test_sign_in_failures_name_the_fix() -> None:
    from ir_toolkit.sources.graph.auth import sign_in_failure

    text = sign_in_failure("https://login.microsoftonline.com/t", {
        "error": "invalid_client", "error_description": "AADSTS7000218: The request body must contain the following "
        "parameter: 'client_assertion' or 'client_secret'.\r\nTrace ID: 1\r\nCorrelation ID: 2"})
    assert "\n" not in text and "AADSTS7000218" in text and "allow public client flows" in text
    assert "grant admin consent" in sign_in_failure("a", {"error": "invalid_grant", "error_description":
                                                           "AADSTS65001: The user or administrator has not consented"})
    assert "(fix:" not in sign_in_failure("a", {"error": "x", "error_description": "AADSTS9999: other"})


@pytest.mark.parametrize("argv,needle", [
    (["run", "token-forgery", "--case", "nowhere", "-p", "window_start=2023-13-45"], "expected ISO 8601"),
    (["detect", "nowhere", "-p", "coverage_start=someday"], "expected ISO 8601"),
])
def test_parameter_dates_name_the_expected_format(argv: list[str], needle: str) -> None:
    r = cli(*argv, timeout=60)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


HEAVY = ("pandas", "pyarrow", "duckdb", "msal", "httpx", "requests")


@pytest.mark.parametrize("argv", [
    ["collect", "{case}", "--client-id", "c", "--client-secret-env", "X", "--since", "2023-13-45", "--until",
     "2023-06-04"],
    ["collect", "{case}", "--client-id", "c", "--client-secret-env", "X", "--since", "2023-06-01", "--until",
     "2023-06-04", "--from", "log-analytics", "--workspace", "nope"],
    ["preflight", "--tenant", "t", "--client-id", "c", "--client-secret-env", "X", "--since", "2023-02-30"],
    ["detect", "{case}", "-p", "baseline_days=-3"],
    ["run", "token-forgery", "--case", "{case}", "-p", "baseline_days=-3"],
    ["evidence", "{case}", "--token-lifetime-minutes", "-5"],
])
def test_a_refusal_loads_nothing_heavy(case: Path, argv: list[str]) -> None:
    """Refusing a bad value imports neither the data stack nor the HTTP/MSAL stack: it is quick by construction
    (the wall-clock bound is the in-process test above), and nothing could have connected."""
    args = [a.replace("{case}", str(case)) for a in argv]
    code = ("import sys\nfrom ir_toolkit.cli import main\ncode = main(sys.argv[1:])\n"
            f"print(code, sorted(m for m in {HEAVY!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.stdout.strip() == "2 []", (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
