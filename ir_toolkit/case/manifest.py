"""case.json (the manifest) and the sha256 of files.

case.json records the case id, tenant, cloud, creation time and every evidence
file with its sha256, size, source, format, record counts and query parameters.
It never holds a secret: its text passes through :func:`ir_toolkit.textsafe.scrub_text`
when written. The custody log is :mod:`ir_toolkit.case.custody`.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from ir_toolkit.errors import CaseError
from ir_toolkit.sources.graph.endpoints import CLOUD_ENDPOINTS
from ir_toolkit.textsafe import scrub_text

MANIFEST = "case.json"
CLOUDS: tuple[str, ...] = tuple(CLOUD_ENDPOINTS)  # the one endpoint map decides which clouds exist


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read into one reused buffer (memory stays flat whatever the file's size)."""
    h = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def actor() -> str:
    """Who is acting: user@host."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = os.environ.get("USER", "unknown")
    return f"{user}@{socket.gethostname()}"


def read_manifest(root: Path) -> dict[str, Any]:
    """Load and sanity-check case.json.

    Raises:
        CaseError: when the folder is not a case or the manifest is corrupt.
    """
    path = root / MANIFEST
    if not root.exists():
        raise CaseError(f"{root}: no such case folder (create it with 'ir-toolkit case init')")
    if not root.is_dir():
        raise CaseError(f"{root}: is a file, not a case folder")
    if not path.exists():
        raise CaseError(f"{root}: not a case folder (no {MANIFEST}; create one with 'ir-toolkit case init')")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CaseError(f"{path}: corrupt case manifest ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(data, dict) or not {"case", "tenant", "evidence"} <= data.keys():
        raise CaseError(f"{path}: corrupt case manifest (missing case, tenant or evidence)")
    if not isinstance(data["evidence"], list):
        raise CaseError(f"{path}: corrupt case manifest (evidence is not a list)")
    return data


def write_manifest(root: Path, data: dict[str, Any], path: Path | None = None) -> None:
    """Write case.json atomically (temp file, then rename), or to ``path`` (a recorded write's file)."""
    target = path or root / MANIFEST
    tmp = path or target.with_suffix(".json.tmp")
    try:
        tmp.write_text(scrub_text(json.dumps(data, indent=2, sort_keys=False, default=str)) + "\n", encoding="utf-8")
        if tmp != target:
            os.replace(tmp, target)
    except OSError as exc:
        raise CaseError(f"{target}: cannot write case manifest ({exc.strerror or exc})") from None
