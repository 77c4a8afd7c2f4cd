"""Breach scoping: from findings and pivots to CASE/scope.json (DESIGN.md contract).

* Confirmed actor events: the events of confirmed findings (orphan tokens inside sign-in
  coverage, forged-token verdicts) and every event reached from them by pivoting on
  actor-specific entities (ir_toolkit.analysis.pivot), before coverage included.
* Likely events: the evidence of 'likely' findings not already confirmed.
* compromised_mailboxes and actor_ips list only confirmed and likely; ``items_accessed``
  counts distinct InternetMessageIds of the actor's MailItemsAccessed Bind records; a
  mailbox whose Bind logging was throttled is marked "possibly more".
* Extras beyond the contract: per-source sign-in coverage, unverifiable periods, pivots
  followed and shared entities not followed, throttled mailboxes, actor user agents and token ids.
* The token-abuse family (ir_toolkit.analysis.family): ``family`` (each member ruled in, ruled out or
  not judged, with the reason and the evidence it needed) and ``members`` on every mailbox, address and app.
"""

from __future__ import annotations

import csv
import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from ir_toolkit.analysis.coverage import USER_SIGNIN_SOURCES, coverage_json
from ir_toolkit.analysis.coverup import counted_findings, cover_up, cover_up_evidence
from ir_toolkit.analysis.detect import (
    FINDINGS_JSON,
    FINDINGS_PARQUET,
    Prepared,
    detect,
    keep_prepared,
    prepare,
    read_findings,
    reuse_key,
)
from ir_toolkit.analysis.evidence import profile_json
from ir_toolkit.analysis.family import annotate_scope, family_status
from ir_toolkit.analysis.graphreads import graph_reads, mail_reads, mailbox_graph_counts, with_graph_targets
from ir_toolkit.analysis.pivot import LIKELY_FOLLOWED, VOUCHED_ADDRESSES, PivotResult, follow_pivots
from ir_toolkit.analysis.reuse import current_document
from ir_toolkit.case import Case
from ir_toolkit.case.lock import writes_case
from ir_toolkit.case.manifest import sha256_file
from ir_toolkit.paths import reference_file
from ir_toolkit.timeutil import iso, now_utc

log = logging.getLogger(__name__)

SCOPE_JSON = "scope.json"
EVENT_COLUMNS = ("time", "source", "operation", "result", "user", "mailbox", "app_id", "client_app_id", "app_name",
                 "ip", "country", "asn", "user_agent", "session_id", "token_id", "mail_access_type", "message_ids",
                 "throttled", "record_id")


@cache
def first_party_apps() -> dict[str, str]:
    """Microsoft first-party AppId -> display name (data/reference/microsoft_first_party_apps.csv)."""
    path = reference_file("microsoft_first_party_apps.csv")
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["AppId"].lower(): r["AppDisplayName"] for r in csv.DictReader(fh) if r.get("AppId")}


def _events(prep: Prepared, parts: dict[str, set[str]]) -> dict[str, pd.DataFrame]:
    """The events of each set of record_ids (disjoint sets), in one scan of the store."""
    ids = sorted((r, name) for name, part in parts.items() for r in part)
    prep.engine.register("scope_ids", pd.DataFrame({"record_id": pd.Series([r for r, _ in ids], dtype="str"),
                                                    "part": pd.Series([n for _, n in ids], dtype="str")}))
    cols = ", ".join(f"e.{c}" for c in EVENT_COLUMNS)
    frame = prep.engine.run_sql(f"SELECT {cols}, s.part FROM events e JOIN scope_ids s ON s.record_id = e.record_id")
    frame["app"] = frame["client_app_id"].fillna(frame["app_id"]).str.lower()
    return {name: frame[frame["part"] == name].drop(columns="part").reset_index(drop=True) for name in parts}


def _judged_likely(prep: Prepared) -> set[str]:
    """record_ids of mailbox access judged likely on its own signals (a likely finding's group may hold others)."""
    rows = prep.engine.run_sql(
        "SELECT record_id FROM access_judged WHERE verdict = 'likely' AND source = 'mail_access'")
    return set(rows["record_id"].astype(str))


# Members of the token-abuse family whose verdicts rest on a chain of their own (a credential change, a mail grant
# and the reads that follow), not on token issuance: the evidence of their likely findings seeds the likely scope
# whole, since access_judged sees only genuinely issued tokens there.
CHAIN_MEMBERS = frozenset({"app-abuse"})


def chain_likely(prep: Prepared, findings: pd.DataFrame) -> set[str]:
    """record_ids of the likely findings of chain-judged detections (members in ``CHAIN_MEMBERS``)."""
    chained = {d.id for d in prep.pack.detections.values() if d.member in CHAIN_MEMBERS}
    rows = findings[(findings["verdict"] == "likely") & findings["detection"].isin(chained)]
    return {str(r) for ev in rows["evidence"] for r in (list(ev) if ev is not None else [])}


def shared_elsewhere(prep: Prepared, ips: set[str], actor_ids: set[str]) -> set[str]:
    """The addresses of ``ips`` that legitimate use outside the actor's own events shares.

    An address the pivot did not follow because a successful sign-in or verified access used it is shared only
    when some of that use is not the actor's (an abused application's own service-principal sign-ins are not).
    """
    if not ips:
        return set()
    prep.engine.register("scope_shared", pd.DataFrame({"ip": pd.Series(sorted(ips), dtype="str")}))
    prep.engine.register("scope_actor", pd.DataFrame({"record_id": pd.Series(sorted(actor_ids), dtype="str")}))
    rows = prep.engine.run_sql(
        "SELECT DISTINCT u.ip FROM (SELECT ip, record_id FROM signins WHERE result = 'success' UNION ALL "
        "SELECT ip, record_id FROM access_judged WHERE verdict = 'verified' "
        f"OR address_known_from IN {VOUCHED_ADDRESSES}) u JOIN scope_shared c ON c.ip = u.ip "
        "LEFT JOIN scope_actor a ON a.record_id = u.record_id WHERE a.record_id IS NULL "
        "UNION ALL SELECT t.ip FROM tenant_addresses t JOIN scope_shared c ON c.ip = t.ip WHERE t.kind = 'signins' "
        "UNION ALL SELECT i.ip FROM infrastructure_ips i JOIN scope_shared c ON c.ip = i.ip")
    return set(rows["ip"].astype(str))


def signin_app_names(prep: Prepared) -> dict[str, str]:
    """Application id (lower case) -> display name, as the service-principal sign-ins name it."""
    rows = prep.engine.run_sql(
        "SELECT lower(app_id) AS app, min(app_name) AS name FROM signins WHERE source = 'signin_serviceprincipal' "
        "AND app_id IS NOT NULL AND app_name IS NOT NULL GROUP BY lower(app_id)")
    return {str(a): str(n) for a, n in zip(rows["app"], rows["name"], strict=True)}


def _chain_reasons(group: pd.DataFrame, findings: pd.DataFrame, upn: str) -> list[str]:
    """Reasons naming the findings of several mailboxes (no mailbox of their own) whose evidence holds ``group``."""
    ids = set(group["record_id"].astype(str))
    out = []
    strong = findings[findings["verdict"].isin(["confirmed", "likely"]) & (findings["mailbox"] != upn)]
    for row in strong.to_dict("records"):
        evidence = row["evidence"]
        held = ids & {str(r) for r in (list(evidence) if evidence is not None else [])}
        if held and not isinstance(row["mailbox"], str):
            out.append(f"{len(held)} event(s) of a {row['verdict']} {row['detection']} finding: {row['explanation']}")
    return out


def _items(group: pd.DataFrame) -> int:
    bind = group[(group["source"] == "mail_access") & (group["mail_access_type"].fillna("").str.lower() == "bind")]
    return len({m for lst in bind["message_ids"] if lst is not None for m in lst if m})


def _span(group: pd.DataFrame) -> tuple[str | None, str | None]:
    mail = group[mail_reads(group)]
    g = mail if not mail.empty else group
    return iso(g["time"].min()), iso(g["time"].max())


def _mailbox_reasons(group: pd.DataFrame, piv: PivotResult, findings: pd.DataFrame, upn: str,
                     confidence: str = "confirmed") -> list[str]:
    reasons = []
    seeds = group[[r in piv.seeds for r in group["record_id"]]]
    if len(seeds) and confidence == "confirmed":
        reasons.append(f"{len(seeds)} event(s) of confirmed findings (tokens no sign-in issued, inside gap-free "
                       "sign-in coverage, judged forged, or an abused application's chain of credential change, mail "
                       "grant and reads from never-seen addresses)")
    elif len(seeds):
        reasons.append(f"{len(seeds)} access(es) judged likely on their own signals (new application, new address, "
                       "scripted client, indicator) without verified issuance, or by part of an abused "
                       "application's chain")
    pivoted = len(group) - len(seeds)
    if pivoted and piv.pivots:
        kinds = sorted({p["kind"] for p in piv.pivots})
        reasons.append(f"{pivoted} event(s) reached by pivoting on the actor's {', '.join(kinds)}")
    mine = findings[(findings["mailbox"] == upn) & findings["verdict"].isin(["confirmed", "likely"])]
    for det, n in mine.groupby("detection").size().items():
        reasons.append(f"{n} {det} finding(s)")
    return reasons + _chain_reasons(group, findings, upn)


def _signin_kind(source: str) -> str:
    """``signin_noninteractive`` -> ``non-interactive`` (a sign-in source in the responder's words)."""
    return source.replace("signin_", "").replace("noninteractive", "non-interactive")


def _pivot_order(p: dict[str, Any]) -> tuple[int, str, str]:
    return int(p["round"]), str(p["kind"]), str(p["value"])


def confidence_basis(prep: Prepared, confidence: str) -> str:
    """Which evidence carries a mailbox's confidence, in one sentence (scope.json ``confidence_basis``)."""
    cov = prep.coverage
    if confidence == "confirmed":
        return ("confirmed: tokens no sign-in issued, used inside gap-free coverage of every sign-in source that "
                "could have issued them (delegated: interactive and non-interactive; app-only: service principal), "
                "or a token judged forged, or an application given a new credential and a mail grant from an address "
                "neither the tenant nor its initiator had used, then reading from addresses it never used (app-abuse), "
                "and the events the actor's own entities lead to")
    if not cov["judged"]:
        held = [s for s in USER_SIGNIN_SOURCES if s in cov["sources"]]
        why = ("no user sign-ins are held" if not held else
               f"only {_signin_kind(held[0])} sign-ins are held")
        return (f"likely, not confirmed: {why}, so token issuance cannot be checked; carried by the mailbox access "
                f"log's own signals (a new application, an address judged against {prep.sql_values['address_basis']}, "
                "scripted clients, indicators), or by part of an abused application's chain, and the actor entities "
                "they lead to")
    return ("likely, not confirmed: its tokens were issued outside sign-in coverage or in a hole of it, or carry no "
            "token id; carried by new-application, new-address, scripted-client and indicator signals, or by part "
            "of an abused application's chain (app-abuse: the credential change or grant not held, or made from an "
            "address that cannot be judged)")


def _mailboxes(events: pd.DataFrame, confidence: str, piv: PivotResult, findings: pd.DataFrame,
               throttled: set[str], basis: str, mail_held: bool) -> list[dict[str, Any]]:
    out = []
    for upn, group in events[events["mailbox"].notna()].groupby("mailbox"):
        first, last = _span(group)
        entry: dict[str, Any] = {
            "upn": str(upn), "first": first, "last": last, "events": len(group), "items_accessed": _items(group),
            "confidence": confidence, "confidence_basis": basis,
            "reasons": _mailbox_reasons(group, piv, findings, str(upn), confidence),
            **mailbox_graph_counts(group),
        }
        if not mail_held:
            entry["items_accessed_known"] = False
            entry["reasons"].append("no MailItemsAccessed records are held: the messages read cannot be counted")
        if upn in throttled:
            entry["possibly_more"] = True
            entry["reasons"].append("Bind logging was throttled for this mailbox: possibly more items accessed")
        out.append(entry)
    return sorted(out, key=lambda e: e["upn"])


def _ips(events: pd.DataFrame, reason: str, shared: set[str]) -> list[dict[str, Any]]:
    out = []
    for ip, group in events[events["ip"].notna()].groupby("ip"):
        first, last = iso(group["time"].min()), iso(group["time"].max())
        reasons = [f"{reason}: {len(group)} event(s) on {group['mailbox'].nunique()} mailbox(es)"]
        country = group["country"].dropna().unique()
        asn = group["asn"].dropna().unique()
        if len(country) or len(asn):
            reasons.append(f"country {', '.join(map(str, country)) or '-'}, ASN {', '.join(map(str, asn)) or '-'}")
        if ip in shared:
            reasons.append("also used legitimately (shared address): not pivoted on")
        out.append({"ip": str(ip), "first": first, "last": last, "events": len(group), "reasons": reasons})
    return sorted(out, key=lambda e: e["ip"])


def scope_inputs(case: Case, params: dict[str, Any] | None, engine: str | None,
                 engine_options: dict[str, Any] | None) -> dict[str, str] | None:
    """What a scope of CASE/findings.parquet is made from: the inputs key and the findings file's sha256."""
    path = case.root / FINDINGS_PARQUET
    key = reuse_key(case, "token-forgery", params, engine, engine_options)
    if not key or not path.is_file():
        return None
    return {"key": key, "findings": sha256_file(path)}


def _unverifiable_periods(prep: Prepared) -> list[dict[str, Any]]:
    """Periods of mailbox access whose delegated tokens cannot be checked against sign-ins, with the reason."""
    span = prep.engine.run_sql("SELECT min(time) AS first, max(time) AS last FROM events WHERE source = 'mail_access'")
    first, last = span["first"].iloc[0], span["last"].iloc[0]
    cov = prep.coverage
    if pd.isna(first):
        return []
    if not cov["judged"]:
        missing = [s for s in USER_SIGNIN_SOURCES if s not in cov["sources"]]
        names = [_signin_kind(m) for m in missing]
        why = "no user sign-in logs" if len(missing) == len(USER_SIGNIN_SOURCES) else f"no {', '.join(names)} sign-ins"
        return [{"start": iso(first), "end": iso(last), "reason": f"{why}: token issuance cannot be checked"}]
    periods: list[dict[str, Any]] = []
    start, end = cov["start"], cov["end"]
    if start is not None and first < start:
        periods.append({"start": iso(first), "end": iso(start), "reason": "mailbox access before sign-in coverage"})
    lifetime = pd.Timedelta(minutes=int(prep.values.get("token_lifetime_minutes") or 90))
    if end is not None and last > end + lifetime:
        periods.append({"start": iso(end), "end": iso(last), "reason": "mailbox access after sign-in coverage"})
    for gap in cov["gaps"]:
        if gap["source"] in USER_SIGNIN_SOURCES and gap["end"] >= first and gap["start"] <= last:
            periods.append({"start": iso(gap["start"]), "end": iso(gap["end"]), "source": gap["source"],
                            "reason": f"hole in {gap['source']}: {gap['reason']}"})
    return periods


@writes_case("scope")
def scope(case: Case | str | Path, findings: pd.DataFrame | None = None, write: bool = True,
          params: dict[str, Any] | None = None, engine: str | None = None,
          engine_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Scope the breach and (by default) write CASE/scope.json.

    Args:
        case: A Case or case folder.
        findings: Findings of :func:`ir_toolkit.analysis.detect.detect`; read from CASE/findings.parquet
            (with the parameters detect ran with, from findings.json), or computed, when None.
        write: Write CASE/scope.json and log the action.
        params: Pack parameters (as for detect).
        engine: ``duckdb`` (default) or ``spark``: where the pivots run (as for detect).
        engine_options: Options of the engine (spark: master, events, session).

    Returns:
        The scope.json document (see DESIGN.md).
    """
    case = case if isinstance(case, Case) else Case.open(case, writable=write)
    from_case = findings is None
    if findings is None:
        findings = read_findings(case)
        saved = case.root / FINDINGS_JSON
        if findings is not None and params is None and saved.exists():
            params = dict(json.loads(saved.read_text(encoding="utf-8")).get("parameters") or {}) or None
    if findings is None:
        findings = detect(case, params=params, write=write, engine=engine, engine_options=engine_options)
    inputs = scope_inputs(case, params, engine, engine_options) if from_case else None
    current = current_document(case, SCOPE_JSON, inputs, (FINDINGS_PARQUET,)) if inputs else None
    if current is not None:
        log.info("scope.json is current (same findings, store, case, pack and parameters): reusing it")
        return current
    prep = prepare(case, params=params, engine=engine, engine_options=engine_options, complete=False)
    if write:
        keep_prepared(prep)
    confirmed = findings[findings["verdict"] == "confirmed"]
    seeds = {str(r) for ev in confirmed["evidence"] for r in (list(ev) if ev is not None else [])}
    piv = follow_pivots(prep.engine, seeds)
    likely_ids = {str(r) for ev in findings[findings["verdict"] == "likely"]["evidence"]
                  for r in (list(ev) if ev is not None else [])} - piv.record_ids
    lpiv = follow_pivots(prep.engine, likely_ids & (_judged_likely(prep) | chain_likely(prep, findings)),
                         follow=LIKELY_FOLLOWED,
                         corroborate=True)
    fetched = _events(prep, {"actor": piv.record_ids, "likely": lpiv.record_ids - piv.record_ids})
    actor = fetched["actor"]
    actor = actor[actor["source"] != "token"]  # judged tokens are evidence, not activity in the logs
    likely = fetched["likely"]
    likely = likely[likely["source"] != "token"]
    graph_held = "graph_activity" in prep.sources
    if graph_held:  # a Graph mail read's mailbox comes from its URI (ir_toolkit.analysis.graphreads)
        actor, likely = with_graph_targets(prep.engine, actor), with_graph_targets(prep.engine, likely)
    throttled_q = prep.engine.run_sql(
        "SELECT DISTINCT mailbox FROM events WHERE source = 'mail_access' AND throttled AND mailbox IS NOT NULL")
    throttled = set(throttled_q["mailbox"].astype(str))
    counted = counted_findings(findings)  # a hiding rule is one piece of evidence, not also a persistence change
    mail_held = "mail_access" in prep.sources
    mailboxes = _mailboxes(actor, "confirmed", piv, counted, throttled, confidence_basis(prep, "confirmed"), mail_held)
    done = {m["upn"] for m in mailboxes}
    mailboxes += [m for m in _mailboxes(likely, "likely", lpiv, counted, throttled, confidence_basis(prep, "likely"),
                                        mail_held) if m["upn"] not in done]
    covered, per_mailbox = cover_up(findings, cover_up_evidence(prep.engine, findings), [m["upn"] for m in mailboxes])
    for m in mailboxes:
        if per_mailbox.get(m["upn"]):
            m["cover_up"] = per_mailbox[m["upn"]]
    shared_ips = shared_elsewhere(prep, {s["value"] for s in piv.shared if s["kind"] == "ip"},
                                  piv.record_ids | lpiv.record_ids)
    ips = _ips(actor, "confirmed actor activity", shared_ips)
    ips += [i for i in _ips(likely, "likely actor activity", shared_ips) if i["ip"] not in {x["ip"] for x in ips}]
    both = pd.concat([actor, likely], ignore_index=True)
    names = {**signin_app_names(prep), **first_party_apps()}
    followed_apps = {p["value"] for p in piv.pivots if p["kind"] == "app"}
    apps = []
    mail_events = both[mail_reads(both)]
    for column, field_name in (("app_id", "AppId"), ("client_app_id", "ClientAppId")):
        for app, group in mail_events.groupby(mail_events[column].str.lower()):
            name = group["app_name"].dropna()
            apps.append({"app_id": str(app), "name": str(name.iloc[0]) if len(name) else names.get(str(app), ""),
                         "field": field_name, "actor_specific": str(app) in followed_apps, "events": len(group)})
    doc: dict[str, Any] = {
        "case": case.manifest.get("case"), "generated_at": iso(now_utc()),
        "window": {"first_malicious": iso(both["time"].min()) if len(both) else None,
                   "last_malicious": iso(both["time"].max()) if len(both) else None},
        "evidence": profile_json(prep.evidence),
        "signin_coverage": {"start": iso(prep.coverage["start"]), "end": iso(prep.coverage["end"]),
                            "complete": prep.coverage["complete"], "judged": prep.coverage["judged"],
                            "method": prep.coverage["method"], "holes": len(prep.coverage["gaps"])},
        "signin_coverage_sources": coverage_json(prep.coverage["sources"]),
        "compromised_mailboxes": mailboxes,
        "actor_ips": ips,
        "actor_apps": sorted(apps, key=lambda a: (not a["actor_specific"], -a["events"], a["app_id"])),
        "actor_user_agents": sorted(both["user_agent"].dropna().unique().tolist()),
        "actor_token_ids": sorted(both["token_id"].dropna().unique().tolist()),
        "findings_by_detection": {str(k): int(v) for k, v in findings.groupby("detection").size().items()},
        "findings_by_verdict": {str(k): int(v) for k, v in findings.groupby("verdict").size().items()},
        "throttled_mailboxes": [{"upn": m, "note": "possibly more"} for m in sorted(throttled)],
        "unverifiable_periods": _unverifiable_periods(prep),
        "pivots": sorted(piv.pivots, key=_pivot_order)
                  + sorted(({**p, "from": "likely"} for p in lpiv.pivots), key=_pivot_order),
        "not_pivoted_shared": piv.shared,
        "events_confirmed": len(actor), "events_likely": len(likely),
        "cover_up": covered,
        "family": family_status(findings, prep.evidence, prep.coverage, prep.pack),
    }
    if graph_held:
        doc["actor_graph_reads"] = graph_reads(actor, "confirmed") + graph_reads(likely, "likely")
    annotate_scope(doc, findings)
    if inputs:
        doc["inputs"] = inputs  # what this scope was made from (ir_toolkit.analysis.reuse)
    if write:
        with case.recording("scope", mailboxes=len(mailboxes), actor_ips=len(ips), window=doc["window"],
                            pivots=len(piv.pivots)) as w:
            w.path(case.root / SCOPE_JSON).write_text(json.dumps(doc, indent=2, default=str) + "\n",
                                                      encoding="utf-8")
    return doc
