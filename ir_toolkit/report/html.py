"""The shareable HTML report: one self-contained file, no code, no external requests.

Sections: executive summary (its first sentence: what the evidence can and cannot prove,
:mod:`ir_toolkit.report.headline`), what the evidence holds (:mod:`ir_toolkit.report.evidence`:
per-source periods, holes, what the case cannot prove), scope tables (CASE/scope.json), timeline and graph figures
(:mod:`ir_toolkit.report.plots` when installed, as embedded PNG), findings with their
explanation and evidence references, method and data coverage (collection ledger,
imports, events per source), evidence hashes and the custody log summary.

Every string from the case is attacker-controlled: the Jinja2 environment is sandboxed
with autoescape on, nothing is marked safe, and a Content-Security-Policy forbids
scripts and any request other than embedded ``data:`` images. With ``redact=True`` every
string that reaches the page (figures included: their frames are redacted before
plotting) goes through :class:`ir_toolkit.report.redact.Redactor`.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from ir_toolkit import __version__
from ir_toolkit.case import Case
from ir_toolkit.case.lock import writes_case
from ir_toolkit.report import casedata, casequery, identities, sections
from ir_toolkit.report import evidence as holdings
from ir_toolkit.report.display import fmt, table
from ir_toolkit.report.figures import report_figures
from ir_toolkit.report.headline import headline
from ir_toolkit.report.memo import remember
from ir_toolkit.report.redact import Redactor, case_key, for_case
from ir_toolkit.textsafe import csv_safe_column, scrub_text
from ir_toolkit.timeutil import iso, now_utc

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"  # written literally in the template
EVIDENCE_REFS = 8  # evidence references looked up per finding
CUSTODY_ROWS = 12  # most recent custody entries listed
FIGURE_COLUMNS = ["time", "source", "operation", "result", "user", "mailbox", "app_id", "app_name", "client_app_id",
                  "ip", "country", "asn", "user_agent", "session_id", "token_id", "mail_access_type", "items",
                  "message_ids", "folders", "target", "record_id"]


def tenant_counts(case: Case, actor: pd.DataFrame, where: str | None, tz: str) -> dict[str, pd.DataFrame]:
    """What the figures draw of the whole tenant, counted in DuckDB (never every event in pandas).

    Returns:
        ``daily`` (day, source, events), ``week`` (day, hour, events: hour of week in ``tz``) and
        ``mailboxes`` (mailbox, bucket, events, items: the mailboxes the actor's mail access reached).
    """
    mail = actor[actor["source"] == "mail_access"]
    return {"daily": casequery.daily_source_counts(case, where),
            "week": casequery.hour_of_week_counts(case, tz=tz, where=where) if len(actor) else pd.DataFrame(),
            "mailboxes": casequery.mailbox_counts(case, set(mail["mailbox"].dropna()), where, tz)}


def _summary(scope: dict[str, Any] | None, findings: pd.DataFrame, cov: pd.DataFrame, tz: str,
             profile: dict[str, Any] | None = None) -> list[str]:
    """The executive summary as plain sentences, the first saying what the evidence can and cannot prove."""
    lines: list[str] = [headline(scope, profile, tz)]
    if scope and scope.get("compromised_mailboxes"):
        boxes = scope["compromised_mailboxes"]
        conf = Counter(str(b.get("confidence", "unknown")) for b in boxes)
        window = scope.get("window") or {}
        items = sum(int(b.get("items_accessed") or 0) for b in boxes)
        lines.append(
            f"Forged-token access was found: {len(boxes)} mailbox(es) compromised ("
            + ", ".join(f"{k}: {v}" for k, v in sorted(conf.items())) + f"), {items} distinct message(s) accessed.")
        if window.get("first_malicious"):
            lines.append(f"Malicious activity from {fmt(window.get('first_malicious'), tz)} "
                         f"to {fmt(window.get('last_malicious'), tz)}.")
        lines.append(f"The actor used {len(scope.get('actor_ips', []))} address(es) and "
                     f"{len(scope.get('actor_apps', []))} application(s).")
    elif scope is not None:
        lines.append("Scoping found no compromised mailbox.")
    counted = findings[findings["verdict"].isin(sections.FINDING_VERDICTS)]
    if not counted.empty:
        by = counted.groupby("detection").size().sort_values(ascending=False)
        rest = len(findings) - len(counted)
        lines.append(f"{len(counted)} finding(s) from {len(by)} detection(s): "
                     + ", ".join(f"{k} ({v})" for k, v in by.items()) + "."
                     + (f" {rest} unverifiable or benign result(s) are not counted (Appendix B)." if rest else ""))
    elif not findings.empty:
        lines.append(f"No finding: {len(findings)} unverifiable or benign result(s) only (Appendix B).")
    elif scope is None:
        lines.append(casedata.NO_FINDINGS[0].upper() + casedata.NO_FINDINGS[1:] + ".")
    signin = cov[cov["source"].astype(str).str.startswith("signin_")] if len(cov) else cov
    judged = (scope or {}).get("signin_coverage") or {}
    if len(signin) and judged.get("start") and judged.get("judged") is False:
        lines.append(f"Sign-in logs cover {fmt(judged['start'], tz)} to {fmt(judged.get('end'), tz)}, but not "
                     "every source that could have issued a delegated token is held: none can be proven forged.")
    elif len(signin) and judged.get("start"):
        # the coverage the detections judged tokens in (every user sign-in source present), not the union
        lines.append(f"Sign-in logs cover {fmt(judged['start'], tz)} to {fmt(judged.get('end'), tz)} "
                     "(the period in which a token can be proven issued or forged).")
    elif len(signin):
        lines.append(f"Sign-in logs cover {fmt(signin['first'].min(), tz)} to {fmt(signin['last'].max(), tz)}.")
    elif len(cov):
        lines.append("The case holds no sign-in logs: forged tokens cannot be told from issued ones.")
    else:
        lines.append("The case holds no events yet.")
    return lines


def _evidence_refs(case: Case, findings: pd.DataFrame) -> dict[str, list[str]]:
    """For each finding, up to EVIDENCE_REFS 'file#position' references of its supporting events
    ('record ID' where the event names no position)."""
    pairs = zip(findings["finding_id"], findings["evidence"], strict=True)
    wanted = {fid: list(ev)[:EVIDENCE_REFS] for fid, ev in pairs if ev is not None}
    ids = sorted({i for v in wanted.values() for i in v})
    where: dict[str, str] = {}
    if ids and case.events.sources():

        def look_up() -> pd.DataFrame:
            con = case.duckdb()
            con.register("_wanted", pd.DataFrame({"record_id": ids}))
            return con.sql("SELECT e.record_id, any_value(e.evidence) AS evidence FROM events e "
                           "JOIN _wanted w USING (record_id) GROUP BY e.record_id ORDER BY e.record_id").df()

        # every record id of the store is read for it: kept for the next report (ir_toolkit.report.memo)
        found = remember(case, "evidence_refs", [hashlib.sha256("\n".join(ids).encode()).hexdigest()], look_up)
        for rid, evidence in zip(found["record_id"], found["evidence"], strict=True):
            where[rid] = evidence if isinstance(evidence, str) else ""
    return {fid: [where[r] if where.get(r) else f"record {r}" for r in refs] for fid, refs in wanted.items()}


def _boxes(scope: dict[str, Any] | None) -> list[str]:
    return [str(b.get("upn")) for b in (scope or {}).get("compromised_mailboxes", []) if b.get("upn")]


def write_messages(case: Case, messages: pd.DataFrame) -> Path:
    """Write CASE/reports/messages.csv: every message the actor opened, with the pseudonym redacted reports show.

    Columns mailbox, InternetMessageId, folder, first_access, last_access (ISO UTC), binds, pseudonym
    (the ``msg-...`` local part a redacted report gives the id). Cells are neutralised for spreadsheets.
    The file stays in the case with the redaction key: it is how the case holder resolves a pseudonym.
    """
    path = case.reports_dir / "messages.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    red = Redactor(case_key(case))
    out = pd.DataFrame({
        "mailbox": messages["mailbox"], "InternetMessageId": messages["message_id"], "folder": messages["folder"],
        "first_access": [iso(t) for t in messages["first"]], "last_access": [iso(t) for t in messages["last"]],
        "binds": messages["binds"],
        "pseudonym": [red.message_id(str(m)).strip("<>").split("@")[0] for m in messages["message_id"]],
    }).sort_values(["mailbox", "first_access", "InternetMessageId"])
    for col in out.columns:
        out[col] = csv_safe_column(out[col])
    with case.recording("report.messages", rows=len(out)) as w:  # recorded: verify tells a later change
        out.to_csv(w.path(path), index=False)
    return path


def _custody(case: Case, tz: str, text: Callable[[str], str]) -> dict[str, Any]:
    entries = case.custody()
    counts = Counter(e.get("action", "?") for e in entries)
    recent = [{"time": e.get("time"), "actor": e.get("actor"), "action": e.get("action"),
               "details": ", ".join(f"{k}={v}" for k, v in (e.get("details") or {}).items())}
              for e in entries[-CUSTODY_ROWS:]]
    return {"total": len(entries), "first": text(fmt(entries[0]["time"], tz)) if entries else "",
            "last": text(fmt(entries[-1]["time"], tz)) if entries else "",
            "actors": sorted({text(str(e.get("actor"))) for e in entries}),
            "counts": table(pd.DataFrame(sorted(counts.items()), columns=["action", "entries"]),
                             ["action", "entries"], tz, text),
            "recent": table(recent, ["time", "actor", "action", "details"], tz, text)}


def build_context(case: Case, redact: bool = False, tz: str = "UTC", networks: Iterable[str] = (),
                  classification: str = "", mailbox: str = "", progress: bool = False) -> dict[str, Any]:
    """Everything the template shows, as display strings and data URIs (``progress``: a bar over the figures).

    With ``mailbox`` the report is about that mailbox only: its own access, messages and findings,
    the rest of the tenant as counts; redaction spares the mailbox's own address (it is the subject).
    """
    findings = casedata.load_findings(case)
    scope = casedata.load_scope(case)
    subject = mailbox.strip().lower()
    others: dict[str, int] = {}
    if subject:
        findings, scope, others = _about_mailbox(findings, scope, subject)
    # the actor's entities stay readable: the scope's addresses, applications and user agents, nothing else
    actor_ips = {str(a.get("ip")) for a in (scope or {}).get("actor_ips", []) if a.get("ip")}
    keep = {str(a.get(k)) for a in (scope or {}).get("actor_apps", []) for k in ("app_id", "name") if a.get(k)}
    keep |= {str(u) for u in (scope or {}).get("actor_user_agents", []) or [] if u}
    people = identities.directory(case)
    spare = [subject, *identities.names_of(case, subject)] if subject else []
    redactor: Redactor | None = for_case(case, networks, actor_ips=actor_ips, keep=keep,
                                         spare=spare) if redact else None
    text: Callable[[str], str] = redactor.text if redactor else (lambda s: s)
    cov = casedata.coverage(case)
    # the actor's events: the scope's addresses and the tokens and sessions of confirmed and likely findings only;
    # of the rest of the tenant only counts (a tenant's month does not fit in pandas)
    actor = casequery.actor_events(case, findings, scope, mailbox=subject, columns=FIGURE_COLUMNS)
    tenant = tenant_counts(case, actor, casequery.window_where(mailbox=subject), tz)
    refs = _evidence_refs(case, findings) if not findings.empty else {}
    profile = holdings.case_profile(case, scope)
    messages = casedata.messages_accessed(actor, _boxes(scope))
    write_messages(case, messages)
    if redactor is not None:
        tenant = {k: _keep_attrs(redactor.frame(v), v) for k, v in tenant.items()}
        actor, findings = redactor.frame(actor), redactor.frame(findings)
        messages, people = redactor.frame(messages), redactor.frame(people)
        scope = redactor.obj(scope)
        refs = redactor.obj(refs)
        profile = redactor.obj(profile)  # throttled mailboxes are UPNs; hole reasons name evidence files
    scope = scope or {}
    lead = headline(scope or None, profile, tz)
    return {
        "title": text(f"Incident report: {case.manifest['case']} ({case.tenant})"
                      + (f", mailbox {subject}" if subject else "")),
        "subject": text(subject), "others": others,
        "case": text(str(case.manifest["case"])), "tenant": text(case.tenant), "cloud": case.cloud,
        "generated": fmt(now_utc(), tz), "tz": tz, "tool": f"ir_toolkit {__version__}", "redacted": redact,
        "classification": classification, "classification_css": css_text(classification),
        "summary": [text(s) for s in _summary(scope or None, findings, cov, tz, profile)],
        "answer": sections.answer(scope, findings, profile, lead, messages, people, tz, text, redact),
        "key_events": sections.key_events(scope, findings, tz, text),
        "recommend": sections.recommendations(scope, findings, set(cov["source"]) if len(cov) else set(), tz, text),
        "holdings": holdings.view(profile, scope or None, tz, text),
        "has_scope": bool(scope),
        "window": {k: fmt(v, tz) for k, v in (scope.get("window") or {}).items()},
        "signin_coverage": {k: fmt(v, tz) for k, v in (scope.get("signin_coverage") or {}).items()},
        "mailboxes": table(scope.get("compromised_mailboxes", []), ["upn", "confidence", "first", "last", "events",
                                                                      "items_accessed", "reasons"], tz, text),
        "mailbox_counts": sections.mailbox_counts(actor, messages, _boxes(scope), tz, text),
        "ips": table(_actor_ips(scope, actor), ["ip", "country", "asn", "first", "last", "events", "reasons"], tz,
                     text),
        "apps": table(scope.get("actor_apps", []), ["app_id", "name"], tz, text),
        "agents": table(casedata.actor_user_agents(actor), ["user_agent", "events", "first", "last"], tz, text),
        "folders": table(casedata.actor_folders(actor), ["mailbox", "folder", "events", "first", "last"], tz, text),
        "messages_by_mailbox": sections.message_appendix(messages, tz, text), "messages_total": len(messages),
        "figures": report_figures(case, tenant, actor, tz, progress),
        "by_detection": sections.per_detection(findings, text),
        "finding_groups": sections.finding_groups(findings, refs, sections.FINDING_VERDICTS, tz, text),
        "appendix_groups": sections.finding_groups(findings, refs, sections.APPENDIX_VERDICTS, tz, text,
                                                   sections.APPENDIX_COLUMNS),
        "no_findings": casedata.NO_FINDINGS, "has_findings": not findings.empty,
        "coverage": table(cov, ["source", "description", "events", "first", "last"], tz, text),
        "gaps": [text(g) for g in casedata.gaps(case)],
        "ledger": table(casedata.ledger(case), ["source", "slice_start", "slice_end", "records", "pages", "retries",
                                                 "complete", "gap"], tz, text),
        "preflight": table(casedata.preflight(case), ["name", "backend", "available", "reason", "retention_days",
                                                       "oldest_record", "expires_on", "days_left"], tz, text),
        "preflight_at": text(fmt((case.manifest.get("preflight") or {}).get("checked_at"), tz)),
        "imports": table(casedata.imports(case), ["path", "format", "records", "imported", "duplicates",
                                                   "quarantined", "sha256"], tz, text),
        "custody": _custody(case, tz, text),
    }


def _keep_attrs(frame: pd.DataFrame, source: pd.DataFrame) -> pd.DataFrame:
    frame.attrs.update(source.attrs)
    return frame


def _about_mailbox(findings: pd.DataFrame, scope: dict[str, Any] | None,
                   subject: str) -> tuple[pd.DataFrame, dict[str, Any] | None, dict[str, int]]:
    """Findings and scope narrowed to one mailbox, and what the rest of the tenant holds, as counts."""
    mine = (findings["mailbox"].fillna("").str.lower() == subject) \
        | (findings["user"].fillna("").str.lower() == subject)
    rest = findings[~mine]
    others = {"findings": int(rest["verdict"].isin(sections.FINDING_VERDICTS).sum()),
              "mailboxes": int(rest["mailbox"].dropna().nunique())}
    if scope is None:
        return findings[mine], None, others
    boxes = scope.get("compromised_mailboxes") or []
    others["compromised"] = sum(1 for b in boxes if str(b.get("upn", "")).lower() != subject)
    mine_box = [b for b in boxes if str(b.get("upn", "")).lower() == subject]
    window = {"first_malicious": mine_box[0].get("first"), "last_malicious": mine_box[0].get("last")} if mine_box \
        else {}  # this mailbox's own period, not the tenant's
    narrowed = {**scope, "compromised_mailboxes": mine_box, "window": window,
                "throttled_mailboxes": [t for t in scope.get("throttled_mailboxes") or []
                                        if str(t.get("upn", "")).lower() == subject],
                "cover_up": [c for c in scope.get("cover_up") or [] if str(c.get("mailbox", "")).lower() == subject]}
    return findings[mine], narrowed, others


def css_text(value: str, limit: int = 120) -> str:
    """``value`` reduced to characters that are safe inside a CSS string in a <style> element.

    The classification line is printed in every page's margin through ``@page`` content; quotes,
    backslashes, angle brackets and ampersands could end the string or the element, so they go.
    """
    kept = "".join(c for c in value if c.isalnum() or c in " .,:;/()+-_=#*[]!?%")
    return " ".join(kept.split())[:limit]


def _actor_ips(scope: dict[str, Any], actor: pd.DataFrame) -> list[dict[str, Any]]:
    """The scope's actor addresses with the country and ASN the case's events give them (where known)."""
    known = actor.dropna(subset=["ip"]).groupby("ip").agg(
        country=("country", lambda s: ", ".join(sorted({str(v) for v in s.dropna() if str(v) not in ("", "-")}))),
        asn=("asn", lambda s: ", ".join(sorted({str(v) for v in s.dropna() if str(v) not in ("", "-")})))) \
        if len(actor) else pd.DataFrame(columns=["country", "asn"])
    rows = []
    for a in scope.get("actor_ips") or []:
        ip = a.get("ip")
        geo = known.loc[ip] if ip in known.index else {}
        rows.append({**a, "country": geo.get("country") or "unknown", "asn": geo.get("asn") or "unknown"})
    return rows


def render_html(context: dict[str, Any]) -> str:
    """Render the report template (sandboxed, autoescaped)."""
    env = SandboxedEnvironment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**context)


@writes_case("report")
def render_report(case: Case | str | Path, out: str | Path | None = None, redact: bool = False,
                  tz: str = "UTC", networks: Iterable[str] = (), classification: str = "",
                  mailbox: str = "", progress: bool = False) -> Path:
    """Write the self-contained HTML report.

    Args:
        case: The case (or its folder).
        out: Output file (default CASE/reports/report.html).
        redact: Pseudonymise UPNs, names, the tenant's domains and internal addresses.
        tz: Display time zone (an IANA name such as ``Europe/Berlin``); data stays UTC inside.
        networks: Extra internal networks (CIDR) to pseudonymise with ``redact``.
        classification: A classification line printed at the top of the report and of every printed
            page (e.g. "TLP:AMBER - privileged and confidential").
        mailbox: Report about this mailbox only (the single-mailbox playbook): the rest of the tenant
            appears as counts, and redaction leaves this mailbox's address readable.
        progress: Show a progress bar over the figures (the longest part).

    Returns:
        The path of the written report.
    """
    case = case if isinstance(case, Case) else Case.open(case)
    path = Path(out) if out else case.reports_dir / "report.html"
    html = scrub_text(render_html(build_context(case, redact=redact, tz=tz, networks=networks,
                                                classification=classification, mailbox=mailbox,
                                                progress=progress)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with case.recording("report.render", path=str(path), redacted=redact, tz=tz, mailbox=mailbox or None) as w:
        w.path(path).write_text(html, encoding="utf-8")
    return path
