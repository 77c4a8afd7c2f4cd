"""Pivoting: from confirmed actor events to everything the actor's own infrastructure touched.

Start from the events of confirmed findings (the seeds). Each round collects the entities
those events carry (address, token id, Entra session id, Exchange session id, application, user
agent), keeps only the
ones *specific to the actor*, marks every other event that carries one of them (at any
time, including before sign-in coverage) and repeats until no new entity appears: a
fixed point.

An entity is specific to the actor when nothing legitimate in the tenant uses it
(the ``legit_entities`` table below):

* an address that any successful sign-in came from, or that carried verified access
  (token issued by a sign-in), is shared infrastructure (a corporate egress address);
* an application with successful sign-ins, or with verified access, is in legitimate use
  (a first-party app many users run, a backup service);
* a user agent seen in successful sign-ins or verified access is shared (a client string a
  backup service also sends);
* an address legitimate users share (tenant addresses), a Microsoft service address, or, where
  the sign-ins cannot tell, one a mailbox's established clients read it from (its access
  history) is not the actor's own;
* a token or session id some sign-in issued is legitimate by definition, and so is an Exchange
  session (SessionId) that carried such a token.

The logic is SQL over the pack's helper views (``signins``, ``access_judged``,
``issued_tokens``, ``issued_sessions``), so it runs on any engine.
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
# The column expression of each entity kind over the events view.
EXPRESSIONS = {
    "ip": "ip",
    "token": "token_id",
    "session": "session_id",
    "exchange_session": "exchange_session_id",
    "app": "lower(coalesce(client_app_id, app_id))",
    "user_agent": "user_agent",
}

LEGIT_ENTITIES_SQL = """
SELECT DISTINCT kind, value FROM (
  SELECT 'ip' AS kind, ip AS value FROM signins WHERE result = 'success' AND ip IS NOT NULL
  UNION ALL SELECT 'ip', ip FROM access_judged WHERE verdict = 'verified' AND ip IS NOT NULL
  UNION ALL SELECT 'ip', ip FROM tenant_addresses WHERE kind = 'signins'
  UNION ALL SELECT 'ip', ip FROM infrastructure_ips
  UNION ALL SELECT 'ip', ip FROM access_judged
            WHERE address_known_from IN ('mailbox history', 'tenant address (mailbox history)')
  UNION ALL SELECT 'app', lower(app_id) FROM signins WHERE result = 'success' AND app_id IS NOT NULL
  UNION ALL SELECT 'app', app FROM access_judged WHERE verdict = 'verified' AND app IS NOT NULL
  UNION ALL SELECT 'user_agent', user_agent FROM signins WHERE result = 'success' AND user_agent IS NOT NULL
  UNION ALL SELECT 'user_agent', user_agent FROM access_judged WHERE verdict = 'verified' AND user_agent IS NOT NULL
  UNION ALL SELECT 'token', token_id FROM issued_tokens
  UNION ALL SELECT 'session', session_id FROM issued_sessions
  UNION ALL SELECT 'exchange_session', exchange_session_id FROM issued_access WHERE exchange_session_id IS NOT NULL
) l
"""


def _entities_sql() -> str:
    parts = [f"SELECT '{k}' AS kind, {e} AS value FROM events e JOIN pivot_marked m ON m.record_id = e.record_id "
             f"WHERE {e} IS NOT NULL AND {e} <> ''" for k, e in EXPRESSIONS.items()]
    return "SELECT DISTINCT kind, value FROM (" + " UNION ALL ".join(parts) + ") x"


def _touched_sql() -> str:
    """One row per (event, followed entity it carries)."""
    parts = [f"SELECT e.record_id, p.kind, p.value FROM events e JOIN pivot_entities p "
             f"ON p.kind = '{k}' AND p.value = {e}" for k, e in EXPRESSIONS.items()]
    return " UNION ALL ".join(parts)


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


def follow_pivots(engine: Engine, seeds: set[str], max_rounds: int = 10) -> PivotResult:
    """Mark every event the actor-specific entities of ``seeds`` touched, to a fixed point.

    Args:
        engine: A prepared engine (the pack's helper views exist).
        seeds: record_ids of confirmed actor events.
        max_rounds: Safety bound on the number of rounds.
    """
    marked = {s for s in seeds if s}
    result = PivotResult(record_ids=marked, seeds=set(marked))
    if not marked:
        return result
    engine.create_table("legit_entities", LEGIT_ENTITIES_SQL)
    followed: set[tuple[str, str]] = set()
    shared: set[tuple[str, str]] = set()
    for round_no in range(1, max_rounds + 1):
        engine.register("pivot_marked", pd.DataFrame({"record_id": pd.Series(sorted(marked), dtype="str")}))
        cands = engine.run_sql(
            f"SELECT c.kind, c.value, CASE WHEN l.value IS NULL THEN 0 ELSE 1 END AS legit "
            f"FROM ({_entities_sql()}) c LEFT JOIN legit_entities l ON l.kind = c.kind AND l.value = c.value")
        fresh = [(str(r.kind), str(r.value)) for r in cands.itertuples(index=False)
                 if not r.legit and str(r.kind) not in NEVER_FOLLOWED and (str(r.kind), str(r.value)) not in followed]
        shared |= {(str(r.kind), str(r.value)) for r in cands.itertuples(index=False)
                   if r.legit or str(r.kind) in NEVER_FOLLOWED}
        if not fresh:
            break
        followed |= set(fresh)
        engine.register("pivot_entities", pd.DataFrame(fresh, columns=["kind", "value"]).astype("str"))
        hits = engine.run_sql(_touched_sql())
        before = len(marked)
        marked |= set(hits["record_id"].astype(str))
        counts = hits.groupby(["kind", "value"]).size()
        for kind, value in fresh:
            n = int(counts.get((kind, value), 0))
            result.pivots.append({"kind": kind, "value": value, "round": round_no, "events": n})
        log.info("pivot round %d: %d entities, %d -> %d events", round_no, len(fresh), before, len(marked))
    result.record_ids = marked
    result.shared = [{"kind": k, "value": v} for k, v in sorted(shared)]
    return result
