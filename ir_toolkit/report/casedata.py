"""What the report and the notebooks read from a case, tolerant of parts not yet run or installed.

Detections, scoping, the timeline and the graph live in other modules that may be
missing (not installed, or not run on this case yet). Everything here degrades to an
empty result plus a note that says so, so the notebooks and the report always run.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from ir_toolkit.case import Case
from ir_toolkit.report.counts import tenant_counts
from ir_toolkit.schema import FINDING_COLUMNS, SOURCES, conform, empty_frame
from ir_toolkit.timeutil import parse_time

log = logging.getLogger(__name__)

NO_FINDINGS = "no findings yet: the detections have not been run on this case (or are not installed)"


def optional(module: str) -> ModuleType | None:
    """Import ``module`` if it is installed, else None (logged, not raised)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        log.info("%s not available: %s", module, exc)
        return None


def load_findings(case: Case) -> pd.DataFrame:
    """The case's findings (CASE/findings.parquet, else findings.json), or an empty frame.

    Returns:
        A DataFrame with the FINDING_COLUMNS of schema.py (finding_id, detection, title, severity,
        verdict, first, last, mailbox, user, ip, app_id, token_id, session_id, events,
        explanation, techniques, evidence).
    """
    parquet, js = case.root / "findings.parquet", case.root / "findings.json"
    frame: pd.DataFrame | None = None
    if parquet.exists():
        return _parquet_findings(parquet)
    if js.exists():
        data = json.loads(js.read_text(encoding="utf-8"))
        rows = data.get("findings", data) if isinstance(data, dict) else data
        frame = pd.DataFrame(rows)
    if frame is None or frame.empty:
        return empty_frame(FINDING_COLUMNS)
    return conform(frame, FINDING_COLUMNS)


# The findings last read: (the file's sha256, the frame). The playbook's notebooks 03-05 and its report run in one
# kernel and each read the same findings.parquet (0.15-0.3 s at a million events, 3,696 findings; its sha256 3 ms).
_READ: dict[str, tuple[str, pd.DataFrame]] = {}


def _parquet_findings(path: Path) -> pd.DataFrame:
    """findings.parquet as :func:`load_findings` gives it, parsed again only when its bytes changed.

    The file is known by its content (sha256), not by its size and time, which a rewrite within one tick of the
    file system's clock may keep. Each caller gets its own copy.
    """
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    kept = _READ.get("findings")
    if kept is None or kept[0] != digest:
        frame = pd.read_parquet(io.BytesIO(data))
        frame = empty_frame(FINDING_COLUMNS) if frame.empty else conform(frame, FINDING_COLUMNS)
        _READ["findings"] = kept = (digest, frame)  # one file kept at most
    return kept[1].copy()


def load_scope(case: Case) -> dict[str, Any] | None:
    """CASE/scope.json as a dict, or None when scoping has not run."""
    path = case.root / "scope.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def run_detections(case: Case, pack: str = "token-forgery", params: dict[str, Any] | None = None,
                   engine: str = "duckdb") -> pd.DataFrame:
    """Run the detection pack when it is installed (writes findings), else load what the case has.

    ``engine`` is the playbook parameter: duckdb, or spark (the notebook's active SparkSession, else local).
    """
    detect = optional("ir_toolkit.analysis.detect")
    if detect is None:
        return load_findings(case)
    frame: pd.DataFrame = detect.detect(case, pack=pack, params=params, write=True, engine=engine or None)
    return frame


def run_scope(case: Case, findings: pd.DataFrame | None = None, engine: str = "duckdb") -> dict[str, Any] | None:
    """Scope the breach when scoping is installed (writes scope.json), else load what the case has."""
    scope = optional("ir_toolkit.analysis.scope")
    if scope is None:
        return load_scope(case)
    result: dict[str, Any] = scope.scope(case, findings=findings, write=True, engine=engine or None)
    return result


def coverage(case: Case) -> pd.DataFrame:
    """Events per source with the first and last event time.

    Returns:
        Columns source, description, events, first, last (UTC); one row per source with events.
    """
    cols = ["source", "description", "events", "first", "last"]
    if not case.events.sources():
        return pd.DataFrame(columns=cols)
    frame = tenant_counts(case)["coverage"]  # counted with the figures' counts, kept for the next reader
    return frame.assign(description=frame["source"].map(lambda s: SOURCES.get(str(s), "")))[cols]


def ledger(case: Case) -> pd.DataFrame:
    """The collection ledger of case.json (one row per source and time slice), possibly empty."""
    rows = case.manifest.get("collection", {}).get("ledger", [])
    cols = ["source", "slice_start", "slice_end", "requested", "pages", "records", "retries",
            "throttle_wait_s", "complete", "gap"]
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=cols + [c for c in frame.columns if c not in cols])


def preflight(case: Case) -> pd.DataFrame:
    """The logging-readiness check recorded by ``ir-toolkit preflight --case`` (one row per source: name, backend,
    available, reason, retention_days, oldest_available, expires_on, days_left ...), possibly empty. For the
    report's method section: what could be read, and what the tenant no longer kept, when the case began."""
    return pd.DataFrame((case.manifest.get("preflight") or {}).get("sources", []))


def imports(case: Case) -> pd.DataFrame:
    """Evidence files with their import counts: path, sha256, size, source, format, records,
    imported, duplicates, quarantined, added."""
    cols = ["path", "sha256", "size", "source", "format", "records", "imported", "duplicates", "quarantined",
            "added"]
    return pd.DataFrame(case.evidence()).reindex(columns=cols)


def gaps(case: Case, window_start: str | None = None) -> list[str]:
    """Sentences naming what the case is missing for a token-forgery investigation."""
    cov = coverage(case).set_index("source") if case.events.sources() else pd.DataFrame()
    notes: list[str] = []
    if cov.empty:
        notes.append("The case holds no events yet: import exports or collect through Graph first.")
        return notes
    signins = [s for s in cov.index if str(s).startswith("signin_")]
    if not signins:
        notes.append("No sign-in logs: forged tokens cannot be told apart from issued ones without them.")
    else:
        start = min(cov.loc[s, "first"] for s in signins)
        notes.append(f"Sign-in logs start {pd.Timestamp(start).isoformat()}: a token used before that "
                     "cannot be matched to its sign-in.")
        begins = parse_time(window_start)
        if begins is not None and begins < pd.Timestamp(start):
            notes.append("The investigation window starts before the sign-in logs do.")
    if "mail_access" not in cov.index:
        notes.append("No MailItemsAccessed records: mailbox auditing may be off or not licensed "
                     "(E5/Audit Premium before 2023-09), so messages read cannot be listed.")
    for row in ledger(case).to_dict("records"):
        if row.get("complete") is False or row.get("gap"):
            notes.append(f"Collection gap in {row.get('source')}: {row.get('slice_start')} to "
                         f"{row.get('slice_end')} ({row.get('gap') or 'incomplete'}).")
    return notes


#: Verdicts whose tokens and sessions are the actor's (possible, unverifiable and benign ones are not).
ACTOR_VERDICTS = ("confirmed", "likely")


def actor_indicators(findings: pd.DataFrame, scope: dict[str, Any] | None) -> tuple[set[str], set[str], set[str]]:
    """The actor's addresses (the scope's, else those of confirmed and likely findings), and the tokens and
    sessions of confirmed and likely findings (:data:`ACTOR_VERDICTS`): ``(ips, tokens, sessions)``."""
    strong = findings[findings["verdict"].isin(ACTOR_VERDICTS)] if "verdict" in findings else findings
    ips = {a.get("ip") for a in (scope or {}).get("actor_ips", []) if a.get("ip")}
    tokens = set(strong["token_id"].dropna()) if "token_id" in strong else set()
    sessions = set(strong["session_id"].dropna()) if "session_id" in strong else set()
    if not strong.empty and "ip" in strong and not ips:
        ips = set(strong["ip"].dropna())
    return ips, tokens, sessions


def actor_events(events: pd.DataFrame, findings: pd.DataFrame, scope: dict[str, Any] | None) -> pd.DataFrame:
    """The events tied to the actor: its addresses (scope), and the tokens and sessions of confirmed
    and likely findings (:data:`ACTOR_VERDICTS`; never those of possible, unverifiable or benign ones).

    Args:
        events: Canonical events.
        findings: Findings (FINDING_COLUMNS).
        scope: scope.json contents or None.

    Returns:
        The subset of ``events`` (same columns).
    """
    ips, tokens, sessions = actor_indicators(findings, scope)
    mask = events["ip"].isin(ips) | events["token_id"].isin(tokens) | events["session_id"].isin(sessions)
    return events[mask.fillna(False).astype(bool)]


def messages_accessed(events: pd.DataFrame, mailboxes: list[str]) -> pd.DataFrame:
    """Distinct InternetMessageIds named by MailItemsAccessed Bind records, per mailbox.

    Returns:
        Columns mailbox, message_id, folder (the folders of the records naming it, joined), first, last, binds.
    """
    cols = ["mailbox", "message_id", "folder", "first", "last", "binds"]
    binds = events[(events["source"] == "mail_access") & events["mailbox"].isin(mailboxes)]
    binds = binds[binds["mail_access_type"].fillna("").str.lower().eq("bind")]
    if binds.empty:
        return pd.DataFrame(columns=cols)
    frame = binds[["mailbox", "time", "message_ids"]].copy()
    frame["folder"] = binds["folders"].map(_joined) if "folders" in binds else ""
    exploded = frame.explode("message_ids").dropna(subset=["message_ids"])
    out = exploded.groupby(["mailbox", "message_ids"]).agg(
        folder=("folder", lambda s: ", ".join(sorted({f for v in s for f in str(v).split(", ") if f}))),
        first=("time", "min"), last=("time", "max"), binds=("time", "size")).reset_index()
    return out.rename(columns={"message_ids": "message_id"})[cols]


def _joined(value: Any) -> str:
    if value is None or isinstance(value, float):
        return ""
    return ", ".join(str(v) for v in list(value) if v is not None)


def empty_events() -> pd.DataFrame:
    """An empty canonical event frame."""
    return empty_frame()


def in_window(events: pd.DataFrame, start: str = "", end: str = "", mailbox: str = "") -> pd.DataFrame:
    """Events inside [start, end] (ISO, empty = open) and, with ``mailbox``, only that mailbox's
    events plus those of its owner as a user."""
    out = events
    first, last = parse_time(start or None), parse_time(end or None)
    if first is not None:
        out = out[out["time"] >= first]
    if last is not None:
        out = out[out["time"] <= last]
    if mailbox:
        box = mailbox.lower()
        out = out[(out["mailbox"] == box) | (out["user"] == box)]
    return out


#: Default retention in days per source (Entra P1/P2 sign-in and audit logs: 30; unified audit log: 180).
RETENTION_DAYS = {"signin_interactive": 30, "signin_noninteractive": 30, "signin_serviceprincipal": 30,
                  "signin_managedidentity": 30, "directory_audit": 30, "mail_access": 180, "audit_other": 180,
                  "risk_detection": 90}


def retention_deadlines(first_malicious: str | pd.Timestamp | None) -> pd.DataFrame:
    """When the logs of the first malicious activity age out of the tenant's default retention.

    Returns:
        Columns source, retention_days, ages_out (UTC); empty when the start is unknown.
    """
    cols = ["source", "retention_days", "ages_out"]
    start = parse_time(first_malicious)
    if start is None:
        return pd.DataFrame(columns=cols)
    rows = [{"source": s, "retention_days": d, "ages_out": start + pd.Timedelta(days=d)}
            for s, d in RETENTION_DAYS.items()]
    return pd.DataFrame(rows, columns=cols).sort_values("ages_out").reset_index(drop=True)


def actor_user_agents(actor: pd.DataFrame) -> pd.DataFrame:
    """The user agents / client strings the actor used: user_agent, events, first, last."""
    cols = ["user_agent", "events", "first", "last"]
    rows = actor.dropna(subset=["user_agent"])
    if rows.empty:
        return pd.DataFrame(columns=cols)
    out = rows.groupby("user_agent").agg(events=("time", "size"), first=("time", "min"), last=("time", "max"))
    return out.reset_index().sort_values("events", ascending=False)[cols]


def actor_folders(actor: pd.DataFrame) -> pd.DataFrame:
    """Mailbox folders the actor's mail access touched: mailbox, folder, events, first, last."""
    cols = ["mailbox", "folder", "events", "first", "last"]
    rows = actor[actor["source"] == "mail_access"][["mailbox", "time", "folders"]]
    rows = rows.explode("folders").dropna(subset=["folders"])
    if rows.empty:
        return pd.DataFrame(columns=cols)
    out = rows.groupby(["mailbox", "folders"]).agg(events=("time", "size"), first=("time", "min"),
                                                   last=("time", "max")).reset_index()
    return out.rename(columns={"folders": "folder"})[cols]
