"""Golden outputs of detect + scope: record them, or check that a change left them identical.

``python -m bench.scope_golden record DIR`` builds the cases below, runs detect then scope (in one
process, and scope again in a fresh process reading CASE/findings.parquet, as the CLI does) and
writes each case's findings and scope.json (minus ``generated_at``) to DIR. ``python -m
bench.scope_golden check DIR`` does the same and exits 1 on the first difference, naming it.

Cases: the committed sample tenant; generated variants (a 24-hour hole in the audit log and the
sign-ins, mail audit only, a shared VPN exit, front-end addresses); and, with ``--bench DIR``, a
synthetic case of bench.detect_bench kept there (``--keep``). Every case is built as a responder
builds it (``Case.init`` + ``Case.import_files`` of the raw logs, not the directory snapshots).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SNAPSHOTS = ("users", "service_principals", "applications", "oauth2_permission_grants")
VARIANTS: dict[str, list[str]] = {
    "hole24": ["--gap", "ual:2023-05-24:24", "--gap", "signins:2023-06-05:24"],
    "mail-only": ["--drop", "signins", "--drop", "directory_audit", "--drop", "ual_other"],
    "vpn": ["--shared-vpn"],
    "frontend": ["--frontend-ips"],
}


def log_files(tenant: Path) -> list[Path]:
    """Every file of a sample tenant but the answer key, the README and the directory snapshots."""
    return sorted(p for p in tenant.rglob("*") if p.is_file() and p.name not in ("answer_key.json", "README.md")
                  and not (p.parent.parent.name == "entra" and p.parent.name in SNAPSHOTS))


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def outputs(case_path: Path) -> dict[str, Any]:
    """Findings (in order, every column) and scope.json without generated_at, as plain JSON."""
    import pyarrow.parquet as pq

    findings = pq.read_table(case_path / "findings.parquet").to_pylist()
    doc = json.loads((case_path / "scope.json").read_text(encoding="utf-8"))
    doc.pop("generated_at", None)
    return {"findings": _plain(findings), "scope": doc}


def _run(case_path: Path) -> dict[str, Any]:
    """detect + scope in this process, then scope alone in a fresh one; both must agree."""
    from ir_toolkit.analysis.detect import detect
    from ir_toolkit.analysis.scope import scope
    from ir_toolkit.case import Case

    case = Case.open(case_path, writable=True)
    detect(case)
    scope(case)
    same = outputs(case_path)
    subprocess.run([sys.executable, "-c", "import sys; from ir_toolkit.analysis.scope import scope; scope(sys.argv[1])",
                    str(case_path)], check=True)
    fresh = outputs(case_path)
    if fresh != same:
        raise SystemExit(f"{case_path}: scope in a fresh process differs from scope after detect")
    return same


def _build(tenant: Path, case_path: Path) -> Path:
    from ir_toolkit.case import Case

    case = Case.init(case_path, tenant="sample")
    case.import_files(log_files(tenant))
    return case_path


def cases(tmp: Path, bench: Path | None) -> dict[str, Path]:
    """Build every case under ``tmp``: name -> case folder."""
    from ir_toolkit.paths import sample_tenant_dir

    out = {"sample-tenant": _build(sample_tenant_dir(), tmp / "sample-tenant")}
    for name, options in VARIANTS.items():
        tenant = tmp / f"tenant-{name}"
        subprocess.run([sys.executable, "-m", "ir_toolkit", "sample", "make", str(tenant), *options],
                       check=True, capture_output=True)
        out[name] = _build(tenant, tmp / name)
    if bench is not None:
        out["bench"] = bench
    return out


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if type(a) is not type(b):
        return f"{where}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{where}.{k}: only on one side"
            if a[k] != b[k]:
                return _first_difference(a[k], b[k], f"{where}.{k}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where}: {str(a)[:200]!r} != {str(b)[:200]!r}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scope_golden")
    parser.add_argument("action", choices=("record", "check"))
    parser.add_argument("golden", type=Path, help="folder of the golden outputs")
    parser.add_argument("--bench", type=Path, help="also a bench.detect_bench case kept in this folder")
    args = parser.parse_args(argv)
    args.golden.mkdir(parents=True, exist_ok=True)
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, case_path in cases(Path(tmp), args.bench).items():
            got = _run(case_path)
            path = args.golden / f"{name}.json"
            if args.action == "record":
                path.write_text(json.dumps(got, indent=1, sort_keys=True, default=str), encoding="utf-8")
                print(f"{name}: recorded {len(got['findings'])} findings")
                continue
            want = json.loads(path.read_text(encoding="utf-8"))
            got = json.loads(json.dumps(got, sort_keys=True, default=str))
            if got == want:
                print(f"{name}: identical ({len(got['findings'])} findings)")
            else:
                print(f"{name}: DIFFERS at {_first_difference(want, got)}")
                status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
