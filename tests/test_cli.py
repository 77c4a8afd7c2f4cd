from __future__ import annotations

import pytest

from tests.conftest import cli

CONTRACT_VERBS = ["case", "import", "collect", "detect", "scope", "timeline", "graph", "report", "token",
                  "verify", "run", "sample", "demo", "evidence", "preflight"]


def test_every_contract_verb_is_in_help() -> None:
    r = cli("--help")
    assert r.returncode == 0
    for verb in CONTRACT_VERBS:
        assert verb in r.stdout


def test_python_dash_m_and_version() -> None:
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("ir-toolkit ")


@pytest.mark.parametrize("argv", [["bogus"], ["verify"], ["case", "init", "x"]])
def test_usage_errors_are_one_line_exit_2(argv: list[str]) -> None:
    r = cli(*argv)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
