"""Cover-up as findings (issue 14): mail the actor deleted or moved out of sight, and hiding inbox rules.

The relational work is in the token-forgery pack: the views ``actor_ties`` (tokens, sessions,
Exchange sessions of confirmed or likely access; suspect addresses no successful sign-in used),
``cover_up_events`` (deletes, moves to rarely-read folders and inbox-rule changes, each with its
strongest tie: ``tied_by``, ``tie_value``, ``tie_verdict``) and ``rule_signs`` (what a rule does,
from LIKE patterns over its raw record), and the detections ``mail-cover-up`` and
``hiding-inbox-rule``. This module holds what follows the SQL, in small engine-independent pandas:

* the post-processors of the two detections (:data:`POSTPROCESSORS`), which turn the few tied rows
  into explanation fields: message ids and subjects of the items (subjects are read from the raw
  records, where the mapper leaves them), the rule's conditions and actions, the tie in words;
* :func:`cover_up`, the pure function behind the ``cover_up`` lists of scope.json, and
  :func:`cover_up_evidence`, the one query it needs (message ids and ties of the evidence);
* :func:`counted_findings`, which keeps a hiding rule from counting twice in the scope (the
  ``persistence-cover`` finding of the same record is not a second kind of evidence).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from ir_toolkit.analysis.engine import Engine
from ir_toolkit.sources.fields import field, items, loads, name_value, normalise_keys, text
from ir_toolkit.sources.mappers import RecordError, classify, unwrap_audit_record
from ir_toolkit.timeutil import iso

log = logging.getLogger(__name__)

MAIL_DETECTION = "mail-cover-up"
RULE_DETECTION = "hiding-inbox-rule"
DETECTIONS = (MAIL_DETECTION, RULE_DETECTION)
SHOWN = 3  # items, subjects shown in an explanation
LONGEST = 80  # characters of one logged value shown in an explanation
DONE = {"softdelete": "soft-deleted from", "harddelete": "hard-deleted (purged) from",
        "movetodeleteditems": "moved to Deleted Items in"}
SIGNS = (("deletes", "deletes mail"), ("moves", "moves mail to a rarely-read folder"), ("reads", "marks mail as read"),
         ("forwards", "forwards mail"))
RULE_PARAMETERS = ("Name", "From", "FromAddressContainsWords", "SubjectContainsWords", "SubjectOrBodyContainsWords",
                   "BodyContainsWords", "HeaderContainsWords", "SentTo", "MoveToFolder", "CopyToFolder",
                   "DeleteMessage", "SoftDeleteMessage", "MarkAsRead", "ForwardTo", "ForwardAsAttachmentTo",
                   "RedirectTo", "StopProcessingRules", "RuleName", "RuleCondition", "RuleActions")
EVIDENCE_SQL = """
SELECT c.record_id, c.time, c.operation, c.mailbox, c.target, c.kind, c.tied_by, c.tie_verdict, e.message_ids
FROM cover_up_events c JOIN events e ON e.record_id = c.record_id AND e.source = 'audit_other'
JOIN cover_up_ids i ON i.record_id = c.record_id
"""


def record_of(raw: Any) -> dict[str, Any]:
    """The UAL record (normalised keys) inside an event's ``raw`` JSON; {} when it cannot be read.

    A Purview CSV row or a Graph auditLogRecord is unwrapped to the AuditData record it carries.
    """
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        rec = loads(raw)
    except ValueError:
        return {}
    if not isinstance(rec, dict):
        return {}
    norm = normalise_keys(rec)
    if classify(norm) == "audit_record":
        try:
            return unwrap_audit_record(norm)
        except RecordError:
            return {}
    return norm


def _short(value: Any) -> str:
    t = text(value) or ""
    return t if len(t) <= LONGEST else t[:LONGEST - 1] + "…"


def _listed(values: Iterable[str], noun: str) -> str:
    shown = sorted(set(values))
    if not shown:
        return ""
    more = f" +{len(shown) - SHOWN} more" if len(shown) > SHOWN else ""
    return f"{noun} " + ", ".join(shown[:SHOWN]) + more


def _values(cell: Any) -> list[Any]:
    """A list cell of an engine result (list, numpy array or None) as a list."""
    if cell is None:
        return []
    if isinstance(cell, list | tuple):
        return list(cell)
    if hasattr(cell, "tolist"):
        return list(cell.tolist())
    return []


def tie_words(tied_by: Any, value: Any, verdict: Any) -> str:
    """The tie of a cover-up finding in words ("in Exchange session X, the session of confirmed ... access")."""
    strength = "confirmed" if verdict == "confirmed" else "likely"
    if tied_by == "exchange session":
        return f"in Exchange session {value}, the session of {strength} forged-token access"
    if tied_by == "token":
        return f"with token {value}, the token of {strength} forged-token access"
    if tied_by == "session":
        return f"in Entra session {value}, the session of {strength} forged-token access"
    if tied_by == "address":
        return f"from {value}, an address of suspect access that no successful sign-in used"
    return "with nothing tying it to the actor"


def cover_up_mail(rows: pd.DataFrame, values: dict[str, Any]) -> pd.DataFrame:
    """Post-process ``mail-cover-up`` rows: item count, what was done, items named, the tie in words.

    Args:
        rows: The detection's rows: verdict, mailbox, operation, target (destination folder of a Move),
            tied_by, tie_value, items, events, message_lists (message_ids of each record), raws (raw of
            each record) and the finding columns.
        values: Pack parameters (unused).

    Returns:
        The rows with ``count``, ``done``, ``detail`` and ``tie`` added, message_lists and raws dropped.
    """
    out = []
    for rec in rows.to_dict("records"):
        ids = [str(m) for lst in _values(rec.get("message_lists")) for m in _values(lst) if m]
        subjects = []
        for raw in _values(rec.get("raws")):
            for item in items(record_of(raw).get("affecteditems")):
                subject = field(item, "Subject", "subject") if isinstance(item, dict) else None
                if text(subject):
                    subjects.append(f"'{_short(subject)}'")
        logged = rec.get("items")
        count = max(int(logged) if logged is not None and not pd.isna(logged) else 0, len(set(ids)))
        op = str(rec.get("operation") or "")
        done = DONE.get(op.lower(), f"moved to {rec.get('target') or 'another folder'} in"
                        if op.lower() == "move" else f"{op} on")
        parts = [p for p in (_listed(subjects, "subjects"), _listed(ids, "messages")) if p]
        out.append({**{k: v for k, v in rec.items() if k not in ("message_lists", "raws")},
                    "count": count or int(rec.get("events") or 0), "done": done,
                    "detail": f" ({'; '.join(parts)})" if parts else "",
                    "tie": tie_words(rec.get("tied_by"), rec.get("tie_value"), rec.get("verdict"))})
    return pd.DataFrame(out) if out else rows.iloc[0:0]


def rule_settings(raws: Iterable[Any]) -> dict[str, str]:
    """Conditions and actions of an inbox rule from its raw records (Parameters, OperationProperties).

    Args:
        raws: Raw JSON of New-InboxRule / Set-InboxRule / UpdateInboxRules records; later settings
            of the same name win, in the sorted order of the records' text (deterministic).
    """
    found: dict[str, str] = {}
    for raw in sorted(str(r) for r in raws if r is not None):
        rec = record_of(raw)
        for entries in (rec.get("parameters"), rec.get("operationproperties")):
            for name in RULE_PARAMETERS:
                value = text(name_value(entries, name))
                if value:
                    found[name] = _short(value)
    return found


def cover_up_rules(rows: pd.DataFrame, values: dict[str, Any]) -> pd.DataFrame:
    """Post-process ``hiding-inbox-rule`` rows: what the rule hides, its settings, the tie in words.

    Args:
        rows: The detection's rows: verdict, mailbox, operation, target (rule name), tied_by, tie_value,
            deletes, moves, reads, forwards, words (0/1 signs of rule_signs), raws and the finding columns.
        values: Pack parameters (unused).

    Returns:
        The rows with ``hiding``, ``detail`` and ``tie`` added, raws dropped.
    """
    out = []
    for rec in rows.to_dict("records"):
        signs = [words for sign, words in SIGNS if int(rec.get(sign) or 0)]
        if int(rec.get("words") or 0) and signs:
            signs.append("with conditions on security words")
        settings = rule_settings(_values(rec.get("raws")))
        shown = "; ".join(f"{k}={v}" for k, v in settings.items() if k not in ("Name", "RuleName"))
        tied = rec.get("tied_by")
        out.append({**{k: v for k, v in rec.items() if k != "raws"},
                    "hiding": ", ".join(signs) or "no hiding action recognised",
                    "detail": f"; {shown}" if shown else "",
                    "tie": "" if tied is None or pd.isna(tied) else
                    "; " + tie_words(tied, rec.get("tie_value"), rec.get("verdict"))})
    return pd.DataFrame(out) if out else rows.iloc[0:0]


POSTPROCESSORS: dict[str, Callable[[pd.DataFrame, dict[str, Any]], pd.DataFrame]] = {
    "cover_up_mail": cover_up_mail,
    "cover_up_rules": cover_up_rules,
}


def _ids(evidence: Any) -> set[str]:
    return {str(r) for r in _values(evidence) if r is not None}


def counted_findings(findings: pd.DataFrame) -> pd.DataFrame:
    """Findings without the ``persistence-cover`` ones whose every record a confirmed or likely
    cover-up finding already reports (one rule change is one piece of evidence, not two).

    Args:
        findings: Findings (schema.FINDING_COLUMNS: detection, verdict, evidence ...).
    """
    strong = findings[findings["detection"].isin(DETECTIONS) & findings["verdict"].isin(["confirmed", "likely"])]
    covered = {r for ev in strong["evidence"] for r in _ids(ev)}
    if not covered:
        return findings
    cover = (findings["detection"] == "persistence-cover").to_numpy(dtype=bool)
    # each persistence-cover finding's records read once (every finding's were read twice: 0.15 s at 3,696 findings)
    dup = np.zeros(len(findings), dtype=bool)
    dup[cover] = [bool(ids) and ids <= covered for ids in map(_ids, findings.loc[cover, "evidence"])]
    return findings[~dup]


def cover_up_evidence(engine: Engine, findings: pd.DataFrame) -> pd.DataFrame:
    """The evidence records of the confirmed and likely cover-up findings, with their ties.

    Args:
        engine: A prepared engine (the pack's view ``cover_up_events`` exists).
        findings: Findings (schema.FINDING_COLUMNS).

    Returns:
        Columns record_id, time, operation, mailbox, target, kind (mail / rule), tied_by, tie_verdict,
        message_ids; empty when there is no such finding.
    """
    strong = findings[findings["detection"].isin(DETECTIONS) & findings["verdict"].isin(["confirmed", "likely"])]
    ids = sorted({r for ev in strong["evidence"] for r in _ids(ev)})
    columns = ["record_id", "time", "operation", "mailbox", "target", "kind", "tied_by", "tie_verdict", "message_ids"]
    if not ids:
        return pd.DataFrame({c: pd.Series([], dtype="object") for c in columns})
    engine.register("cover_up_ids", pd.DataFrame({"record_id": pd.Series(ids, dtype="str")}))
    return engine.run_sql(EVIDENCE_SQL)


def cover_up(findings: pd.DataFrame, evidence: pd.DataFrame,
             mailboxes: Iterable[str]) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The cover-up entries of scope.json: all of them, and those of each scoped mailbox.

    Args:
        findings: Findings (schema.FINDING_COLUMNS: finding_id, detection, verdict, first, last, mailbox,
            evidence). Only confirmed and likely ``mail-cover-up`` / ``hiding-inbox-rule`` ones count.
        evidence: :func:`cover_up_evidence` (record_id, operation, target, kind, tied_by, message_ids).
        mailboxes: UPNs of the compromised mailboxes of the scope.

    Returns:
        ``(entries, by_mailbox)``: entries are ``{"mailbox", "verdict", "operation", "first", "last",
        "items": [message ids], "rule": name or None, "tied_by": "exchange session|token|session|address",
        "finding_id"}`` sorted by time; by_mailbox holds, per scoped mailbox with any, its entries
        without the mailbox key.
    """
    strong = findings[findings["detection"].isin(DETECTIONS) & findings["verdict"].isin(["confirmed", "likely"])]
    by_id = {str(r["record_id"]): r for r in evidence.to_dict("records")}
    entries = []
    for f in strong.to_dict("records"):
        rows = [by_id[r] for r in sorted(_ids(f["evidence"])) if r in by_id]
        ops = sorted({str(r["operation"]) for r in rows if r.get("operation")})
        ties = sorted({str(r["tied_by"]) for r in rows if r.get("tied_by") is not None and not pd.isna(r["tied_by"])})
        rule = f["detection"] == RULE_DETECTION
        targets = sorted({str(r["target"]) for r in rows if r.get("target") is not None and not pd.isna(r["target"])})
        entries.append({
            "mailbox": f["mailbox"], "verdict": f["verdict"], "operation": ", ".join(ops) or None,
            "first": iso(f["first"]), "last": iso(f["last"]),
            "items": sorted({str(m) for r in rows for m in _values(r.get("message_ids")) if m}),
            "rule": (targets[0] if targets else None) if rule else None,
            "tied_by": ties[0] if ties else None, "finding_id": f["finding_id"],
        })
    entries.sort(key=lambda e: (e["first"] or "", e["finding_id"]))
    scoped = set(mailboxes)
    by_mailbox: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        if e["mailbox"] in scoped:
            by_mailbox.setdefault(str(e["mailbox"]), []).append({k: v for k, v in e.items() if k != "mailbox"})
    return entries, by_mailbox
