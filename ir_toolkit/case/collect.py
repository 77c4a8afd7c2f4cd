"""Collect a live tenant into a case: sign in, run the collector, register raw files, keep the ledger.

The sources layer (``ir_toolkit.sources.graph``) does the collecting into ``CASE/.collect/`` and
knows nothing of cases. Here each finished slice file is moved into ``CASE/raw/collect/<source>/``
as hashed evidence, the completeness ledger goes to ``case.json`` under
``manifest["collection"]["ledger"]``, every step is in ``custody.log``, and the raw files are
imported through the same importers as files (when the import layer is present).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from ir_toolkit.arguments import number_in, window
from ir_toolkit.case.case import Case
from ir_toolkit.case.lock import writes_case
from ir_toolkit.case.manifest import sha256_file
from ir_toolkit.errors import UserError
from ir_toolkit.sources.backends import MAX_PAGE_SIZE, MAX_SLICE_HOURS, MIN_SLICE_HOURS, check_backend
from ir_toolkit.sources.graph.auth import TokenProvider
from ir_toolkit.sources.graph.checkpoint import read_lines
from ir_toolkit.sources.graph.client import POLICIES, GraphClient
from ir_toolkit.sources.graph.collector import Collector, Options
from ir_toolkit.sources.graph.endpoints import Endpoints, resolve
from ir_toolkit.sources.graph.sources import SOURCES, select
from ir_toolkit.sources.kql.runner import QueryRunner
from ir_toolkit.sources.kql.sources import LOG_ANALYTICS
from ir_toolkit.timeutil import iso, now_utc

log = logging.getLogger(__name__)


WORK_DIR = ".collect"
CERT_PASSPHRASE_ENV = "IR_TOOLKIT_CERT_PASSPHRASE"
SCALE_ENV = "IR_TOOLKIT_COLLECT_TIME_SCALE"  # shrinks every wait: fake servers and benchmarks only


def time_scale() -> float:
    """The factor applied to pacing windows, backoff and polling (1.0 unless IR_TOOLKIT_COLLECT_TIME_SCALE)."""
    try:
        return float(os.environ.get(SCALE_ENV, "1") or 1)
    except ValueError:
        raise UserError(f"{SCALE_ENV} must be a number") from None


def scaled_client(tokens: Any, scale: float, **kw: Any) -> GraphClient:
    """A GraphClient whose documented pacing, backoff and caps are multiplied by ``scale``."""
    policies = {name: (n, period * scale) for name, (n, period) in POLICIES.items()}
    return GraphClient(tokens, policies=policies, backoff_base=1.0 * scale, backoff_cap=60.0 * scale, **kw)


def scaled_options(scale: float, **kw: Any) -> Options:
    """Collector options with polling scaled by ``scale``."""
    opts = Options(**kw)
    return replace(opts, poll_interval=opts.poll_interval * scale, poll_cap=opts.poll_cap * scale)


@writes_case("collect")
def collect_case(case: Case, *, client_id: str, mode: str, since: str, until: str, tenant: str | None = None,
                 sources: str | None = None, cloud: str | None = None, certificate: str | None = None,
                 secret_env: str | None = None, authority_url: str | None = None, graph_url: str | None = None,
                 options: Options | None = None, progress: bool = False, slice_hours: float = 24.0,
                 page_size: int | None = None, audit_operations: str | None = None,
                 audit_record_types: str | None = None,
                 client: GraphClient | None = None, backend: str = "graph", workspace: str | None = None,
                 log_analytics_url: str | None = None) -> dict[str, Any]:
    """Sign in and collect ``sources`` over ``[since, until)`` into ``case``; resumable.

    Args:
        case: An open, writable case.
        client_id: App registration id.
        mode: device_code, certificate or client_secret (see :class:`TokenProvider`).
        since, until: The window (ISO, UTC).
        tenant: Tenant id or domain (default: the case's tenant).
        sources: Comma list of source names (default: all).
        cloud: global, usgov, usgovdod, china (default: the case's cloud).
        certificate: PEM or PFX path (mode certificate).
        secret_env: Name of the env var holding the client secret (mode client_secret).
        authority_url, graph_url: Endpoint overrides (test servers, private endpoints).
        options: Collector tuning (overrides slice_hours and page_size).
        slice_hours: Length of a time slice.
        page_size: ``$top`` for every source (default: each source's own).
        audit_operations: Comma list of audit_log operations, ``all`` for every one (default: the IR set).
        audit_record_types: Comma list of audit_log record types (default: every type).
        progress: tqdm progress bars per source.
        client: A ready client (skips sign-in; notebooks and tests).
        backend: Where the logs are: graph, log-analytics (needs ``workspace``) or defender (advanced hunting).
        workspace: The Log Analytics workspace id (GUID).
        log_analytics_url: Log Analytics root override (test servers, private endpoints).

    Returns:
        The summary: ``{"case", "complete", "sources": {name: totals}, "gaps": [...], "ledger": [...],
        "imported": [...], "import_errors": [...]}`` (imported: one dict per file, see Case.import_files).
    """
    # every argument is checked before the first connection (sign-in included)
    registry, workspace = check_backend(backend, workspace, sources)
    start, _ = window(since, until)
    notes = retention_notes(registry, sources, pd.Timestamp(start))
    number_in("--slice-hours", slice_hours, MIN_SLICE_HOURS, MAX_SLICE_HOURS)
    number_in("--page-size", page_size, 1, MAX_PAGE_SIZE)
    endpoints = resolve(cloud or case.cloud, tenant or case.tenant, authority_url, graph_url, log_analytics_url)
    scale = time_scale()
    if client is None:
        scope = endpoints.log_analytics_scope if backend == "log-analytics" else None
        tokens = TokenProvider(endpoints, client_id, mode, certificate=certificate, secret_env=secret_env,
                               cert_passphrase_env=CERT_PASSPHRASE_ENV, scope=scope)
        client = scaled_client(tokens, scale)
    filters: dict[str, Any] = {}
    if audit_operations:
        filters["audit_operations"] = () if audit_operations.strip() == "all" else _names(audit_operations)
    if audit_record_types:
        filters["audit_record_types"] = _names(audit_record_types)
    opts = options or scaled_options(scale, slice_size=pd.Timedelta(hours=slice_hours), page_size=page_size,
                                     **filters)
    params = {"audit_operations": list(opts.audit_operations), "audit_record_types": list(opts.audit_record_types),
              "tenant": tenant or case.tenant, "client_id": client_id, "auth": mode, "since": since, "until": until,
              "sources": sources or "all", "cloud": endpoints.cloud, "authority": endpoints.authority,
              "graph": endpoints.graph_root, "certificate_path": certificate, "client_secret_env": secret_env,
              "from": backend, "workspace": workspace,
              "log_analytics": endpoints.log_analytics_root if backend == "log-analytics" else None}
    case.log_action("collect.start", **params)

    def register(path: Path, entry: dict[str, Any]) -> None:
        subdir = f"collect/{entry['source']}"
        _drop_orphan(case, path, subdir)
        ev, _ = case.add_evidence(path, source=f"collect:{entry['source']}", subdir=subdir,
                                  query={k: entry[k] for k in ("slice_start", "slice_end", "requested")})
        case.update_evidence(ev["sha256"], collected_records=entry["records"])
        path.unlink()  # the case now holds the hashed copy

    work = case.root / (WORK_DIR if backend == "graph" else f"{WORK_DIR}-{backend}")
    runner = None if backend == "graph" else QueryRunner(endpoints, workspace)
    collector = Collector(client, endpoints, work, since, until, sources, options=opts, on_file=register,
                          progress=progress, registry=registry, runner=runner)
    try:
        ledger = collector.run()
    finally:
        client.close()
    summary = _summarise(case, ledger, endpoints)
    summary["notes"] = notes
    collection = case.manifest.setdefault("collection", {})
    fresh = {(r["source"], r["slice_start"], r["slice_end"]) for r in ledger}
    earlier = [r for r in collection.get("ledger", []) if (r["source"], r["slice_start"], r["slice_end"]) not in fresh
               and not _overlaps(r, collector)]
    collection["ledger"] = earlier + ledger
    collection["window"] = {"since": collector.ckpt.data["window"]["since"],
                            "until": collector.ckpt.data["window"]["until"]}
    collection.setdefault("runs", []).append({"finished": iso(now_utc()), **_public(params),
                                              "complete": summary["complete"]})
    case.save()
    summary["imported"] = _import(case, progress)
    summary["import_errors"] = [r for r in summary["imported"] if "error" in r]
    summary["kept_as_evidence"] = [r for r in summary["imported"] if r.get("kept_as_evidence")]
    summary["imported"] = [r for r in summary["imported"] if not r.get("kept_as_evidence")]
    case.log_action("collect.end", complete=summary["complete"], gaps=len(summary["gaps"]),
                    records=sum(s["records"] for s in summary["sources"].values()))
    return summary


def retention_notes(registry: Mapping[str, Any], sources: str | None, start: pd.Timestamp) -> list[str]:
    """What the window asks for that the service no longer keeps (advanced hunting: 30 days); logged too."""
    notes = []
    for src in select(sources, registry):
        days = getattr(src, "retention_days", None)
        if days and start < now_utc() - pd.Timedelta(days=days):
            notes.append(f"{src.NAME}: --since {iso(start)} is older than the {days} days the service keeps; "
                         f"slices before {iso(now_utc() - pd.Timedelta(days=days))} come back empty")
            log.warning(notes[-1])
    return notes


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _drop_orphan(case: Case, path: Path, subdir: str) -> None:
    """Remove a copy a killed run left in raw/ before recording it in case.json (it is copied again), and the
    half-written temporary copy a kill during the copy leaves (never evidence: it was never hashed into case.json)."""
    for stale in (case.raw_dir / subdir).glob(f".{path.name}.*.tmp"):
        stale.unlink()
    digest = sha256_file(path)
    dest = case.raw_dir / subdir / f"{digest[:12]}-{path.name}"
    if dest.exists() and case.find_evidence(digest) is None:
        dest.chmod(0o644)
        dest.unlink()


def _overlaps(row: dict[str, Any], collector: Collector) -> bool:
    """True when a ledger row of an earlier collection is inside the current collection's sources and window."""
    sources = {s.NAME for s in collector.sources}
    start, end = pd.Timestamp(row["slice_start"]), pd.Timestamp(row["slice_end"])
    return row["source"] in sources and start < collector.until and end > collector.since


def _public(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _summarise(case: Case, ledger: list[dict[str, Any]], endpoints: Endpoints) -> dict[str, Any]:
    totals: dict[str, dict[str, Any]] = {}
    for row in ledger:
        t = totals.setdefault(row["source"], {"slices": 0, "complete_slices": 0, "pages": 0, "records": 0,
                                              "retries": 0, "throttle_wait_s": 0.0, "gaps": 0})
        t["slices"] += 1
        t["complete_slices"] += int(row["complete"])
        t["gaps"] += int(not row["complete"])
        for k in ("pages", "records", "retries"):
            t[k] += row[k]
        t["throttle_wait_s"] = round(t["throttle_wait_s"] + row["throttle_wait_s"], 3)
    gaps = [{"source": r["source"], "slice_start": r["slice_start"], "slice_end": r["slice_end"],
             "gap": r["gap"] or "not collected yet"} for r in ledger if not r["complete"]]
    return {"case": str(case.root), "graph": endpoints.graph_root, "complete": not gaps, "sources": totals,
            "gaps": gaps, "ledger": ledger}


def _import(case: Case, progress: bool) -> list[dict[str, Any]]:
    """Import collected raw files not imported yet (also after a crash) through the file importers (issue 4).

    Files are imported per source with that source's format; an empty slice file is recorded as
    zero records without parsing.
    """
    importer = getattr(case, "import_files", None)
    if importer is None:
        log.info("import layer not present: collected files are evidence only")
        return []
    import importlib

    known = getattr(importlib.import_module("ir_toolkit.sources.formats"), "FORMATS", {})
    pending: dict[str, list[Path]] = {}
    hashes: dict[str, list[str]] = {}
    for e in case.evidence():
        source = str(e.get("source", ""))
        if not source.startswith("collect:") or e.get("imported") is not None:
            continue
        if e.get("collected_records") == 0:
            case.update_evidence(e["sha256"], records=0, imported=0, duplicates=0, quarantined=0)
            continue
        pending.setdefault(source[len("collect:"):], []).append(case.root / e["path"])
        hashes.setdefault(source[len("collect:"):], []).append(str(e["sha256"]))
    results: list[dict[str, Any]] = []
    for name, files in pending.items():
        if name not in SOURCES and not importable(files[0]):  # e.g. CloudAppEvents before its mapping lands
            for digest in hashes[name]:
                case.update_evidence(digest, import_note="kept as evidence: no import mapping for its rows")
            results.append({"source": name, "kept_as_evidence": True, "files": [str(f) for f in files],
                            "note": "no import mapping for these rows yet: kept as evidence and in the ledger"})
            continue
        # a table with a canonical source is a Log Analytics export; others (once the importer knows them) sniff
        fmt = SOURCES[name].import_format if name in SOURCES else \
            "log-analytics-json" if name in LOG_ANALYTICS and LOG_ANALYTICS[name].canonical else "auto"
        try:
            results += importer([str(f) for f in files], format=fmt if fmt in known else "auto", progress=progress)
        except UserError as exc:  # the evidence is safe; the import can be repeated with `ir-toolkit import`
            log.warning("%s: collected files not imported: %s", name, exc)
            results.append({"source": name, "error": str(exc), "files": [str(f) for f in files]})
    return results


def importable(path: Path) -> bool:
    """True when the importer knows the kind of the first records of a collected file (else keep it as evidence)."""
    from ir_toolkit.sources.fields import normalise_keys
    from ir_toolkit.sources.mappers import classify

    head = list(itertools.islice(read_lines(path), 5))
    return bool(head) and all(classify(normalise_keys(r)) is not None for r in head)


def ledger_frame(case: Case) -> pd.DataFrame:
    """The completeness ledger of a case as a DataFrame (columns: source, slice_start, slice_end,
    requested, pages, records, retries, throttle_wait_s, complete, gap, ...)."""
    return pd.DataFrame(case.manifest.get("collection", {}).get("ledger", []))
