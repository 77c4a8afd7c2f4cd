"""The report's reader-facing sections: the answer, key events, recommendations, people, findings.

A CISO reads the first page (what happened, which mailboxes and messages, when, how strong the
evidence is and what it cannot show), then the short dated list of key events and what to do
now; the details follow. Every function returns display strings (``text`` applied: redaction or
identity) and is pure: the case is read by :mod:`ir_toolkit.report.html`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from ir_toolkit.analysis.family import family_sentence
from ir_toolkit.report import casedata
from ir_toolkit.report.display import count, fmt, table
from ir_toolkit.timeutil import now_utc, parse_time

Text = Callable[[str], str]
FINDING_VERDICTS = ("confirmed", "likely", "possible")  # what the report counts as findings
APPENDIX_VERDICTS = ("unverifiable", "benign")  # results listed in the appendix, never counted as findings
VERDICT_ORDER = {v: i for i, v in enumerate((*FINDING_VERDICTS, *APPENDIX_VERDICTS))}
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "informational": 4}
BODY_REFS = 1  # evidence references shown per finding (the rest counted)
KEY_EVENTS = 14
ANSWER_MAILBOXES = 10  # mailboxes named on the first page (strongest first); the rest in the details
#: Rows shown per detection of the weak verdicts (possible; unverifiable and benign in the appendix): the
#: earliest first, the rest counted (all are in CASE/findings.json). Confirmed and likely are never cut.
WEAK_ROWS = 30
WEAK_VERDICTS = ("possible", "unverifiable", "benign")
FINDING_COLUMNS = ["first", "last", "mailbox", "ip", "events", "explanation", "evidence"]
APPENDIX_COLUMNS = ["first", "mailbox", "ip", "events", "explanation", "evidence"]


def finding_counts(findings: pd.DataFrame) -> dict[str, int]:
    """Results per verdict, plus ``findings``: confirmed + likely + possible (what a reader calls findings)."""
    by = findings["verdict"].value_counts().to_dict() if len(findings) else {}
    out = {v: int(by.get(v, 0)) for v in VERDICT_ORDER}
    out["findings"] = sum(out[v] for v in FINDING_VERDICTS)
    out["other"] = int(len(findings)) - out["findings"] - sum(out[v] for v in APPENDIX_VERDICTS)
    return out


def per_detection(findings: pd.DataFrame, text: Text) -> dict[str, Any]:
    """One row per detection with a column per verdict and a total that adds up, plus a totals row."""
    cols = ["detection", "title", *VERDICT_ORDER, "total"]
    if findings.empty:
        return {"columns": cols, "rows": []}
    pivot = findings.pivot_table(index="detection", columns="verdict", values="finding_id", aggfunc="size",
                                 fill_value=0).reindex(columns=list(VERDICT_ORDER), fill_value=0)
    pivot["total"] = findings.groupby("detection").size()
    titles = findings.groupby("detection")["title"].first()
    pivot = pivot.sort_values([*FINDING_VERDICTS, "total"], ascending=False)
    numbers = (*VERDICT_ORDER, "total")
    rows = [[text(str(d)), text(str(titles.get(d, ""))), *[str(int(pivot.loc[d, v])) for v in numbers]]
            for d in pivot.index]
    rows.append(["all detections", "", *[str(int(pivot[v].sum())) for v in (*VERDICT_ORDER, "total")]])
    return {"columns": cols, "rows": rows}


def finding_groups(findings: pd.DataFrame, refs: dict[str, list[str]], verdicts: tuple[str, ...], tz: str,
                   text: Text, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Findings grouped per detection and verdict (strongest first), each group a compact table.

    Every row keeps its evidence: the first :data:`BODY_REFS` references and how many more there are.
    """
    columns = columns or FINDING_COLUMNS
    part = findings[findings["verdict"].isin(verdicts)]
    if part.empty:
        return []
    part = part.assign(_v=part["verdict"].map(VERDICT_ORDER), _s=part["severity"].map(SEVERITY_ORDER).fillna(9))
    order = part.groupby("detection").agg(v=("_v", "min"), s=("_s", "min")).sort_values(["v", "s"]).index
    groups = []
    for detection in order:
        for verdict in verdicts:
            rows = part[(part["detection"] == detection) & (part["verdict"] == verdict)].sort_values("first")
            if rows.empty:
                continue
            total = len(rows)
            if verdict in WEAK_VERDICTS:
                rows = rows.head(WEAK_ROWS)
            shown = rows.assign(evidence=[
                "; ".join(refs.get(fid, [])[:BODY_REFS])
                + (f" (+{count(ev) - BODY_REFS} more)" if count(ev) > BODY_REFS else "")
                for fid, ev in zip(rows["finding_id"], rows["evidence"], strict=True)])
            groups.append({"id": f"findings-{detection}-{verdict}", "detection": text(str(detection)),
                           "title": text(str(rows["title"].iloc[0])), "verdict": verdict, "count": total,
                           "more": total - len(rows),
                           "severity": str(rows["severity"].iloc[0]),
                           "table": table(shown, columns, tz, text)})
    return groups


def _boxes(scope: dict[str, Any]) -> list[dict[str, Any]]:
    rank = {"confirmed": 0, "likely": 1, "possible": 2}
    boxes = list(scope.get("compromised_mailboxes") or [])
    return sorted(boxes, key=lambda b: (rank.get(str(b.get("confidence")), 9), -int(b.get("items_accessed") or 0)))


def answer(scope: dict[str, Any], findings: pd.DataFrame, profile: dict[str, Any] | None, headline: str,
           messages: pd.DataFrame, people: pd.DataFrame, tz: str, text: Text, redacted: bool) -> dict[str, Any]:
    """The first page: what happened, which mailboxes and messages, when, evidence strength, what it cannot show."""
    boxes = _boxes(scope)
    window = scope.get("window") or {}
    counts = finding_counts(findings)
    per_box = messages.groupby("mailbox").size().to_dict() if len(messages) else {}
    titles = people.set_index("upn") if len(people) else pd.DataFrame()
    listed = []
    for b in boxes:
        upn = str(b.get("upn", ""))
        who = titles.loc[upn] if upn in titles.index else None
        role = "" if who is None or redacted else ", ".join(
            str(v) for v in (who.get("job_title"), who.get("department")) if isinstance(v, str) and v)
        name = "" if who is None or not isinstance(who.get("display_name"), str) else str(who.get("display_name"))
        listed.append({"upn": text(upn), "name": text(name), "role": text(role),
                       "confidence": str(b.get("confidence", "")), "messages": int(per_box.get(upn, 0)),
                       "items": int(b.get("items_accessed") or 0), "first": fmt(b.get("first"), tz),
                       "last": fmt(b.get("last"), tz)})
    conf = {c: sum(1 for b in boxes if b.get("confidence") == c) for c in ("confirmed", "likely", "possible")}
    if boxes:
        what = (f"An actor read mail in {len(boxes)} mailbox(es) with access tokens the tenant never issued "
                "(forged-token access, the technique of the Storm-0558 breach of 2023).")
    elif scope:
        ruled = [str(f.get("member")) for f in scope.get("family") or [] if f.get("status") == "ruled_in"]
        what = "Scoping found no compromised mailbox." + (
            f" Yet {', '.join(ruled)} {'was' if len(ruled) == 1 else 'were'} ruled in (token-abuse family, below): "
            "the actor's activity is in the findings and the key events." if ruled else "")
    else:
        what = "The breach has not been scoped yet: no conclusion can be drawn."
    strength = (", ".join(f"{n} {c}" for c, n in conf.items() if n) + " mailbox(es). " if boxes else "") + (
        f"{counts['findings']} finding(s) (confirmed {counts['confirmed']}, likely {counts['likely']}, possible "
        f"{counts['possible']}); {counts['unverifiable']} unverifiable and {counts['benign']} benign result(s) are "
        "not findings and are listed in Appendix B.")
    cannot = [text(str(s)) for s in (profile or {}).get("cannot_prove") or []]
    return {
        "headline": text(headline), "what": text(what), "mailboxes": listed[:ANSWER_MAILBOXES],
        "mailboxes_more": max(0, len(listed) - ANSWER_MAILBOXES),
        "messages": int(len(messages)), "when_first": fmt(window.get("first_malicious"), tz),
        "when_last": fmt(window.get("last_malicious"), tz), "strength": strength,
        "confirmed_means": "Confirmed: the mailbox was read with a token that no sign-in issued while every sign-in "
                           "source that could have issued it was held without gaps. Likely: several independent "
                           "indicators, but not that proof.",
        "cannot": cannot[:4], "cannot_more": max(0, len(cannot) - 4),
        "addresses": len(scope.get("actor_ips") or []), "apps": len(scope.get("actor_apps") or []),
        **family_answer(scope, text),
    }


FAMILY_LABELS = {"ruled_in": "ruled in", "ruled_out": "ruled out", "not_judged": "not judged"}


def family_answer(scope: dict[str, Any], text: Text) -> dict[str, Any]:
    """The token-abuse family on the first page: one sentence, then each member's status and reason.

    From scope.json ``family`` (ir_toolkit.analysis.family); a scope written before it has none (empty).
    """
    family = list(scope.get("family") or [])
    if not family:
        return {"family_sentence": "", "family": []}
    return {"family_sentence": text(family_sentence(family)),
            "family": [{"member": text(str(f.get("member"))), "status": str(f.get("status")),
                        "label": FAMILY_LABELS.get(str(f.get("status")), str(f.get("status"))),
                        "reason": text(str(f.get("reason", "")))} for f in family]}


def key_events(scope: dict[str, Any], findings: pd.DataFrame, tz: str, text: Text) -> list[dict[str, str]]:
    """A short dated list: first and last actor activity, first access per mailbox, cover-up, rules, log limits."""
    events: list[tuple[pd.Timestamp, str]] = []

    def add(when: Any, what: str) -> None:
        ts = parse_time(when)
        if ts is not None:
            events.append((ts, what))

    window = scope.get("window") or {}
    ips = sorted(scope.get("actor_ips") or [], key=lambda a: str(a.get("first")))
    add(window.get("first_malicious"), "First actor activity" + (f" (from {ips[0].get('ip')})" if ips else ""))
    for b in _boxes(scope):
        add(b.get("first"), f"First actor access to {b.get('upn')} ({b.get('confidence')})")
    for c in scope.get("cover_up") or []:
        items = len(c.get("items") or [])
        add(c.get("first"), f"{c.get('operation')} in {c.get('mailbox')} ("
                            + (f"{items} item(s), " if items else "") + f"{c.get('verdict')})")
    strong = findings[findings["verdict"].isin(("confirmed", "likely"))] if len(findings) else findings
    for det in ("hiding-inbox-rule", "persistence-cover", "indicator-match"):
        rows = strong[strong["detection"] == det] if len(strong) else strong
        if len(rows):
            first = rows.sort_values("first").iloc[0]
            add(first["first"], f"{first['title']}" + (f" ({first['mailbox']})" if first.get("mailbox") else ""))
    add(window.get("last_malicious"), "Last actor activity seen")
    coverage = scope.get("signin_coverage") or {}
    add(coverage.get("start"), "Sign-in logs held from here: tokens used earlier cannot be checked against them")
    events.sort(key=lambda e: e[0])
    if len(events) > KEY_EVENTS:  # keep the first and last, drop the middle's repeats
        events = events[: KEY_EVENTS - 1] + events[-1:]
    return [{"when": fmt(t, tz), "what": text(w)} for t, w in events]


def recommendations(scope: dict[str, Any], findings: pd.DataFrame, held: set[str], tz: str,
                    text: Text) -> dict[str, Any]:
    """What to do now, and when the logs that prove the breach age out of the tenant's retention."""
    boxes = _boxes(scope)
    ips = [str(a.get("ip")) for a in scope.get("actor_ips") or [] if a.get("ip")]
    apps = [str(a.get("name") or a.get("app_id")) for a in scope.get("actor_apps") or [] if a.get("actor_specific",
                                                                                                 True)]
    steps = []
    if boxes:
        steps.append(f"Revoke the sessions and refresh tokens of the {len(boxes)} mailbox owner(s) listed above "
                     "(Revoke-MgUserSignInSession) and reset their credentials.")
    if ips:
        steps.append("Block the actor's address(es) at the edge and hunt for them in other logs: " + ", ".join(ips)
                     + ".")
    if apps:
        steps.append("Review the consent and credentials of the application(s) the actor used: " + ", ".join(apps)
                     + ".")
    rules = findings[findings["detection"].isin(("hiding-inbox-rule", "persistence-cover"))
                     & findings["verdict"].isin(("confirmed", "likely"))] if len(findings) else findings
    if len(rules):
        steps.append(f"Remove the inbox rules the actor created ({len(rules)} finding(s)) and restore the mail "
                     "they moved or deleted.")
    steps.append("Preserve the logs now: export the sign-in and audit logs before the dates below, when the "
                 "tenant's default retention deletes the records of the first malicious activity.")
    if boxes:
        steps.append("Notify the owners of the mailboxes and messages listed (Appendix A, CASE/reports/messages.csv) "
                     "as your legal obligations require; for a forged token, ask Microsoft about the signing key.")
    deadlines = casedata.retention_deadlines((scope.get("window") or {}).get("first_malicious"))
    now = now_utc()
    rows = []
    for source, days, ages_out in zip(deadlines["source"], deadlines["retention_days"], deadlines["ages_out"],
                                      strict=True):
        left = (pd.Timestamp(ages_out) - now).days
        rows.append({"source": source, "held": "held" if source in held else "not in the case",
                     "retention_days": days, "ages_out": ages_out,
                     "status": "aged out: only an earlier export holds it" if left < 0 else f"{left} day(s) left"})
    return {"steps": [text(s) for s in steps],
            "retention": table(rows, ["source", "held", "retention_days", "ages_out", "status"], tz, text)}


def mailbox_counts(actor: pd.DataFrame, messages: pd.DataFrame, boxes: list[str], tz: str, text: Text) -> dict:
    """Per compromised mailbox: messages named, Bind and Sync records, folders, first and last actor access."""
    mail = actor[(actor["source"] == "mail_access") & actor["mailbox"].isin(boxes)]
    rows = []
    for box in boxes:
        part = mail[mail["mailbox"] == box]
        kind = part["mail_access_type"].fillna("").str.lower()
        folders = {f for v in part["folders"].dropna() for f in list(v)} if "folders" in part else set()
        rows.append({"mailbox": box, "messages": int((messages["mailbox"] == box).sum()) if len(messages) else 0,
                     "bind_records": int((kind == "bind").sum()), "sync_records": int((kind == "sync").sum()),
                     "folders": len(folders), "first": part["time"].min() if len(part) else None,
                     "last": part["time"].max() if len(part) else None})
    return table(rows, ["mailbox", "messages", "bind_records", "sync_records", "folders", "first", "last"], tz, text)


def message_appendix(messages: pd.DataFrame, tz: str, text: Text) -> list[dict[str, Any]]:
    """The full message list, per mailbox and per day of first access (ids flowing, the day named once).

    Returns:
        One entry per mailbox: mailbox, count and days (each: day, folders, ids). The times, last
        access and bind counts of every message are in CASE/reports/messages.csv.
    """
    out: list[dict[str, Any]] = []
    if messages.empty:
        return out
    frame = messages.assign(day=[fmt(t, tz)[:10] for t in messages["first"]])
    for box, part in frame.sort_values(["mailbox", "first"]).groupby("mailbox", sort=False):
        days = []
        for day, rows in part.groupby("day", sort=True):
            folders = sorted({f for v in rows["folder"] for f in str(v).split(", ") if f})
            days.append({"day": day, "folders": text(", ".join(folders)),
                         "ids": [text(str(m)) for m in rows["message_id"]]})
        out.append({"mailbox": text(str(box)), "count": len(part), "days": days})
    return out
