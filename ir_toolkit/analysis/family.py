"""The token-abuse family across a case: which members are ruled in, ruled out, or cannot be judged.

Storm-0558's forged OAuth tokens are one member of a family (reference/anchors-2026-12.md section 1):
abused applications, Entra actor tokens, Golden SAML, Silver SAML. Each detection of the pack names
the member it rules in (``member:``, carried by every finding). :data:`MEMBERS` (``family.yaml``) says,
per member, which sources it needs and what their absence means. The status of a member:

* ``ruled_in``: a confirmed or likely finding of one of its detections;
* ``ruled_out``: every source it needs is held without holes, its coverage rule holds (forged OAuth
  tokens: delegated tokens can be judged against the user sign-ins), the logs can show the whole
  technique (``can_rule_out``), and none of its detections left any result (not even a possible or
  unverifiable one);
* ``not_judged``: anything else, with the reason in the responder's words.

:func:`family_status` is scope.json's ``family``; :func:`annotate_scope` adds ``members`` (the members
whose findings carry the conclusion) to each compromised mailbox, actor address and actor application.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ir_toolkit.timeutil import iso

FAMILY_YAML = Path(__file__).resolve().parent / "family.yaml"
STATUSES = ("ruled_in", "ruled_out", "not_judged")
STRONG = ("confirmed", "likely")
LEADS = ("possible", "unverifiable")


@cache
def members() -> dict[str, dict[str, Any]]:
    """The family registry: member NAME -> entry (NAME, DESCRIPTION, needs, coverage, can_rule_out, blind_spot)."""
    # libyaml's loader where PyYAML has it (0.07 s -> 0.01 s; the same document), else the pure-Python one
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(FAMILY_YAML.read_text(encoding="utf-8"), Loader=loader) or {}  # noqa: S506 - a safe loader
    return {str(k): dict(v) for k, v in data.items()}


def _findings_of(findings: pd.DataFrame, member: str) -> pd.DataFrame:
    if findings.empty or "member" not in findings:
        return findings.iloc[0:0]
    return findings[findings["member"] == member]


def _needs(entry: dict[str, Any], profile: dict[str, Any]) -> list[dict[str, Any]]:
    """Each group of needed sources with what the case holds of it."""
    out = []
    sources = profile.get("sources") or {}
    for need in entry.get("needs") or []:
        wanted = [str(s) for s in need.get("sources") or []]
        held = [s for s in wanted if (sources.get(s) or {}).get("held")]
        holes = sum(len((sources.get(s) or {}).get("holes") or []) for s in held)
        first = [sources[s]["first"] for s in held if sources[s].get("first") is not None]
        last = [sources[s]["last"] for s in held if sources[s].get("last") is not None]
        out.append({"sources": wanted, "why": str(need.get("why", "")), "absent": str(need.get("absent", "")),
                    "held": held, "missing": [s for s in wanted if s not in held], "holes": holes,
                    "first": max(first) if first and len(held) == len(wanted) else None,
                    "last": min(last) if last and len(held) == len(wanted) else None})
    return out


def _counts(rows: pd.DataFrame) -> dict[str, int]:
    by = rows["verdict"].value_counts().to_dict() if len(rows) else {}
    return {v: int(by.get(v, 0)) for v in (*STRONG, *LEADS, "benign")}


def _period(needs: list[dict[str, Any]]) -> tuple[Any, Any]:
    firsts = [n["first"] for n in needs if n["first"] is not None]
    lasts = [n["last"] for n in needs if n["last"] is not None]
    return (max(firsts) if firsts else None), (min(lasts) if lasts else None)


def member_status(entry: dict[str, Any], findings: pd.DataFrame, profile: dict[str, Any],
                  coverage: dict[str, Any] | None = None, detections: list[str] | None = None) -> dict[str, Any]:
    """The status of one member with its reason, the evidence it needed and what the case holds of it.

    Args:
        entry: The member's registry entry (:func:`members`).
        findings: Findings with the ``member`` column (schema.FINDING_COLUMNS).
        profile: The evidence profile (ir_toolkit.analysis.evidence.evidence_profile; times tz-aware or ISO).
        coverage: Sign-in coverage (ir_toolkit.analysis.coverage.signin_coverage), for ``coverage: delegated``.
        detections: Ids of the pack's detections naming this member (None: not checked); with none, the
            member cannot be ruled out (nothing looked for it).
    """
    name = str(entry["NAME"])
    mine = _findings_of(findings, name)
    counts = _counts(mine)
    needs = _needs(entry, profile)
    start, end = _period(needs)
    strong = mine[mine["verdict"].isin(STRONG)]
    leads = mine[mine["verdict"].isin(LEADS)]
    missing = [s for n in needs for s in n["missing"]]
    holed = [n for n in needs if n["holes"]]
    blind = entry.get("blind_spot")
    if len(strong):
        dets = ", ".join(sorted(set(strong["detection"])))
        status = "ruled_in"
        reason = (f"{counts['confirmed']} confirmed and {counts['likely']} likely finding(s) of {dets}: "
                  f"{strong.iloc[0]['explanation']}")
    else:
        why: list[str] = []
        if detections is not None and not detections:
            why.append("the detection pack has no detection for it")
        for n in needs:
            if n["missing"]:
                why.append(f"no {', '.join(n['missing'])} events were provided: {n['absent']}")
        if holed:
            why.append("the needed logs have holes (" + ", ".join(
                f"{', '.join(n['held'])}: {n['holes']}" for n in holed) + "): the technique may hide in them")
        if entry.get("coverage") == "delegated" and coverage is not None and not coverage.get("judged"):
            why.append("not every user sign-in source that could have issued a delegated token is held, "
                       "so no token can be judged against its issuance")
        if len(leads):
            why.append(f"{len(leads)} result(s) could not be decided ({counts['possible']} possible, "
                       f"{counts['unverifiable']} unverifiable: "
                       f"{', '.join(sorted(set(leads['detection'])))}): they need a responder's review or "
                       "the sign-ins of their period")
        held_clause = (f"none of its detections found anything in {'; '.join(', '.join(n['held']) for n in needs)}"
                       + (f" held without holes from {iso(start)} to {iso(end)}" if start is not None else ""))
        if not why and not entry.get("can_rule_out", True):
            status, reason = "not_judged", f"{held_clause}; but {blind}"
        elif not why:
            status, reason = "ruled_out", held_clause[0].upper() + held_clause[1:] + "."
        else:
            status = "not_judged"
            reason = "Cannot be judged with the evidence held: " + "; ".join(why) + "."
            if blind:
                reason += " " + str(blind)
    return {
        "member": name, "description": str(entry.get("DESCRIPTION", "")), "status": status, "reason": reason,
        "findings": counts, "detections": sorted(set(mine["detection"])) if len(mine) else [],
        "evidence_needed": [{k: (iso(v) if k in ("first", "last") else v) for k, v in n.items()} for n in needs],
        "missing": missing, "can_rule_out": bool(entry.get("can_rule_out", True)),
        "cannot_show": blind, "entities": entities(strong),
    }


def entities(rows: pd.DataFrame) -> dict[str, list[str]]:
    """The actor entities named by findings: mailboxes, users, addresses, applications, tokens."""
    out: dict[str, list[str]] = {}
    for column, key in (("mailbox", "mailboxes"), ("user", "users"), ("ip", "ips"), ("app_id", "apps"),
                        ("token_id", "tokens")):
        values = sorted({str(v) for v in rows[column].dropna()}) if len(rows) and column in rows else []
        out[key] = values
    return out


def family_status(findings: pd.DataFrame, profile: dict[str, Any], coverage: dict[str, Any] | None = None,
                  pack: Any = None) -> list[dict[str, Any]]:
    """scope.json ``family``: one entry per member of :func:`members`, in registry order.

    Args:
        findings: Findings with ``member``.
        profile: The evidence profile.
        coverage: Sign-in coverage.
        pack: The detection pack run (ir_toolkit.analysis.detections.Pack): a member none of its
            detections names is not judged. None: not checked.
    """
    out = []
    for name, entry in members().items():
        dets = None if pack is None else sorted(d.id for d in pack.detections.values() if d.member == name)
        out.append(member_status(entry, findings, profile, coverage, dets))
    return out


def _members_for(findings: pd.DataFrame, column: str, value: str, fallback: list[str]) -> list[str]:
    rows = findings[(findings[column].astype("string").str.lower() == value.lower())
                    & findings["member"].notna() & (findings["verdict"] != "benign")] if len(findings) else findings
    direct = sorted({str(m) for m in rows["member"]}) if len(rows) else []
    return direct or fallback


def annotate_scope(doc: dict[str, Any], findings: pd.DataFrame) -> None:
    """Add ``members`` to every compromised mailbox, actor address and actor application of ``doc``.

    The members whose findings name that mailbox, address or application; when none does (an entity
    reached by pivoting), the members of the findings its confidence rests on (confirmed or likely ones).
    """
    if findings.empty or "member" not in findings:
        findings = pd.DataFrame(columns=["mailbox", "ip", "app_id", "member", "verdict"])
    with_member = findings[findings["member"].notna()]

    def seeds(column: str, verdict: str) -> list[str]:
        """Members of the ``verdict`` findings that name some entity of ``column`` (a write names no mailbox)."""
        rows = with_member[(with_member["verdict"] == verdict) & with_member[column].notna()]
        return sorted({str(m) for m in rows["member"]})

    for box in doc.get("compromised_mailboxes") or []:
        box["members"] = _members_for(findings, "mailbox", str(box["upn"]),
                                      seeds("mailbox", str(box.get("confidence"))))
    for addr in doc.get("actor_ips") or []:
        confidence = "confirmed" if any("confirmed" in r for r in addr.get("reasons") or []) else "likely"
        addr["members"] = _members_for(findings, "ip", str(addr["ip"]), seeds("ip", confidence))
    for app in doc.get("actor_apps") or []:
        app["members"] = _members_for(findings, "app_id", str(app["app_id"]),
                                      seeds("app_id", "confirmed") or seeds("app_id", "likely"))


def family_sentence(family: list[dict[str, Any]]) -> str:
    """One sentence for a report's summary: which members are ruled in, ruled out, or not judged."""
    groups = {s: [f["member"] for f in family if f.get("status") == s] for s in STATUSES}
    parts = []
    if groups["ruled_in"]:
        parts.append("ruled in: " + ", ".join(groups["ruled_in"]))
    if groups["ruled_out"]:
        parts.append("ruled out: " + ", ".join(groups["ruled_out"]))
    if groups["not_judged"]:
        parts.append("could not be judged with the evidence held: " + ", ".join(groups["not_judged"]))
    return ("Token-abuse family: " + "; ".join(parts) + ".") if parts else "The token-abuse family was not judged."
