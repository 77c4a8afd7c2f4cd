"""``ir-toolkit demo``: the committed sample tenant, through the token-forgery playbook, to the report.

Used by ``make demo``; prints the report path and the elapsed time (goal: under 3 minutes).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from ir_toolkit.case import Case
from ir_toolkit.errors import UserError
from ir_toolkit.paths import sample_tenant_dir
from ir_toolkit.playbook import run_playbook

log = logging.getLogger(__name__)

DEMO_TENANT = "contoso.onmicrosoft.com"


def run_demo(out: str | Path, progress: bool = False) -> tuple[Path, float]:
    """Build a case from the committed sample tenant, run the token-forgery playbook, render the report.

    A folder that already holds a demo case is replaced; any other non-empty folder is refused.

    Returns:
        ``(report path, elapsed seconds)``.
    """
    started = time.perf_counter()
    root = Path(out)
    if root.exists() and any(root.iterdir()):
        manifest = root / "case.json"
        if not manifest.exists() or not json.loads(manifest.read_text(encoding="utf-8")).get("demo"):
            raise UserError(f"{root}: folder exists and is not a demo case; choose another --out")
        for p in root.rglob("*"):  # raw evidence is read-only: make it removable
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(root)
    sample = sample_tenant_dir()
    files = sorted(p for p in sample.rglob("*") if p.is_file() and p.name not in ("answer_key.json", "README.md"))
    if not files:
        raise UserError(f"{sample}: no sample tenant here (generate one with 'ir-toolkit sample make {sample}')")
    key_file = sample / "answer_key.json"
    key = json.loads(key_file.read_text(encoding="utf-8")) if key_file.exists() else {}
    named = key.get("tenant")
    tenant = str((named.get("domain") or named.get("tenant_id")) if isinstance(named, dict) else named or DEMO_TENANT)
    case = Case.init(root, tenant=tenant)
    case.manifest["demo"] = True
    case.save()
    for f in files:
        if not hasattr(case, "import_files"):  # the importer has not landed: keep the files as evidence only
            case.add_evidence(f, source="import", subdir="sample-tenant")
            continue
        try:
            case.import_files([str(f)], progress=progress)
        except UserError as exc:  # one file the importer cannot read must not stop the demo
            log.warning("demo: skipped %s: %s", f.relative_to(sample), exc)
            case.log_action("demo.skip", path=str(f.relative_to(sample)), reason=str(exc))
    report = run_playbook("token-forgery", case, {"tenant": tenant}, progress=progress)
    return report, time.perf_counter() - started
