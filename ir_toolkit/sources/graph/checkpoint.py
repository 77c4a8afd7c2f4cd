"""The collector's checkpoint and raw page files: atomic writes so a kill -9 never leaves half a state.

Layout of a collection work folder::

    WORK/.checkpoint.json                  every slice's state (atomic replace after each page)
    WORK/parts/<slice>/page-00001.jsonl.gz pages of an unfinished slice
    WORK/<source>/<slice>.jsonl.gz         a finished slice: its pages concatenated (gzip JSON lines)
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ir_toolkit.textsafe import scrub_text

CHECKPOINT = ".checkpoint.json"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file, fsync and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def gzip_lines(records: Iterable[dict[str, Any]]) -> bytes:
    """Records as gzip JSON lines, byte-identical for identical records (mtime 0, no file name)."""
    body = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
    return gzip.compress(body.encode("utf-8"), mtime=0)


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a gzip JSON lines file."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


class Checkpoint:
    """Thread-safe store of slice states in ``WORK/.checkpoint.json``."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.path = work / CHECKPOINT
        self.lock = threading.RLock()  # held while a state is read or changed as a whole
        self.data: dict[str, Any] = json.loads(self.path.read_text("utf-8")) if self.path.exists() else {}
        self.data.setdefault("slices", {})

    @property
    def slices(self) -> dict[str, dict[str, Any]]:
        """Slice key -> state."""
        return self.data["slices"]  # type: ignore[no-any-return]

    def save(self) -> None:
        """Persist atomically (token-shaped text scrubbed: an error a server echoed never lands here)."""
        with self.lock:
            write_atomic(self.path, scrub_text(json.dumps(self.data, indent=1, default=str)).encode("utf-8"))

    def update(self, key: str, **fields: Any) -> dict[str, Any]:
        """Change one slice's state and persist."""
        with self.lock:
            self.slices[key].update(fields)
            self.save()
            return self.slices[key]

    def parts_dir(self, stem: str) -> Path:
        """Where an unfinished slice keeps its pages."""
        return self.work / "parts" / stem

    def part_path(self, stem: str, page: int) -> Path:
        """The file of page number ``page`` (1-based) of a slice."""
        return self.parts_dir(stem) / f"page-{page:05d}.jsonl.gz"

    def prune_parts(self, stem: str, pages: int) -> None:
        """Delete part files beyond the checkpointed page count (written just before a crash)."""
        folder = self.parts_dir(stem)
        if folder.exists():
            for f in folder.iterdir():
                if not f.name.startswith("page-") or int(f.name[5:10]) > pages:
                    f.unlink()

    def drop_parts(self, stem: str) -> None:
        """Remove an unfinished slice's pages (after it was finalised or split)."""
        shutil.rmtree(self.parts_dir(stem), ignore_errors=True)
