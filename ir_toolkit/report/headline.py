"""The executive summary's first sentence: what the evidence can and cannot prove.

Built from scope.json's ``evidence`` (``limits`` and ``cannot_prove``), ``signin_coverage``
(``judged``, start and end) and the compromised mailboxes' confidences, e.g. "No non-interactive
sign-ins were provided: forged tokens cannot be told from refreshed ones; the 4 mailboxes below
are likely, not confirmed." When nothing limits the case it says over which period every sign-in
source that could have issued a token is held and gap-free.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ir_toolkit.report.display import fmt
from ir_toolkit.report.evidence import hole_rows

# Limits in the order they weigh on the conclusions: the first present leads the sentence.
# NAME -> short clause (format fields: holes, hours, throttled, without_token).
CLAUSES: dict[str, str] = {
    "no_user_signins": "No user sign-ins were provided: forged tokens cannot be told from legitimately issued ones",
    "no_signin_noninteractive": "No non-interactive sign-ins were provided: forged tokens cannot be told from "
                                "refreshed ones",
    "no_signin_interactive": "No interactive sign-ins were provided: forged tokens cannot be told from tokens "
                             "issued at an interactive sign-in",
    "no_mail_access": "No MailItemsAccessed records were provided: which mailboxes and messages were read cannot "
                      "be determined",
    "signin_holes": "The sign-in logs have {holes} hole(s) ({hours:.0f} hours in all): a token issued inside one "
                    "cannot be proven forged",
    "before_signins": "Mailbox access begins before the sign-in logs do: earlier tokens cannot be checked against "
                      "their issuance",
    "no_signin_serviceprincipal": "No service-principal sign-ins were provided: app-only tokens cannot be checked "
                                  "against their issuance",
    "mail_holes": "The mailbox audit log has holes: access in those periods is unknown",
    "mail_after_others": "The mailbox audit log begins more than a day after the sign-in or directory audit logs: "
                         "earlier access is unknown",
    "throttled": "Bind logging was throttled for {throttled} mailbox(es): more items may have been read than are "
                 "counted",
    "missing_context": "{without_token} mailbox access record(s) carry no token id: those never prove forgery",
    "no_directory_audit": "No directory audit log was provided: consent grants and application credentials cannot "
                          "be seen",
    "no_audit_other": "No other unified audit log records were provided: inbox rules and deletions cannot be seen",
}
# Limits that keep a delegated mailbox from being confirmed.
CONFIRMING = {"no_user_signins", "no_signin_noninteractive", "no_signin_interactive", "signin_holes",
              "before_signins"}
USER_SIGNINS = ("signin_interactive", "signin_noninteractive")


def _ordered(limits: list[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(CLAUSES)}
    return sorted(limits, key=lambda n: rank.get(n, len(rank)))


def limit_clause(name: str, profile: dict[str, Any]) -> str:
    """The short clause for one limit; the profile's own sentence for a limit this module does not know."""
    if name not in CLAUSES:
        names = list(profile.get("limits") or [])
        sentences = list(profile.get("cannot_prove") or [])
        found = sentences[names.index(name)] if name in names and names.index(name) < len(sentences) else name
        return str(found).rstrip(". ")
    holes = [h for h in hole_rows(profile) if h["source"].startswith("signin_")]
    return CLAUSES[name].format(holes=len(holes), hours=sum(h["hours"] or 0.0 for h in holes),
                                throttled=len(profile.get("throttled_mailboxes") or []),
                                without_token=int(profile.get("mail_records_without_token") or 0))


def _mailbox_clause(scope: dict[str, Any] | None, capped: bool) -> str:
    if scope is None:
        return "the breach has not been scoped yet"
    conf = Counter(str(b.get("confidence", "")) for b in scope.get("compromised_mailboxes") or [])
    confirmed, likely, possible = conf["confirmed"], conf["likely"], conf["possible"]
    if not confirmed and not likely and not possible:
        return ("no mailbox was found compromised, which the missing evidence cannot rule out" if capped
                else "no mailbox was found compromised")
    if not confirmed and not possible:
        return f"the {likely} mailbox(es) below are likely, not confirmed"
    parts = [f"{n} {word}" for n, word in ((confirmed, "confirmed"), (likely, "likely"), (possible, "possible")) if n]
    if len(parts) == 1 and confirmed:
        return f"the {confirmed} mailbox(es) below are confirmed"
    return "of the mailboxes below, " + ", ".join(parts)


def _period(scope: dict[str, Any] | None, profile: dict[str, Any], tz: str) -> str:
    cov = (scope or {}).get("signin_coverage") or {}
    start, end = cov.get("start"), cov.get("end")
    if not start:
        held = [e for s, e in (profile.get("sources") or {}).items() if s in USER_SIGNINS and e.get("held")]
        start = max((str(e["first"]) for e in held), default=None)
        end = min((str(e["last"]) for e in held), default=None)
    return f"{fmt(start, tz)} to {fmt(end, tz)}" if start else "the case's period"


def headline(scope: dict[str, Any] | None, profile: dict[str, Any] | None, tz: str = "UTC") -> str:
    """The first sentence of the executive summary.

    Args:
        scope: scope.json contents, or None when scoping has not run.
        profile: The JSON-ready evidence profile, or None when it is not available.
        tz: Display time zone of the period named.
    """
    if profile is None:
        return "What the evidence can prove is unknown: the evidence profile could not be computed for this case."
    limits = _ordered(list(profile.get("limits") or []))
    judged = (scope or {}).get("signin_coverage", {}).get("judged")
    capped = judged is False or bool(CONFIRMING & set(limits))
    if limits:
        lead = limit_clause(limits[0], profile)
        if judged is False and limits[0] not in CONFIRMING:
            lead = "Delegated tokens cannot be judged against their sign-ins; " + lead[0].lower() + lead[1:]
        more = f" ({len(limits) - 1} more limit(s) below)" if len(limits) > 1 else ""
        return f"{lead}; {_mailbox_clause(scope, capped)}{more}."
    period = _period(scope, profile, tz)
    return (f"Every sign-in source that could have issued a token is held and gap-free over {period}: "
            f"{_mailbox_clause(scope, capped)}.")
