"""case.json (the manifest) and custody.log (the append-only action log).

case.json records the case id, tenant, cloud, creation time and every evidence
file with its sha256, size, source, format, record counts and query parameters.
custody.log holds one JSON object per line: who did what to the case, when.
Neither ever holds a secret: callers pass parameters through :func:`scrub` first.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from ir_toolkit import __version__
from ir_toolkit.errors import CaseError
from ir_toolkit.sources.graph.endpoints import CLOUD_ENDPOINTS
from ir_toolkit.timeutil import iso, now_utc

MANIFEST = "case.json"
CUSTODY = "custody.log"
CLOUDS: tuple[str, ...] = tuple(CLOUD_ENDPOINTS)  # the one endpoint map decides which clouds exist
_SECRET_WORDS = ("secret", "password", "token", "assertion", "credential", "key", "pfx")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read into one reused buffer (memory stays flat whatever the file's size)."""
    h = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def scrub(params: dict[str, Any]) -> dict[str, Any]:
    """Drop values whose names suggest a secret (client secrets, tokens, keys)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        lowered = k.lower()
        if any(w in lowered for w in _SECRET_WORDS) and not lowered.endswith(("_env", "_id", "_path")):
            out[k] = "<redacted>"
        elif isinstance(v, dict):
            out[k] = scrub(v)
        else:
            out[k] = v
    return out


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


def write_manifest(root: Path, data: dict[str, Any]) -> None:
    """Write case.json atomically (temp file, then rename)."""
    path = root / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise CaseError(f"{path}: cannot write case manifest ({exc.strerror or exc})") from None


def append_custody(root: Path, action: str, **details: Any) -> dict[str, Any]:
    """Append one line to custody.log and return it."""
    entry = {
        "time": iso(now_utc()),
        "actor": actor(),
        "tool": f"ir_toolkit {__version__}",
        "action": action,
        "details": scrub(details),
    }
    try:
        with open(root / CUSTODY, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")
    except OSError as exc:
        raise CaseError(f"{root / CUSTODY}: cannot append to custody log ({exc.strerror or exc})") from None
    return entry


def read_custody(root: Path) -> list[dict[str, Any]]:
    """All custody entries, oldest first."""
    path = root / CUSTODY
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
