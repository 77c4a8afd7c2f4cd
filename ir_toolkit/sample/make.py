"""``sample make``: write a generated tenant's raw logs and its answer key into a folder.

Layout of DIR (every JSON page file is ``page-NNNNN.json``, or ``.json.gz`` with ``gzip=True``)::

    entra/signins_interactive/          Graph beta /auditLogs/signIns, signInEventTypes interactiveUser
    entra/signins_noninteractive/       ... nonInteractiveUser
    entra/signins_serviceprincipal/     ... servicePrincipal
    entra/directory_audits/             Graph v1.0 /auditLogs/directoryAudits
    entra/users/, entra/service_principals/, entra/applications/, entra/oauth2_permission_grants/
                                        tenant snapshot (Graph list pages)
    azure/insights-logs-microsoftgraphactivitylogs/.../PT1H.json
                                        with graph_activity=True only: Graph activity logs, storage blobs
    purview/audit_log_query_records/    Graph beta /security/auditLog/queries/{id}/records
    purview/audit_search_export.csv     Purview portal export of the same records
    answer_key.json, README.md

Days are generated newest first (Graph returns newest first), one day in memory at a time. Evidence
variants (:mod:`ir_toolkit.sample.variants`) leave families or stretches of records out, share a VPN
address between the actor and a user (:mod:`ir_toolkit.sample.vpn`) or log front-end addresses
(:mod:`ir_toolkit.sample.frontend`); the answer key then holds only what the written records prove.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ir_toolkit.errors import UserError
from ir_toolkit.sample.activity import Event
from ir_toolkit.sample.actor import active_days
from ir_toolkit.sample.answer import AnswerKey
from ir_toolkit.sample.coverup import coverup_days
from ir_toolkit.sample.directory import snapshot
from ir_toolkit.sample.frontend import frontend_rewrite
from ir_toolkit.sample.graphlog import GraphLog
from ir_toolkit.sample.ids import graph_time, guid, rng_for
from ir_toolkit.sample.readme import readme
from ir_toolkit.sample.stories import DEFAULT_STORY, STORIES
from ir_toolkit.sample.story import MIN_DAYS, MIN_USERS, Story, build_story
from ir_toolkit.sample.tenant import tenant_day
from ir_toolkit.sample.ual import graph_record_json
from ir_toolkit.sample.variants import UAL_TARGETS, Gap, Variant, make_variant
from ir_toolkit.sample.vpn import vpn_day, vpn_plan
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


def signin_writer(out: Path, story: Story, kind: str, gz: bool) -> PageWriter:
    """The page writer of one sign-in family (``kind`` of :data:`SIGNIN_TYPES`): Graph beta signIns pages."""
    start, end = graph_time(story.signin_start), graph_time(story.collected_at)
    flt = (f"(createdDateTime ge {start} and createdDateTime le {end}) and "
           f"signInEventTypes/any(t: t eq '{SIGNIN_TYPES[kind]}')")
    return PageWriter(out / "entra" / kind.replace("signin_", "signins_"), f"{BETA}/$metadata#auditLogs/signIns",
                      filter_url(f"{BETA}/auditLogs/signIns", flt, 1000), f"{story.seed}|{kind}", gz=gz)


def _writers(out: Path, story: Story, n_days: int, gz: bool, variant: Variant) -> tuple[dict[str, PageWriter],
                                                                                     CsvWriter | None]:
    """The page writers of the output families the variant keeps, and the Purview CSV writer (None if dropped)."""
    seed = story.seed
    rng = rng_for(seed, "files")
    end = graph_time(story.collected_at)
    writers = {kind: signin_writer(out, story, kind, gz) for kind in SIGNIN_TYPES if not variant.file_dropped(kind)}
    first = graph_time(story.collected_at - timedelta(days=n_days))
    if not variant.file_dropped("directory"):
        writers["directory"] = PageWriter(
            out / "entra" / "directory_audits", f"{V1}/$metadata#auditLogs/directoryAudits",
            filter_url(f"{V1}/auditLogs/directoryAudits", f"activityDateTime ge {first} and activityDateTime le {end}",
                       1000), f"{seed}|directory", gz=gz)
    query = guid(rng)
    if not variant.file_dropped("ual_graph"):
        writers["ual_graph"] = PageWriter(
            out / "purview" / "audit_log_query_records",
            f"{BETA}/$metadata#security/auditLog/queries('{query}')/records",
            f"{BETA}/security/auditLog/queries/{query}/records", f"{seed}|ual", gz=gz)
    export = None if variant.file_dropped("ual_csv") else CsvWriter(out / "purview" / "audit_search_export.csv", gz=gz)
    return writers, export


def _write(ev: Event, story: Story, variant: Variant, writers: dict[str, PageWriter], export: CsvWriter | None,
           key: AnswerKey, counts: dict[str, int]) -> None:
    """Write one event to every output family the variant keeps it in, and feed the answer key."""
    if ev.kind == "graph_activity":      # --graph-activity: never dropped, never in a gap
        writers[ev.kind].add(ev.rec)
        counts[ev.kind] += 1
        if ev.actor is not None:
            key.add_graph(ev.time, ev.actor)
        return
    if ev.kind != "ual":
        written = ev.kind in writers and variant.written(ev.kind, ev.time, ev.rec)
        if written:
            writers[ev.kind].add(ev.rec)
            counts[ev.kind] += 1
        if ev.actor is not None and written:
            key.add(ev.time, ev.actor)
        elif ev.actor is not None:
            key.removed += 1
        return
    if variant.frontend_ips and ev.actor is None:
        ip = frontend_rewrite(story, ev.rec)
        if ip is not None:
            key.frontend_ips.add(ip)
    where = [t for t in UAL_TARGETS if (t == "ual_csv" and export is not None or t in writers)
             and variant.written(t, ev.time, ev.rec)]
    if where:
        text = compact(ev.rec)
        if "ual_graph" in where:
            writers["ual_graph"].add_json(graph_record_json(ev.rec, text))
        if export is not None and "ual_csv" in where:
            export.add(ev.rec, text)
        for t in where:
            counts[t] += 1
        counts["ual"] += 1
    if ev.actor is not None and "cover_up" in ev.actor:
        if where:
            key.add_cover_up(ev.actor["cover_up"])
    elif ev.actor is not None:
        if where:
            key.add(ev.time, ev.actor)
        else:
            key.removed += 1
    elif where and ev.rec.get("RecordType") == 3:
        key.own_deleters.add(ev.rec["MailboxOwnerUPN"])


def make_sample(out: str | Path, seed: int = 558, users: int = 40, days: int = 45, scale: float = 1.0,
                gzip: bool = False, progress: bool = False, drop: Iterable[str] = (), gaps: Sequence[str | Gap] = (),
                shared_vpn: bool = False, frontend_ips: bool = False,
                story_name: str = DEFAULT_STORY, graph_activity: bool = False) -> dict[str, Any]:
    """Generate the tenant into ``out``; returns the answer key (also written to ``out/answer_key.json``).

    Args:
        out: Empty or new folder.
        seed: Same seed, same bytes; another seed, another tenant.
        users: People in the tenant (multiplied by ``scale``).
        days: Days of audit log ending 2023-06-16 (multiplied by ``scale``); sign-ins cover the last 30.
        scale: Grows users and days together: the same story over more data.
        gzip: Write the big raw files compressed: pages as ``.json.gz``, the export as ``.csv.gz``.
        progress: Show a progress bar over days.
        drop: Log families to leave out entirely (names of :data:`ir_toolkit.sample.variants.FAMILIES`).
        gaps: Holes, each ``"SOURCE:START:HOURS"`` or a :class:`~ir_toolkit.sample.variants.Gap`.
        shared_vpn: The actor also uses a commercial VPN address a legitimate user signs in from.
        frontend_ips: Legitimate REST-style mailbox access carries Exchange Online front-end addresses.
        story_name: The intruder's story (:data:`ir_toolkit.sample.stories.STORIES`).
        graph_activity: Also write Microsoft Graph activity logs (:mod:`ir_toolkit.sample.graphlog`).

    Raises:
        UserError: A bad size, option value or output folder (one line).
    """
    n_users, n_days = check_params(users, days, scale)
    if story_name not in STORIES:
        raise UserError(f"unknown story {story_name!r} (known: {', '.join(STORIES)})")
    variant = make_variant(drop, gaps, shared_vpn, frontend_ips, graph_activity)
    out = Path(out)
    _prepare(out)
    story = build_story(seed, n_users, n_days)
    story.kind = story_name
    writers, export = _writers(out, story, n_days, gzip, variant)
    own_writers = STORIES[story_name]["writers"]
    if own_writers is not None:
        writers.update(own_writers(out, story, gzip))
    key = AnswerKey(story)
    key.variant = variant.to_json()
    counts = dict.fromkeys([*SIGNIN_TYPES, "directory", "ual", *UAL_TARGETS, *writers], 0)
    active = frozenset(active_days(story))
    cover = coverup_days(story, active)
    vpn = vpn_plan(story, active) if shared_vpn else None
    graph = GraphLog(out, story, active) if graph_activity else None
    if graph is not None:
        writers["graph_activity"] = graph  # type: ignore[assignment]  # the same add/close seam
        counts["graph_activity"] = 0
    if vpn is not None:
        key.vpn = (vpn.ip, story.users[vpn.user].upn)
    for day in tqdm(list(reversed(story.days())), desc="sample days", unit="day", disable=not progress):
        extra, vpn_unlogged = vpn_day(story, vpn, day, (day - story.first_day).days) if vpn else ([], 0)
        events, unlogged = tenant_day(story, day, active, cover, extra)
        key.unlogged_binds += unlogged + vpn_unlogged
        if graph is not None:
            events = sorted(events + graph.day(day, events), key=lambda e: e.time, reverse=True)
        for ev in events:
            if ev.kind.startswith("signin_") and ev.time < story.signin_start:
                continue                       # beyond Entra's 30-day sign-in retention
            _write(ev, story, variant, writers, export, key, counts)
    files = export.close() if export is not None else []
    for w in writers.values():
        files += w.close()
    files += _snapshot(out, story)
    listing = [{"path": p.relative_to(out).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
               for p in sorted(files)]
    total = sum(counts[k] for k in (*SIGNIN_TYPES, "directory", "ual", *(own_writers and writers or ())))
    total += counts.get("graph_activity", 0) if graph is not None else 0
    params = {"story": story_name, "users_param": users, "days_param": days, "scale": scale,
              "days": n_days, "gzip": gzip,
              "variant_args": variant.args(),
              "records": {"signins_interactive": counts["signin_interactive"],
                          "signins_noninteractive": counts["signin_noninteractive"],
                          "signins_serviceprincipal": counts["signin_serviceprincipal"],
                          "directory_audits": counts["directory"], "unified_audit_log": counts["ual"],
                          "ual_graph_records": counts["ual_graph"], "ual_csv_records": counts["ual_csv"],
                          **({"graph_activity_records": counts["graph_activity"]} if graph is not None else {}),
                          "events_total": total}}
    answer = key.to_json(listing, params)
    (out / "answer_key.json").write_text(json.dumps(answer, indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(readme(answer), encoding="utf-8")
    log.info("sample tenant written to %s: %d events", out, total)
    return answer


def _snapshot(out: Path, story: Story) -> list[Path]:
    """The tenant snapshot pages (users, service principals, applications, grants); never dropped."""
    snap = snapshot(story)
    files: list[Path] = []
    for name, folder, path in (("users", "users", "users"), ("servicePrincipals", "service_principals",
                                                             "servicePrincipals"),
                               ("applications", "applications", "applications"),
                               ("oauth2PermissionGrants", "oauth2_permission_grants", "oauth2PermissionGrants")):
        w = PageWriter(out / "entra" / folder, f"{V1}/$metadata#{path}", f"{V1}/{path}", f"{story.seed}|{name}",
                       page_size=100, gz=False)
        for rec in snap[name]:
            w.add(rec)
        files += w.close()
    return files
