"""Prepare an engine for a detection pack: parameters, coverage, evidence profile and the pack's helper views.

``prepare(case)`` opens an engine (DuckDB by default) on the case's events and defines what the pack's
detections read: the tables ``indicators``, ``ioc_ip_hits``, ``infrastructure_ips``, ``first_party_callers``,
``scripted_patterns`` and ``param_NAME``, then every view of the pack (materialised where it says so).
In one process the last preparation is kept while its inputs are unchanged; across processes a DuckDB
preparation kept in CASE/cache/ by :func:`keep_prepared` is read back for the same inputs
(:mod:`ir_toolkit.analysis.reuse`), so ``scope`` after ``detect`` does not prepare again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ir_toolkit.analysis.adfs import adfs_coverage, adfs_covered_sql
from ir_toolkit.analysis.coverage import covered_sql, signin_coverage
from ir_toolkit.analysis.detections import Pack, load_pack, raw_sql, render
from ir_toolkit.analysis.engine import DuckDBEngine, Engine, sql_literal
from ir_toolkit.analysis.engines import DEFAULT_ENGINE, open_engine
from ir_toolkit.analysis.evidence import evidence_profile
from ir_toolkit.analysis.graphreads import first_party_callers
from ir_toolkit.analysis.indicators import COLUMNS as IOC_COLUMNS
from ir_toolkit.analysis.indicators import indicators, match_addresses
from ir_toolkit.analysis.infrastructure import infrastructure_addresses
from ir_toolkit.analysis.reuse import inputs_key, load_prepared, prepared_key, save_prepared
from ir_toolkit.case import Case
from ir_toolkit.timeutil import parse_time

log = logging.getLogger(__name__)

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
    complete: bool = True  # False: read back from CASE/cache/, where some tables keep only what scope reads


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
            engine: Engine | str | None = None, engine_options: dict[str, Any] | None = None,
            complete: bool = True) -> Prepared:
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
        complete: Every view whole, as detections read them. False (scope): a preparation kept in CASE/cache/
            will do, though some of its tables hold only the columns scope reads (a pack view's ``keep``).
    """
    if engine is not None and not isinstance(engine, str):
        return _prepare(case, pack, params, engine, getattr(engine, "name", "custom"))
    name = (engine or DEFAULT_ENGINE).lower()
    key = _signature(case, pack, params, name, engine_options)
    if key in _LAST and (_LAST[key].complete or not complete):
        return _LAST[key]
    inputs = reuse_key(case, pack, params, name, engine_options)
    partial = any(isinstance(v.get("keep"), list) for v in load_pack(pack).views)
    prep = _kept(case, pack, params, inputs, engine_options) if inputs and not (complete and partial) else None
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
    kept, sources = set(state["tables"]), frozenset(state["sources"])
    for view in the_pack.views:  # the plain views again (cheap: nothing runs until a query reads them), and
        if str(view["name"]) not in kept:  # the tables detect materialised but did not keep, as views
            eng.create_view(str(view["name"]), view_sql(view, state["sql_values"], sources))
    log.info("reusing the views detect prepared (CASE/cache/)")
    return Prepared(case, eng, the_pack, state["values"], state["sql_values"], state["coverage"],
                    state["baseline_end"], state["evidence"], frozenset(state["sources"]), DEFAULT_ENGINE,
                    tuple(state["tables"]), key, not any(isinstance(v.get("keep"), list) for v in the_pack.views))


def view_sql(view: dict[str, Any], sql_values: dict[str, Any], sources: frozenset[str]) -> str:
    """A pack view's SQL, rendered; empty (its columns, no rows, nothing run) when the case holds none of its sources.

    A view names ``sources`` when every row of it comes from events of those sources (the Graph views from
    ``graph_activity``): without them its joins would run over the rest of the case to find nothing.
    """
    sql = render(str(view["sql"]), sql_values)
    wanted = view.get("sources")
    if wanted and not set(map(str, wanted)) & sources:
        return f"SELECT * FROM ({sql}) unheld LIMIT 0"
    return sql


def keep_prepared(prep: Prepared) -> None:
    """Keep a DuckDB preparation in CASE/cache/ for the next process (nothing when it is kept already).

    A pack view says what of it is kept (``keep``): by default the whole table when it is materialised; ``false``:
    nothing (detections read it, scope does not: the next process defines it as a view again); a list of columns:
    only those (what scope reads of a wide table).
    """
    if not prep.key or not isinstance(prep.engine, DuckDBEngine):
        return
    if prepared_key(prep.case) == prep.key:
        return
    state = {"values": prep.values, "sql_values": prep.sql_values, "coverage": prep.coverage,
             "baseline_end": prep.baseline_end, "evidence": prep.evidence, "sources": sorted(prep.sources),
             "tables": list(prep.tables)}
    columns = {str(v["name"]): [str(c) for c in v["keep"]] for v in prep.pack.views if isinstance(v.get("keep"), list)}
    save_prepared(prep.case, prep.engine, list(prep.tables), state, prep.key, columns)


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
    user_history = 1 if len(held) < 2 else 0  # addresses judged from the mailboxes' history too
    sql_values = {**values,
                  "delegated_covered": raw_sql(covered_sql(unc["delegated"], "a.issue_lo", "a.issue_hi")),
                  "app_covered": raw_sql(covered_sql(unc["app_only"], "a.issue_lo", "a.issue_hi")),
                  "app_unknown_covered": raw_sql(covered_sql(unc["app_only_unknown"], "a.issue_lo", "a.issue_hi")),
                  "user_history": user_history,
                  # per record: also outside the user sign-ins' coverage (before, after, in a hole: session 10)
                  **{f"user_history_{a}": raw_sql(f"({user_history} = 1 OR NOT "
                                                  f"({covered_sql(unc['delegated'], f'{a}.time', f'{a}.time')}))")
                     for a in ("t", "x")},
                  "app_history": 0 if profile["sources"].get("signin_serviceprincipal", {}).get("held") else 1,
                  "address_basis": ("its sign-ins" if len(held) == 2 else
                                    "its sign-ins and the mailbox's access history: only part of the user sign-ins "
                                    "are held" if held else "the mailbox's access history: no user sign-ins are held"),
                  "adfs_covered": raw_sql(adfs_covered_sql(
                      adfs_coverage(eng, profile, int(values.get("adfs_match_minutes") or 10)), "f.time")),
                  "baseline_end": raw_sql(_time_sql(baseline_end) if baseline_end is not None
                                          else "CAST('9999-12-31 00:00:00' AS TIMESTAMP)")}
    sources = frozenset(str(s) for s in eng.run_sql("SELECT DISTINCT source FROM events")["source"].dropna())
    for view in the_pack.views:
        sql = view_sql(view, sql_values, sources)
        (eng.create_table if view.get("materialize") else eng.create_view)(str(view["name"]), sql)
        if view.get("materialize") and view.get("keep", True):
            tables.append(str(view["name"]))
    return Prepared(case, eng, the_pack, values, sql_values, coverage, baseline_end, profile, sources, engine_name,
                    tuple(tables))
