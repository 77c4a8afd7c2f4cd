"""Pivoting: from confirmed actor events to everything the actor's own infrastructure touched.

Start from the events of confirmed findings (the seeds). Each round collects the entities
those events carry (address, token id, Entra session id, Exchange session id, application, user
agent), keeps only the
ones *specific to the actor*, marks every other event that carries one of them (at any
time, including before sign-in coverage) and repeats until no new entity appears: a
fixed point.

An entity is specific to the actor when nothing legitimate in the tenant uses it
(the sources in ``SIGNIN_LEGIT`` and ``LEGIT_SOURCES`` below):

* an address that any successful sign-in came from, or that carried verified access
  (token issued by a sign-in), is shared infrastructure (a corporate egress address);
* an application with successful sign-ins, or with verified access, is in legitimate use
  (a first-party app many users run, a backup service);
* a user agent seen in successful sign-ins or verified access is shared (a client string a
  backup service also sends); verified access includes Graph requests whose token a sign-in issued, and
  a Microsoft first-party caller's labelled Graph requests are its own (an actor forging its app id is
  not followed through the app, only through its own addresses and tokens);
* an address legitimate users share (tenant addresses), a Microsoft service address, or, where
  the sign-ins cannot tell, one a mailbox's established clients read it from (its access
  history) is not the actor's own;
* a token or session id some sign-in issued is legitimate by definition, and so is an Exchange
  session (SessionId) that carried such a token;
* a token, session or Exchange session also used from an address legitimate use vouches for (the
  user's sign-ins, a tenant address, the mailbox's own access history) is the owner's, not the actor's;
* an address such an owner's token or session was used from is shared infrastructure (a traveller
  on the VPN exit the actor also uses, whose session also reads the mailbox from the office): it
  marks events only through other actor-specific evidence, as any shared address.

An address also marks no event that nothing else ties to the actor and that the mailbox's own
established client made (an application that read it during the baseline); pivoting from likely
(unproven) evidence, it marks only events of an application the actor was seen using. Where the
sign-ins cannot tell a VPN exit the actor shares with a traveller, the traveller's own mail client
on it is the traveller's.

The logic is SQL over the pack's helper views (``signins``, ``access_judged``: its rows of issuance 'issued' are
``issued_access``'s, ``tenant_addresses``, ``graph_judged``), so it runs on any engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ir_toolkit.analysis.engine import Engine

log = logging.getLogger(__name__)

KINDS = ("ip", "token", "session", "exchange_session", "app", "user_agent")
# Client strings are reported, never followed: every client of a kind sends the same one
# (Client=REST;Client=RESTSystem;; is any REST client's), so it cannot single out the actor.
NEVER_FOLLOWED = frozenset({"user_agent"})
# Prefix of the columns of _touched_sql that carry every entity of a touched event (for the next round).
CARRIED = "carried_"
# From likely (unproven) actor events only the entities that single out one actor's own activity are
# followed: its addresses (shared ones are guarded as usual), tokens and sessions, never an application.
LIKELY_FOLLOWED = frozenset({"ip", "token", "session", "exchange_session"})
# The column expression of each entity kind over the events view.
EXPRESSIONS = {
    "ip": "ip",
    "token": "token_id",
    "session": "session_id",
    "exchange_session": "exchange_session_id",
    "app": "lower(coalesce(client_app_id, app_id))",
    "user_agent": "user_agent",
}

# How access_judged names addresses legitimate use vouches for (not Microsoft infrastructure: the
# actor's own REST records may show a front-end address too).
VOUCHED_ADDRESSES = "('sign-ins', 'tenant address', 'mailbox history', 'tenant address (mailbox history)')"
# What the sign-ins vouch for, read in one scan of them (see _legit_sql): an address, application or user agent of a
# successful sign-in, a token or session id of any sign-in (the pack's issued_tokens and issued_sessions).
SIGNIN_LEGIT = (
    ("ip", "CASE WHEN t.result = 'success' THEN t.ip END"),
    ("app", "CASE WHEN t.result = 'success' THEN lower(t.app_id) END"),
    ("user_agent", "CASE WHEN t.result = 'success' THEN t.user_agent END"),
    ("token", "t.token_id"),
    ("session", "t.session_id"),
)
# Where else legitimate use of an entity shows: (kind, value expression over alias t, FROM, WHERE).
LEGIT_SOURCES = (
    ("ip", "t.ip", "access_judged t", "t.verdict = 'verified'"),
    ("ip", "t.ip", "tenant_addresses t", "t.kind = 'signins'"),
    ("ip", "t.ip", "infrastructure_ips t", None),
    ("ip", "t.ip", "access_judged t",
     "t.address_known_from IN ('mailbox history', 'tenant address (mailbox history)')"),
    ("app", "t.app", "access_judged t", "t.verdict = 'verified'"),
    ("user_agent", "t.user_agent", "access_judged t", "t.verdict = 'verified'"),
    ("ip", "t.ip", "graph_judged t", "t.verdict IN ('verified', 'benign')"),
    ("app", "t.app", "graph_judged t", "t.verdict IN ('verified', 'benign')"),
    ("user_agent", "t.user_agent", "graph_judged t", "t.verdict IN ('verified', 'benign')"),
    ("exchange_session", "t.exchange_session_id", "access_judged t", "t.issuance = 'issued'"),  # issued_access's rows
    *((kind, f"t.{column}", "access_judged t", f"t.address_known_from IN {VOUCHED_ADDRESSES}")
      for kind, column in (("token", "token_id"), ("session", "session_id"),
                           ("exchange_session", "exchange_session_id"))),
    *(("ip", "t.ip", f"access_judged t JOIN (SELECT DISTINCT {column} AS id FROM access_judged WHERE {column} IS NOT "
       f"NULL AND address_known_from IN {VOUCHED_ADDRESSES}) v ON v.id = t.{column}", None)
      for column in ("token_id", "session_id")),
)


def _legit_sql() -> str:
    """Which of the registered ``pivot_candidates`` (kind, value) legitimate use shares.

    Each source is probed with the few candidates of its kind (a hash join with a tiny build side)
    instead of collecting every legitimate entity of the tenant; the sign-ins once for every kind they
    vouch for (``SIGNIN_LEGIT``: one scan instead of five).
    """
    cases = " ".join(f"WHEN '{kind}' THEN {expr}" for kind, expr in SIGNIN_LEGIT)
    kinds = ", ".join(f"('{kind}')" for kind, _ in SIGNIN_LEGIT)
    parts = [f"SELECT c.kind, c.value FROM (SELECT k.kind, CASE k.kind {cases} END AS value FROM signins t "
             f"CROSS JOIN (VALUES {kinds}) AS k(kind)) s "
             "JOIN pivot_candidates c ON c.kind = s.kind AND c.value = s.value"]
    for kind, expr, source, where in LEGIT_SOURCES:
        cond = f" WHERE {where}" if where else ""
        parts.append(f"SELECT c.kind, c.value FROM {source} JOIN pivot_candidates c "
                     f"ON c.kind = '{kind}' AND c.value = {expr}{cond}")
    return "SELECT DISTINCT kind, value FROM (" + " UNION ALL ".join(parts) + ") l"


def legitimate_pairs(engine: Engine, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (kind, value) pairs of ``pairs`` that legitimate use shares (one probe per legitimate source)."""
    if not pairs:
        return set()
    engine.register("pivot_candidates", pd.DataFrame(pairs, columns=["kind", "value"]).astype("str"))
    rows = engine.run_sql(_legit_sql())
    return {(str(k), str(v)) for k, v in zip(rows["kind"], rows["value"], strict=True)}


def _address_only(engine: Engine, hits: pd.DataFrame, actor_apps: set[str] | None) -> set[str]:
    """record_ids of ``hits`` that their address alone reached and that are not the actor's for it.

    Such an event is left unmarked when the mailbox's established client made it (an application that read
    the mailbox during the baseline) or, with ``actor_apps``, when no event of the actor so far used its
    application.

    Args:
        engine: A prepared engine (``established_apps`` exists).
        hits: Rows of :func:`_touched_sql` (record_id and the followed entity of each kind).
        actor_apps: Applications (lower-case ids) of the actor's marked events, or None not to require one.
    """
    others = [k for k in KINDS if k != "ip"]
    only_ip = hits.loc[hits["ip"].notna() & hits[others].isna().all(axis=1), "record_id"].astype(str)
    if only_ip.empty:
        return set()
    engine.register("pivot_marked", pd.DataFrame({"record_id": pd.Series(sorted(set(only_ip)), dtype="str")}))
    rows = engine.run_sql(
        "SELECT x.record_id, lower(coalesce(x.client_app_id, x.app_id)) AS app, "
        "CASE WHEN e.app IS NULL THEN 0 ELSE 1 END AS established FROM events x "
        "JOIN pivot_marked m ON m.record_id = x.record_id "
        "LEFT JOIN established_apps e ON e.mailbox = x.mailbox AND e.app = lower(coalesce(x.client_app_id, x.app_id))")
    drop = rows["established"] == 1
    if actor_apps is not None:
        drop |= ~rows["app"].isin(actor_apps)
    return set(rows.loc[drop, "record_id"].astype(str))


def _entity_rows_sql() -> str:
    """record_id and the entity of each kind (NULL when empty) of every event."""
    cols = ", ".join(f"CASE WHEN {e} <> '' THEN {e} END AS {k}" for k, e in EXPRESSIONS.items())
    return f"SELECT record_id, {cols} FROM events"


def _marked_rows_sql() -> str:
    """The entities of the events whose record_id is in ``pivot_marked``: one scan of the events."""
    return f"SELECT x.* FROM ({_entity_rows_sql()}) x JOIN pivot_marked m ON m.record_id = x.record_id"


def _touched_sql() -> str:
    """The events carrying a followed entity (``pivot_entities``): one scan, one probe per kind.

    One row per event, with the followed entity of each kind it carries (NULL otherwise; columns named after
    KINDS) and every entity it carries (columns ``carried_<kind>``: what the next round judges of it, so that the
    next round needs no scan of its own); entities are distinct per kind, so the LEFT JOINs never multiply rows.
    """
    joins = " ".join(f"LEFT JOIN (SELECT value FROM pivot_entities WHERE kind = '{k}') p_{k} ON p_{k}.value = x.{k}"
                     for k in KINDS)
    picked = ", ".join(f"p_{k}.value AS {k}" for k in KINDS)
    carried = ", ".join(f"x.{k} AS {CARRIED}{k}" for k in KINDS)
    hit = " OR ".join(f"p_{k}.value IS NOT NULL" for k in KINDS)
    return f"SELECT x.record_id, {picked}, {carried} FROM ({_entity_rows_sql()}) x {joins} WHERE {hit}"


def carried_rows(hits: pd.DataFrame, ids: set[str]) -> pd.DataFrame:
    """The entity rows (record_id and KINDS columns) of the rows of ``hits`` whose record_id is in ``ids``.

    The rows of :func:`_touched_sql` carry every entity of the event they are: the next round reads the entities
    of the events it newly marked from them instead of scanning the store again for those record_ids.
    """
    rows = hits[hits["record_id"].astype(str).isin(ids)]
    return rows[["record_id", *(CARRIED + k for k in KINDS)]].rename(columns={CARRIED + k: k for k in KINDS})


def _pairs(rows: pd.DataFrame) -> set[tuple[str, str]]:
    """Distinct (kind, value) of entity rows (columns named after KINDS)."""
    out: set[tuple[str, str]] = set()
    for kind in KINDS:
        out |= {(kind, str(v)) for v in rows[kind].dropna().unique()}
    return out


@dataclass
class PivotResult:
    """The actor's events after pivoting and the pivots followed.

    Attributes:
        record_ids: record_ids of every event attributed to the actor (seeds included).
        seeds: The record_ids the pivot started from.
        pivots: One dict per entity followed: kind, value, round, events (events it touched).
        shared: Entities of actor events that were not followed because legitimate use shares them.
    """

    record_ids: set[str]
    seeds: set[str]
    pivots: list[dict[str, Any]] = field(default_factory=list)
    shared: list[dict[str, Any]] = field(default_factory=list)


def follow_pivots(engine: Engine, seeds: set[str], max_rounds: int = 10,
                  follow: frozenset[str] | None = None, corroborate: bool = False) -> PivotResult:
    """Mark every event the actor-specific entities of ``seeds`` touched, to a fixed point.

    Each round reads the entities of the events marked in the previous round (one scan joined on
    record_id), checks the new ones against legitimate use, and marks the events carrying a followed
    entity (one scan with a probe per kind). Entities of events marked earlier were judged in their
    own round, so only the newly marked events are read: the same fixed point as re-reading them all.

    Args:
        engine: A prepared engine (the pack's helper views exist).
        seeds: record_ids of confirmed actor events.
        max_rounds: Safety bound on the number of rounds.
        follow: Entity kinds that may be followed (default: every kind but NEVER_FOLLOWED).
        corroborate: An event reached by its address alone must also use an application the actor's marked
            events use (for pivots from likely, unproven evidence).
    """
    skip = NEVER_FOLLOWED | (frozenset(KINDS) - follow if follow is not None else frozenset())
    marked = {s for s in seeds if s}
    result = PivotResult(record_ids=marked, seeds=set(marked))
    if not marked:
        return result
    followed: set[tuple[str, str]] = set()
    shared: set[tuple[str, str]] = set()
    judged: set[tuple[str, str]] = set()
    actor_apps: set[str] = set()
    engine.register("pivot_marked", pd.DataFrame({"record_id": pd.Series(sorted(marked), dtype="str")}))
    rows = engine.run_sql(_marked_rows_sql())  # the seeds' entities: the only scan by record_id
    for round_no in range(1, max_rounds + 1):
        if rows.empty:
            break
        pairs = _pairs(rows)
        actor_apps |= {v for k, v in pairs if k == "app"}
        cands = sorted(pairs - judged)
        legit = legitimate_pairs(engine, cands)
        judged |= set(cands)
        shared |= legit | {c for c in cands if c[0] in skip}
        fresh = [c for c in cands if c not in legit and c[0] not in skip and c not in followed]
        if not fresh:
            break
        followed |= set(fresh)
        engine.register("pivot_entities", pd.DataFrame(fresh, columns=["kind", "value"]).astype("str"))
        hits = engine.run_sql(_touched_sql())
        owners = _address_only(engine, hits, actor_apps if corroborate else None)
        if owners:
            hits = hits[~hits["record_id"].astype(str).isin(owners)]
            log.info("pivot round %d: %d events on a followed address not the actor's (their own client)",
                     round_no, len(owners))
        before = len(marked)
        touched = set(hits["record_id"].astype(str))
        rows = carried_rows(hits, touched - marked)  # the newly marked events' entities, for the next round
        marked |= touched
        counts = {kind: hits[kind].dropna().astype(str).value_counts() for kind in KINDS}
        for kind, value in fresh:
            n = int(counts[kind].get(value, 0))
            result.pivots.append({"kind": kind, "value": value, "round": round_no, "events": n})
        log.info("pivot round %d: %d entities, %d -> %d events", round_no, len(fresh), before, len(marked))
    result.record_ids = marked
    result.shared = [{"kind": k, "value": v} for k, v in sorted(shared)]
    return result
