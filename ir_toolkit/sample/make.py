"""``sample make``: write a generated tenant's raw logs and its answer key into a folder.

Layout of DIR (every JSON page file is ``page-NNNNN.json``, or ``.json.gz`` with ``gzip=True``)::

    entra/signins_interactive/          Graph beta /auditLogs/signIns, signInEventTypes interactiveUser
    entra/signins_noninteractive/       ... nonInteractiveUser
    entra/signins_serviceprincipal/     ... servicePrincipal
    entra/directory_audits/             Graph v1.0 /auditLogs/directoryAudits
    entra/users/, entra/service_principals/, entra/applications/, entra/oauth2_permission_grants/
                                        tenant snapshot (Graph list pages)
    purview/audit_log_query_records/    Graph beta /security/auditLog/queries/{id}/records
    purview/audit_search_export.csv     Purview portal export of the same records
    answer_key.json, README.md

Days are generated newest first (Graph returns newest first), one day in memory at a time.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ir_toolkit.errors import UserError
from ir_toolkit.sample.actor import active_days
from ir_toolkit.sample.answer import AnswerKey
from ir_toolkit.sample.directory import snapshot
from ir_toolkit.sample.ids import graph_time, guid, rng_for
from ir_toolkit.sample.readme import readme
from ir_toolkit.sample.story import MIN_DAYS, MIN_USERS, build_story
from ir_toolkit.sample.tenant import tenant_day
from ir_toolkit.sample.ual import graph_record_json
from ir_toolkit.sample.writers import CsvWriter, PageWriter, compact, filter_url, sha256_file

log = logging.getLogger(__name__)
BETA, V1 = "https://graph.microsoft.com/beta", "https://graph.microsoft.com/v1.0"
SIGNIN_TYPES = {"signin_interactive": "interactiveUser", "signin_noninteractive": "nonInteractiveUser",
                "signin_serviceprincipal": "servicePrincipal"}
MAX_USERS, MAX_DAYS = 1_000_000, 3650


def check_params(users: int, days: int, scale: float) -> tuple[int, int]:
    """Validate the size parameters; returns the scaled (users, days). Raises UserError (one line)."""
    if not scale > 0 or scale > 10_000:
        raise UserError(f"--scale must be a number above 0 and at most 10000, not {scale}")
    if users < MIN_USERS:
        raise UserError(f"--users must be at least {MIN_USERS} (targets, traveller, switchers), not {users}")
    if days < MIN_DAYS:
        raise UserError(f"--days must be at least {MIN_DAYS} (the intrusion starts 2023-05-15, before sign-in "
                        f"coverage), not {days}")
    su, sd = max(MIN_USERS, round(users * scale)), max(MIN_DAYS, round(days * scale))
    if su > MAX_USERS or sd > MAX_DAYS:
        raise UserError(f"too large: {su} users over {sd} days (at most {MAX_USERS} users, {MAX_DAYS} days)")
    return su, sd


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"{out}: directory is not empty (the sample tenant is written into an empty folder)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot create directory: {exc.strerror}") from None


def make_sample(out: str | Path, seed: int = 558, users: int = 40, days: int = 45, scale: float = 1.0,
                gzip: bool = False, progress: bool = False) -> dict[str, Any]:
    """Generate the tenant into ``out``; returns the answer key (also written to ``out/answer_key.json``).

    Args:
        out: Empty or new folder.
        seed: Same seed, same bytes; another seed, another tenant.
        users: People in the tenant (multiplied by ``scale``).
        days: Days of audit log ending 2023-06-16 (multiplied by ``scale``); sign-ins cover the last 30.
        scale: Grows users and days together: the same story over more data.
        gzip: Write the big raw files compressed: pages as ``.json.gz``, the export as ``.csv.gz``.
        progress: Show a progress bar over days.
    """
    n_users, n_days = check_params(users, days, scale)
    out = Path(out)
    _prepare(out)
    story = build_story(seed, n_users, n_days)
    rng = rng_for(seed, "files")
    start, end = graph_time(story.signin_start), graph_time(story.collected_at)
    writers: dict[str, PageWriter] = {}
    for kind, event_type in SIGNIN_TYPES.items():
        flt = (f"(createdDateTime ge {start} and createdDateTime le {end}) and "
               f"signInEventTypes/any(t: t eq '{event_type}')")
        writers[kind] = PageWriter(out / "entra" / kind.replace("signin_", "signins_"),
                                   f"{BETA}/$metadata#auditLogs/signIns",
                                   filter_url(f"{BETA}/auditLogs/signIns", flt, 1000), f"{seed}|{kind}", gz=gzip)
    first = graph_time(story.collected_at - timedelta(days=n_days))
    writers["directory"] = PageWriter(
        out / "entra" / "directory_audits", f"{V1}/$metadata#auditLogs/directoryAudits",
        filter_url(f"{V1}/auditLogs/directoryAudits", f"activityDateTime ge {first} and activityDateTime le {end}",
                   1000), f"{seed}|directory", gz=gzip)
    query = guid(rng)
    writers["ual"] = PageWriter(
        out / "purview" / "audit_log_query_records",
        f"{BETA}/$metadata#security/auditLog/queries('{query}')/records",
        f"{BETA}/security/auditLog/queries/{query}/records", f"{seed}|ual", gz=gzip)
    export = CsvWriter(out / "purview" / "audit_search_export.csv", gz=gzip)
    key = AnswerKey(story)
    counts = dict.fromkeys([*writers, "ual_csv"], 0)
    active = frozenset(active_days(story))
    for day in tqdm(list(reversed(story.days())), desc="sample days", unit="day", disable=not progress):
        events, unlogged = tenant_day(story, day, active)
        key.unlogged_binds += unlogged
        for ev in events:
            if ev.kind.startswith("signin_") and ev.time < story.signin_start:
                continue                       # beyond Entra's 30-day sign-in retention
            if ev.kind == "ual":
                text = compact(ev.rec)
                writers["ual"].add_json(graph_record_json(ev.rec, text))
                export.add(ev.rec, text)
                counts["ual_csv"] += 1
                if ev.actor is not None:
                    key.add(ev.time, ev.actor)
            else:
                writers[ev.kind].add(ev.rec)
            counts[ev.kind] += 1
    files = export.close()
    for w in writers.values():
        files += w.close()
    snap = snapshot(story)
    for name, folder, path in (("users", "users", "users"), ("servicePrincipals", "service_principals",
                                                             "servicePrincipals"),
                               ("applications", "applications", "applications"),
                               ("oauth2PermissionGrants", "oauth2_permission_grants", "oauth2PermissionGrants")):
        w = PageWriter(out / "entra" / folder, f"{V1}/$metadata#{path}", f"{V1}/{path}", f"{seed}|{name}",
                       page_size=100, gz=False)
        for rec in snap[name]:
            w.add(rec)
        files += w.close()
    listing = [{"path": p.relative_to(out).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
               for p in sorted(files)]
    total = sum(counts[k] for k in writers)
    params = {"users_param": users, "days_param": days, "scale": scale, "days": n_days, "gzip": gzip,
              "records": {"signins_interactive": counts["signin_interactive"],
                          "signins_noninteractive": counts["signin_noninteractive"],
                          "signins_serviceprincipal": counts["signin_serviceprincipal"],
                          "directory_audits": counts["directory"], "unified_audit_log": counts["ual"],
                          "events_total": total}}
    answer = key.to_json(listing, params)
    (out / "answer_key.json").write_text(json.dumps(answer, indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(readme(answer), encoding="utf-8")
    log.info("sample tenant written to %s: %d events", out, total)
    return answer
