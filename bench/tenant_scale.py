"""A tenant of N events in Microsoft's export formats: the sample tenant replicated, one intrusion kept.

Used by :mod:`bench.e2e_bench`. Copy 0 is the sample tenant (data/sample-tenant, 30 users, its
forged-token actor included) as it is; copies 1, 2, ... are the same records with every user
(``name.cK@domain``), every object, record, session and request id (GUIDs: the first 8 hex digits
xored with a per-copy mask; the tenant's and the applications' ids kept), every token id
(``...-cK``) and every IPv4 address (third octet + K) varied, and the actor's own records (those
naming its addresses or tokens) left out, so the big tenant holds one intrusion among many
ordinary users. Times stay the sample tenant's (its month and a half): every copy's users work in
the same period, as one tenant's do.

Written as a responder receives them: Entra sign-ins (interactive, non-interactive, service
principal) and directory audits as JSON arrays (the portal's "Download JSON"), the unified audit
log as Purview audit search CSV exports, each file at most ``PART`` records (a month exported in
several downloads). Records are tokenised once (literal text between the values to vary), then
each copy is a join of the literal pieces and the mapped values, so writing is I/O bound.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
TENANT = ROOT / "data" / "sample-tenant"
PART = 500_000
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
IPV4 = r"(?<![\d.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d.])"
TOKEN = r'(?:uniqueTokenIdentifier|UniqueTokenId)"{1,2}: ?"{1,2}[^"]+'  # key and value: a copy appends to it
KEEP_KEYS = re.compile(r"app|tenant|organization|resource|serviceprincipal", re.IGNORECASE)
SIGNIN_KINDS = ("signins_interactive", "signins_noninteractive", "signins_serviceprincipal", "directory_audits")
CSV_HEADER = ["RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData", "AssociatedAdminUnits",
              "AssociatedAdminUnitsNames"]


BLOCK = 500  # records per rendered block


class Block:
    """Records of one kind as one format string: the literal text between the values each copy varies."""

    __slots__ = ("fmt", "slots", "text", "records")

    def __init__(self, texts: list[str], pattern: re.Pattern[str]) -> None:
        self.text = "".join(texts)
        self.records = len(texts)
        self.slots: list[tuple[str, str]] = []
        pieces: list[str] = []
        pos = 0
        for m in pattern.finditer(self.text):
            pieces.append(self.text[pos:m.start()].replace("{", "{{").replace("}", "}}"))
            pieces.append("{}")
            self.slots.append((m.lastgroup or "", m.group()))
            pos = m.end()
        pieces.append(self.text[pos:].replace("{", "{{").replace("}", "}}"))
        self.fmt = "".join(pieces)

    def render(self, mapping: dict[tuple[str, str], str]) -> str:
        """The block's text with copy ``mapping`` applied (no mapping: the records as they are)."""
        if not mapping:
            return self.text
        return self.fmt.format(*[mapping.get(s, s[1]) for s in self.slots])


def _keep_guids(value: Any, keep: set[str], key: str = "") -> None:
    """GUIDs under application, tenant and resource keys: they name the same things in every copy."""
    if isinstance(value, dict):
        for k, v in value.items():
            _keep_guids(v, keep, str(k))
    elif isinstance(value, list):
        for v in value:
            _keep_guids(v, keep, key)
    elif isinstance(value, str) and KEEP_KEYS.search(key) and re.fullmatch(GUID, value):
        keep.add(value.lower())


class Tenant:
    """The sample tenant's records, tokenised for replication."""

    def __init__(self, source: Path = TENANT) -> None:
        key = json.loads((source / "answer_key.json").read_text(encoding="utf-8"))
        self.domain = str(key["tenant"]["domain"])
        actor = tuple([str(a["ip"]) for a in key.get("actor_ips", [])]
                      + [str(t) for t in key.get("actor_token_ids", [])])
        pattern = re.compile(f"(?P<guid>{GUID})|(?P<upn>[A-Za-z0-9._%+-]+(?=@{re.escape(self.domain)}))|"
                             f"(?P<ip>{IPV4})|(?P<token>{TOKEN})")
        keep: set[str] = {str(key["tenant"]["tenant_id"]).lower()}
        raw: dict[str, list[Any]] = {}
        for kind in SIGNIN_KINDS:
            raw[kind] = [r for f in sorted((source / "entra" / kind).glob("page-*.json*"))
                         for r in json.loads(_read(f))["value"]]
        with gzip.open(source / "purview" / "audit_search_export.csv.gz", "rt", encoding="utf-8-sig",
                       newline="") as fh:
            raw["audit"] = [row for row in csv.reader(fh)][1:]
        for rows in raw.values():
            for r in rows:
                _keep_guids(json.loads(r[5]) if isinstance(r, list) else r, keep)
        self.keep = keep
        self.blocks: dict[str, tuple[list[Block], list[Block]]] = {}  # kind: (every record, the actor's left out)
        for kind, rows in raw.items():
            texts = [_csv_line(r) if kind == "audit" else "," + json.dumps(r) for r in rows]
            ordinary = [t for t in texts if not any(a in t for a in actor)]
            self.blocks[kind] = tuple([Block(ts[i:i + BLOCK], pattern) for i in range(0, len(ts), BLOCK)]
                                      for ts in (texts, ordinary))  # type: ignore[assignment]
        self.per_copy = sum(len(rows) for rows in raw.values())
        self.per_copy_ordinary = sum(b.records for full, part in self.blocks.values() for b in part)
        self.unique = {s for full, _ in self.blocks.values() for b in full for s in b.slots}

    def mapping(self, copy: int) -> dict[tuple[str, str], str]:
        """How copy ``copy`` renames every varied value (copy 0: nothing)."""
        if copy == 0:
            return {}
        mask = (copy * 2654435761) & 0xFFFFFFFF
        out: dict[tuple[str, str], str] = {}
        for slot in self.unique:
            kind, value = slot
            if kind == "guid":
                if value.lower() in self.keep:
                    continue
                head = f"{int(value[:8], 16) ^ mask:08x}"
                out[slot] = (head.upper() if value[:8].isupper() else head) + value[8:]
            elif kind == "upn":
                out[slot] = f"{value}.c{copy}"
            elif kind == "ip":
                a, b, c, d = value.split(".")
                out[slot] = f"{a}.{b}.{(int(c) + copy) % 256}.{d}"
            elif kind == "token":
                out[slot] = f"{value}-c{copy}"
        return out



def _csv_line(row: list[str]) -> str:
    """One Purview CSV row as the export writes it (a field quoted where it must be, quotes doubled)."""
    out = io.StringIO()
    csv.writer(out).writerow(row)
    return out.getvalue()


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


class _Parts:
    """Files of one kind, each about PART records: ``kind-001.json`` (a JSON array) or ``audit-001.csv``."""

    def __init__(self, folder: Path, kind: str) -> None:
        self.folder, self.kind, self.part, self.rows = folder, kind, 0, 0
        self.fh: TextIO | None = None
        self.paths: list[Path] = []

    def write(self, text: str, records: int) -> None:
        if self.fh is None or self.rows >= PART:
            self.close()
            self.part += 1
            audit = self.kind == "audit"
            path = self.folder / f"{self.kind}-{self.part:03d}.{'csv' if audit else 'json'}"
            self.paths.append(path)
            self.fh = open(path, "w", encoding="utf-8-sig" if audit else "utf-8", newline="")
            self.rows = 0
            self.fh.write(_csv_line(CSV_HEADER) if audit else "[")
            if not audit:
                text = text[1:]  # the first record of an array has no comma before it
        self.fh.write(text)
        self.rows += records

    def close(self) -> None:
        if self.fh is not None:
            if self.kind != "audit":
                self.fh.write("]")
            self.fh.close()
            self.fh = None


def write_tenant(folder: Path, events: int, progress: bool = True) -> tuple[list[Path], dict[str, Any]]:
    """Write about ``events`` records (to the next block of BLOCK records) under ``folder``.

    Returns:
        (files written, description: records, copies, users, files, bytes).
    """
    from tqdm.auto import tqdm

    tenant = Tenant()
    folder.mkdir(parents=True, exist_ok=True)
    parts = {kind: _Parts(folder, kind) for kind in tenant.blocks}
    written = copies = 0
    with tqdm(total=events, unit="rec", unit_scale=True, desc="writing the tenant", disable=not progress) as bar:
        while written < events:
            mapping = tenant.mapping(copies)
            for kind, (full, ordinary) in tenant.blocks.items():
                for block in full if copies == 0 else ordinary:
                    if written >= events:
                        break
                    parts[kind].write(block.render(mapping), block.records)
                    written += block.records
                    bar.update(block.records)
            copies += 1
    for p in parts.values():
        p.close()
    files = sorted(path for p in parts.values() for path in p.paths)
    users = len({s[1] for s in tenant.unique if s[0] == "upn"})
    return files, {"records": written, "copies": copies, "users": users * copies, "files": len(files),
                   "bytes": sum(f.stat().st_size for f in files)}
