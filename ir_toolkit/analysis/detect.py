"""Run a detection pack over a case: findings as pandas, CASE/findings.parquet and findings.json.

``detect(case)`` prepares an engine (coverage, baseline, indicators, the pack's helper
views), runs every detection whose required sources the case holds, and turns each
result row into a finding (schema.FINDING_COLUMNS) with a one-sentence explanation and
the record ids of its evidence.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ir_toolkit.analysis.adfs import adfs_coverage, adfs_covered_sql
from ir_toolkit.analysis.coverage import coverage_json, covered_sql, signin_coverage
from ir_toolkit.analysis.detections import Detection, Pack, load_pack, raw_sql, render
from ir_toolkit.analysis.engine import DuckDBEngine, Engine, sql_literal
from ir_toolkit.analysis.engines import DEFAULT_ENGINE, open_engine
from ir_toolkit.analysis.evidence import evidence_profile
from ir_toolkit.analysis.graphreads import first_party_callers
from ir_toolkit.analysis.indicators import COLUMNS as IOC_COLUMNS
from ir_toolkit.analysis.indicators import indicators, match_addresses
from ir_toolkit.analysis.infrastructure import infrastructure_addresses
from ir_toolkit.analysis.reuse import current_document, inputs_key, load_prepared, prepared_key, save_prepared
from ir_toolkit.analysis.rhythm import POSTPROCESSORS
from ir_toolkit.case import Case
from ir_toolkit.case.lock import writes_case
from ir_toolkit.schema import FINDING_COLUMN_NAMES, FINDING_COLUMNS, conform, empty_frame, to_arrow
from ir_toolkit.timeutil import iso, now_utc, parse_time

log = logging.getLogger(__name__)

FINDINGS_PARQUET = "findings.parquet"
FINDINGS_JSON = "findings.json"
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "informational": 4}
VERDICT_RANK = {"confirmed": 0, "likely": 1, "possible": 2, "unverifiable": 3, "benign": 4}
ENTITY_COLUMNS = ("mailbox", "user", "ip", "app_id", "token_id", "session_id")


@dataclass
class Prepared:
    """An engine ready for a pack's detections: parameters, coverage and the SQL values to render."""

    case: Case
    engine: Engine
    pack: Pack
    values: dict[str, Any]
    sql_values: dict[str, Any]
    coverage: dict[str, Any]
    baseline_end: pd.Timestamp | None
    evidence: dict[str, Any]
    sources: frozenset[str] = frozenset()
    engine_name: str = DEFAULT_ENGINE
    tables: tuple[str, ...] = ()  # what preparing materialised or registered (kept in CASE/cache/)
    key: str = ""  # the inputs key (ir_toolkit.analysis.reuse.inputs_key), "" when not reusable


def _time_sql(ts: pd.Timestamp | None) -> str:
    return "CAST(NULL AS TIMESTAMP)" if ts is None else sql_literal(ts)


def _ioc_files(value: Any) -> list[str]:
    if not value:
        return []
    return [v.strip() for v in (value if isinstance(value, list) else str(value).split(",")) if v.strip()]


_LAST: dict[str, Prepared] = {}


def _signature(case: Case, pack: str, params: dict[str, Any] | None, engine: str,
               options: dict[str, Any] | None) -> str:
    """What a prepared engine depends on: case folder, pack, parameters, event files and engine."""
    files = sorted((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in case.events.root.glob("*/*.parquet"))
    params = load_pack(pack).resolve(params)  # findings.json's parameters (defaults included) are the same run
    opts = sorted((k, str(v) if k != "session" else id(v)) for k, v in (options or {}).items() if v is not None)
    return json.dumps([str(case.root.resolve()), pack, sorted((params or {}).items()), files,
                       case.manifest.get("collection"), engine, opts], default=str)


def prepare(case: Case, pack: str = "token-forgery", params: dict[str, Any] | None = None,
            engine: Engine | str | None = None, engine_options: dict[str, Any] | None = None) -> Prepared:
    """Open an engine on ``case`` and define the pack's helper views.

    Registers the tables ``indicators`` (kind, value, description, source), ``ioc_ip_hits``
    (ip, indicator, description, source), ``scripted_patterns`` (pattern), ``first_party_callers``
    (app_id, name, requests) and, for every list parameter of the pack, ``param_NAME`` (value: its items
    as text, e.g. LIKE patterns). The last prepared
    engine is reused while the case's events, the pack, the parameters and the engine are unchanged
    (detect then scope in one process prepares once).

    Args:
        case: The case.
        pack: Pack name or YAML path.
        params: Pack parameters.
        engine: An engine name of ir_toolkit.analysis.engines.ENGINES (``duckdb``, ``spark``; None:
            duckdb), or an opened engine (not cached).
        engine_options: Options of a named engine (spark: master, events, session).
    """
    if engine is not None and not isinstance(engine, str):
        return _prepare(case, pack, params, engine, getattr(engine, "name", "custom"))
    name = (engine or DEFAULT_ENGINE).lower()
    key = _signature(case, pack, params, name, engine_options)
    if key in _LAST:
        return _LAST[key]
    inputs = reuse_key(case, pack, params, name, engine_options)
    prep = _kept(case, pack, params, inputs, engine_options) if inputs else None
    if prep is None:
        prep = _prepare(case, pack, params, open_engine(name, case, engine_options), name)
        prep.key = inputs
    _LAST.clear()
    _LAST[key] = prep
    return prep


def reuse_key(case: Case, pack: str, params: dict[str, Any] | None, engine: str | None,
              engine_options: dict[str, Any] | None = None) -> str:
    """The inputs key of a DuckDB run (:func:`ir_toolkit.analysis.reuse.inputs_key`), "" for another engine."""
    name = (engine or DEFAULT_ENGINE).lower()
    if name != DEFAULT_ENGINE or set(k for k, v in (engine_options or {}).items() if v) - {"memory_limit"}:
        return ""
    return inputs_key(case, pack, load_pack(pack).resolve(params), name)


def _kept(case: Case, pack: str, params: dict[str, Any] | None, key: str,
          engine_options: dict[str, Any] | None) -> Prepared | None:
    """The preparation kept in the case for ``key`` (a detect run in another process), or None."""
    found = load_prepared(case, key, (engine_options or {}).get("memory_limit"))
    if found is None:
        return None
    eng, state = found
    the_pack = load_pack(pack)
    for view in the_pack.views:  # the plain views again (cheap: nothing runs until a query reads them)
        if not view.get("materialize"):
            eng.create_view(str(view["name"]), render(str(view["sql"]), state["sql_values"]))
    log.info("reusing the views detect prepared (CASE/cache/)")
    return Prepared(case, eng, the_pack, state["values"], state["sql_values"], state["coverage"],
                    state["baseline_end"], state["evidence"], frozenset(state["sources"]), DEFAULT_ENGINE,
                    tuple(state["tables"]), key)


def keep_prepared(prep: Prepared) -> None:
    """Keep a DuckDB preparation in CASE/cache/ for the next process (nothing when it is kept already)."""
    if not prep.key or not isinstance(prep.engine, DuckDBEngine):
        return
    if prepared_key(prep.case) == prep.key:
        return
    state = {"values": prep.values, "sql_values": prep.sql_values, "coverage": prep.coverage,
             "baseline_end": prep.baseline_end, "evidence": prep.evidence, "sources": sorted(prep.sources),
             "tables": list(prep.tables)}
    save_prepared(prep.case, prep.engine, list(prep.tables), state, prep.key)


def forget_prepared() -> None:
    """Drop the preparation this process keeps (the next prepare() reads CASE/cache/ or prepares anew)."""
    _LAST.clear()


def _prepare(case: Case, pack: str, params: dict[str, Any] | None, eng: Engine, engine_name: str) -> Prepared:
    the_pack = load_pack(pack)
    values = the_pack.resolve(params)
    profile = evidence_profile(case, eng, int(values.get("token_lifetime_minutes") or 90))
    coverage = signin_coverage(case, profile, values)
    if values.get("baseline_end"):
        baseline_end = parse_time(values["baseline_end"])
    else:
        first = eng.run_sql("SELECT min(time) AS first FROM events WHERE source = 'mail_access'")["first"].iloc[0]
        baseline_end = None if pd.isna(first) else first + pd.Timedelta(days=int(values["baseline_days"]))
    iocs = indicators(_ioc_files(values.get("iocs")), shipped=bool(values.get("shipped_iocs", True)))
    addresses = eng.run_sql("SELECT DISTINCT ip FROM events WHERE ip IS NOT NULL")["ip"]
    eng.register("indicators", iocs.astype({c: "str" for c in IOC_COLUMNS}))
    eng.register("ioc_ip_hits", match_addresses(addresses, iocs).astype("str"))
    eng.register("infrastructure_ips", infrastructure_addresses(addresses).astype("str"))
    eng.register("first_party_callers", first_party_callers())  # Graph callers labelled, not alarmed
    patterns = [str(p).lower() for p in values.get("scripted_agents") or []]
    eng.register("scripted_patterns", pd.DataFrame({"pattern": pd.Series(patterns, dtype="str")}))
    tables = ["indicators", "ioc_ip_hits", "infrastructure_ips", "first_party_callers", "scripted_patterns"]
    for name, value in values.items():  # list parameters as tables too (param_NAME, column value): LIKE patterns
        if isinstance(value, list):
            eng.register(f"param_{name}", pd.DataFrame({"value": pd.Series([str(v) for v in value], dtype="str")}))
            tables.append(f"param_{name}")
    unc = coverage["uncovered"]
    held = [s for s in ("signin_interactive", "signin_noninteractive") if profile["sources"].get(s, {}).get("held")]
    sql_values = {**values,
                  "delegated_covered": raw_sql(covered_sql(unc["delegated"], "a.issue_lo", "a.issue_hi")),
                  "app_covered": raw_sql(covered_sql(unc["app_only"], "a.issue_lo", "a.issue_hi")),
                  "app_unknown_covered": raw_sql(covered_sql(unc["app_only_unknown"], "a.issue_lo", "a.issue_hi")),
                  "user_history": 1 if len(held) < 2 else 0,
                  "app_history": 0 if profile["sources"].get("signin_serviceprincipal", {}).get("held") else 1,
                  "address_basis": ("its sign-ins" if len(held) == 2 else
                                    "its sign-ins and the mailbox's access history: only part of the user sign-ins "
                                    "are held" if held else "the mailbox's access history: no user sign-ins are held"),
                  "adfs_covered": raw_sql(adfs_covered_sql(
                      adfs_coverage(eng, profile, int(values.get("adfs_match_minutes") or 10)), "f.time")),
                  "baseline_end": raw_sql(_time_sql(baseline_end) if baseline_end is not None
                                          else "CAST('9999-12-31 00:00:00' AS TIMESTAMP)")}
    for view in the_pack.views:
        sql = render(str(view["sql"]), sql_values)
        (eng.create_table if view.get("materialize") else eng.create_view)(str(view["name"]), sql)
        if view.get("materialize"):
            tables.append(str(view["name"]))
    sources = frozenset(str(s) for s in eng.run_sql("SELECT DISTINCT source FROM events")["source"].dropna())
    return Prepared(case, eng, the_pack, values, sql_values, coverage, baseline_end, profile, sources, engine_name,
                    tuple(tables))


def _missing(v: Any) -> bool:
    return v is None or (pd.api.types.is_scalar(v) and bool(pd.isna(v)))


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
    for det in tqdm(list(prep.pack.detections.values()), desc="detections", disable=not progress):
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
