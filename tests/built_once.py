"""Test inputs built once per run and shared by every pytest-xdist worker.

The workers of one run share the parent of their temporary folders (new for each run): the first worker
to need an input builds it there under an exclusive file lock and marks it done once complete; the
others wait for the lock and read what it built. A build that failed half-way leaves no mark and is
built again from scratch by the next caller.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

DONE = ".built"


def shared_root(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder every xdist worker of this run sees (the session's own temporary folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / name


def build_once(folder: Path, build: Callable[[Path], None]) -> Path:
    """``folder``, built by ``build(folder)`` unless a caller of this run (any worker) built it already."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f"{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / DONE).exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a build that failed half-way left
            folder.mkdir()
            build(folder)
            (folder / DONE).write_text("", encoding="utf-8")
    return folder
