"""Shared fixtures: run the CLI as a real subprocess, make cases, find shared fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
