"""Run a detection pack over a case: findings as pandas, CASE/findings.parquet and findings.json.

``detect(case)`` prepares an engine (coverage, baseline, indicators, the pack's helper
views: :mod:`ir_toolkit.analysis.prepare`), runs every detection whose required sources the case holds, and turns each
result row into a finding (schema.FINDING_COLUMNS) with a one-sentence explanation and
the record ids of its evidence.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from ir_toolkit.analysis.coverage import coverage_json
from ir_toolkit.analysis.detections import Detection, render
from ir_toolkit.analysis.prepare import Prepared, forget_prepared, keep_prepared, prepare, reuse_key
from ir_toolkit.analysis.reuse import current_document
from ir_toolkit.analysis.rhythm import POSTPROCESSORS
from ir_toolkit.case import Case
from ir_toolkit.case.lock import writes_case
from ir_toolkit.schema import FINDING_COLUMN_NAMES, FINDING_COLUMNS, conform, empty_frame, to_arrow
from ir_toolkit.timeutil import iso, now_utc

log = logging.getLogger(__name__)

FINDINGS_PARQUET = "findings.parquet"
FINDINGS_JSON = "findings.json"
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "informational": 4}
VERDICT_RANK = {"confirmed": 0, "likely": 1, "possible": 2, "unverifiable": 3, "benign": 4}
ENTITY_COLUMNS = ("mailbox", "user", "ip", "app_id", "token_id", "session_id")
__all__ = ["Prepared", "prepare", "forget_prepared", "keep_prepared", "reuse_key", "detect", "run_pack",
           "read_findings", "current_findings", "findings_document", "findings_from_rows", "finding_counts"]


def _missing(v: Any) -> bool:
    if v is None:
        return True
    if type(v) in _NEVER_MISSING:  # the common cells, without pandas' checks (190,000 calls at 1 million events)
        return False
    return pd.api.types.is_scalar(v) and bool(pd.isna(v))


_NEVER_MISSING = frozenset({str, int, bool})


class _Row(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def _explain(template: str, row: dict[str, Any]) -> str:
    shown = _Row({k: ("-" if _missing(v) else
                      iso(v) if isinstance(v, pd.Timestamp) else v) for k, v in row.items()})
    try:
        return template.format_map(shown)
    except (ValueError, TypeError):
        return template.format_map(_Row({k: str(v) for k, v in shown.items()}))


def findings_from_rows(det: Detection, rows: pd.DataFrame, max_evidence: int = 1000) -> pd.DataFrame:
    """Turn a detection's result rows into findings (FINDING_COLUMNS)."""
    out = []
    for rec in rows.to_dict("records"):
        row = {str(k): v for k, v in rec.items()}
        found = row.get("evidence")
        evidence = [str(r) for r in (list(found) if found is not None else []) if r is not None]
        entities = {c: (None if _missing(row.get(c)) else str(row[c])) for c in ENTITY_COLUMNS}
        key = json.dumps([det.id, row.get("verdict"), entities, iso(row.get("first")),
                          str(row.get("indicator", "")), str(row.get("user_agent", "")),
                          str(row.get("operation", "")), str(row.get("target", ""))])
        out.append({
            "finding_id": f"{det.id}:{hashlib.sha1(key.encode()).hexdigest()[:16]}",
            "detection": det.id, "title": det.title,
            "severity": row.get("severity") or det.severity, "verdict": row.get("verdict") or "possible",
            "first": row.get("first"), "last": row.get("last"), **entities,
            "events": int(row.get("events") or len(evidence)),
            "explanation": _explain(det.explanation, row), "techniques": list(det.techniques),
            "evidence": sorted(set(evidence))[:max_evidence], "member": det.member,
        })
    return conform(pd.DataFrame(out), FINDING_COLUMNS) if out else empty_frame(FINDING_COLUMNS)


def run_pack(prep: Prepared, progress: bool = False) -> pd.DataFrame:
    """Run every detection of the prepared pack whose required sources the case holds."""
    present = prep.sources
    frames = []
    detections: Iterable[Detection] = list(prep.pack.detections.values())
    if progress:  # tqdm.auto imports asyncio: only when a bar is shown (scope imports this module too)
        from tqdm.auto import tqdm

        detections = tqdm(detections, desc="detections")
    for det in detections:
        missing = [s for s in det.sources if s not in present]
        if missing:
            log.info("detection %s skipped: the case has no %s events", det.id, ", ".join(missing))
            continue
        rows = prep.engine.run_sql(render(det.sql, prep.sql_values))
        if det.postprocess:
            rows = POSTPROCESSORS[det.postprocess](rows, prep.values)
        frames.append(findings_from_rows(det, rows, int(prep.values.get("max_evidence") or 1000)))
    findings = pd.concat([f for f in frames if not f.empty] or [empty_frame(FINDING_COLUMNS)], ignore_index=True)
    order = findings.assign(_v=findings["verdict"].map(VERDICT_RANK), _s=findings["severity"].map(SEVERITY_RANK))
    order = order.sort_values(["_v", "_s", "first", "finding_id"], na_position="last")
    return conform(order[list(FINDING_COLUMN_NAMES)], FINDING_COLUMNS)


def findings_document(findings: pd.DataFrame, prep: Prepared) -> dict[str, Any]:
    """The findings.json document: pack, parameters, coverage and the findings with ISO times."""
    records = []
    for row in findings.to_dict("records"):
        records.append({k: (iso(v) if k in ("first", "last") else
                            list(v) if isinstance(v, list | tuple) or hasattr(v, "tolist") else
                            None if _missing(v) else v)
                        for k, v in row.items()})
    return {
        "case": prep.case.manifest.get("case"), "pack": prep.pack.name, "engine": prep.engine_name,
        "generated_at": iso(now_utc()),
        "parameters": {k: v for k, v in prep.values.items()},
        "baseline_end": iso(prep.baseline_end), "signin_coverage": coverage_json(prep.coverage),
        "inputs": prep.key or None,  # what these findings were made from (ir_toolkit.analysis.reuse)
        "counts": finding_counts(findings),
        "findings": records,
    }


def finding_counts(findings: pd.DataFrame) -> dict[str, int]:
    """Findings per ``detection/verdict``."""
    pairs = Counter(f"{d}/{v}" for d, v in zip(findings["detection"], findings["verdict"], strict=True))
    return dict(sorted(pairs.items()))


def read_findings(case: Case) -> pd.DataFrame | None:
    """CASE/findings.parquet as a frame, or None when detect has not run."""
    path = case.root / FINDINGS_PARQUET
    if not path.exists():
        return None
    return conform(pq.read_table(path).to_pandas(), FINDING_COLUMNS)


def current_findings(case: Case, key: str) -> pd.DataFrame | None:
    """CASE/findings.parquet when findings.json says it was made from ``key`` and both are as recorded."""
    if current_document(case, FINDINGS_JSON, key, (FINDINGS_PARQUET,)) is None:
        return None
    return read_findings(case)


@writes_case("detect")
def detect(case: Case | str | Path, pack: str = "token-forgery", params: dict[str, Any] | None = None,
           write: bool = True, progress: bool = False, engine: str | None = None,
           engine_options: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run a detection pack over a case.

    Args:
        case: A Case or a case folder.
        pack: Pack name (``token-forgery``) or a pack YAML path.
        params: Pack parameters overriding the defaults (see the pack's ``parameters``).
        write: Write CASE/findings.parquet and CASE/findings.json and log the action.
        progress: Show a progress bar over the detections.
        engine: ``duckdb`` (default) or ``spark`` (ir_toolkit.analysis.engines.ENGINES).
        engine_options: Options of the engine; spark: ``master`` (URL), ``events`` (Parquet URI of the
            events, e.g. a lake table path, instead of the case's store), ``session`` (a SparkSession).

    Returns:
        Findings with the columns of schema.FINDING_COLUMNS (finding_id, detection, title, severity,
        verdict, first, last, mailbox, user, ip, app_id, token_id, session_id, events, explanation,
        techniques, evidence, member: the family member the detection rules in, or None), strongest first.
    """
    case = case if isinstance(case, Case) else Case.open(case, writable=write)
    current = current_findings(case, reuse_key(case, pack, params, engine, engine_options))
    if current is not None:
        log.info("findings are current (same store, case, pack and parameters): reusing CASE/findings.parquet")
        return current
    prep = prepare(case, pack, params, engine=engine, engine_options=engine_options)
    findings = run_pack(prep, progress=progress)
    if write:
        keep_prepared(prep)
        doc = findings_document(findings, prep)
        with case.recording("detect", pack=prep.pack.name, engine=prep.engine_name, findings=len(findings),
                            counts=doc["counts"]) as w:  # whole files, recorded in the custody chain
            pq.write_table(to_arrow(findings, FINDING_COLUMNS), w.path(case.root / FINDINGS_PARQUET))
            w.path(case.root / FINDINGS_JSON).write_text(json.dumps(doc, indent=2, default=str) + "\n",
                                                         encoding="utf-8")
    return findings
