"""Small synthetic Graph records for the fake server (until the sample tenant generator is merged).

Every record has a unique ``id``; times use Graph's 7 fractional digits and some fall exactly on
day boundaries, where slices meet.
"""

from __future__ import annotations

import gzip
import json
import random
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

EVENT_TYPES = ("interactiveUser", "nonInteractiveUser", "servicePrincipal", "managedIdentity")
OPERATIONS = ("MailItemsAccessed", "Send", "New-InboxRule", "Set-InboxRule", "UpdateInboxRules",
              "Add-MailboxPermission", "Consent to application.", "Add service principal credentials.",
              "FileAccessed")  # the last is not in the default operation filter


def _t(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts.microsecond * 10:07d}Z"


def make_records(start: str = "2023-06-01", days: int = 3, per_day: int = 120, seed: int = 7) -> dict[str, list[Any]]:
    """Records for every source over ``days`` days from ``start`` (UTC)."""
    rng = random.Random(seed)
    t0 = pd.Timestamp(start, tz="UTC")
    span = pd.Timedelta(days=days)

    def when(i: int) -> pd.Timestamp:
        if i % 37 == 0:  # exactly on a day boundary
            return t0 + pd.Timedelta(days=rng.randrange(days))
        return t0 + pd.Timedelta(microseconds=rng.randrange(int(span / pd.Timedelta(microseconds=1))))

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128)))

    users = [f"user{i}@contoso.com" for i in range(8)] + ["o'brien@contoso.com"]
    signins = []
    for i in range(per_day * days):
        et = EVENT_TYPES[i % 4]
        signins.append({"id": uid(), "createdDateTime": _t(when(i)), "userPrincipalName": rng.choice(users),
                        "appId": uid(), "ipAddress": f"203.0.113.{rng.randrange(255)}",
                        "signInEventTypes": [et], "isInteractive": et == "interactiveUser",
                        "uniqueTokenIdentifier": uid()[:22], "sessionId": uid(), "status": {"errorCode": 0}})
    audits = [{"id": uid(), "activityDateTime": _t(when(i)), "activityDisplayName": "Consent to application",
               "initiatedBy": {"user": {"userPrincipalName": rng.choice(users)}}, "result": "success",
               "targetResources": [{"displayName": "app"}]} for i in range(per_day * days // 4)]
    ual = []
    for i in range(per_day * days // 2):
        op = OPERATIONS[i % len(OPERATIONS)]
        ts = _t(when(i))[:19] + "Z"
        ual.append({"@odata.type": "#microsoft.graph.security.auditLogRecord", "id": uid(), "createdDateTime": ts,
                    "auditLogRecordType": "exchangeItem", "operation": op, "userPrincipalName": rng.choice(users),
                    "auditData": {"Id": "x", "CreationTime": ts[:19], "Operation": op, "RecordType": 2}})
    for r in ual:
        r["auditData"]["Id"] = r["id"]
    sps = [{"id": uid(), "appId": uid(), "displayName": f"sp{i}", "passwordCredentials": [], "keyCredentials": []}
           for i in range(25)]
    apps = [{"id": uid(), "appId": uid(), "displayName": f"app{i}", "passwordCredentials": [{"keyId": uid()}]}
            for i in range(12)]
    grants = [{"id": uid()[:20], "clientId": uid(), "consentType": "AllPrincipals", "resourceId": uid(),
               "scope": "Mail.Read"} for _ in range(9)]
    risks = [{"id": uid(), "detectedDateTime": _t(when(i)), "riskEventType": "anomalousToken",
              "userPrincipalName": rng.choice(users)} for i in range(30)]
    return {"signins": signins, "directory_audits": audits, "audit_log": ual, "service_principals": sps,
            "applications": apps, "oauth2_permission_grants": grants, "risk_detections": risks}


def expected_ids(records: dict[str, list[Any]], source: str, operations: tuple[str, ...] | None = None) -> set[str]:
    """The ids a complete collection of ``source`` must return."""
    if source.startswith("signins_"):
        et = {"signins_interactive": "interactiveUser", "signins_noninteractive": "nonInteractiveUser",
              "signins_serviceprincipal": "servicePrincipal", "signins_managedidentity": "managedIdentity"}[source]
        return {r["id"] for r in records["signins"] if et in r["signInEventTypes"]}
    rows = records.get(source, [])
    if source == "audit_log" and operations is not None:
        rows = [r for r in rows if r["operation"] in operations]
    return {r["id"] for r in rows}


SAMPLE_FOLDERS = {  # sample tenant folder -> FakeGraph records key
    "entra/signins_interactive": "signins", "entra/signins_noninteractive": "signins",
    "entra/signins_serviceprincipal": "signins", "entra/signins_managedidentity": "signins",
    "entra/directory_audits": "directory_audits", "entra/service_principals": "service_principals",
    "entra/applications": "applications", "entra/oauth2_permission_grants": "oauth2_permission_grants",
    "entra/risk_detections": "risk_detections", "purview/audit_log_query_records": "audit_log",
}


def load_sample_tenant(folder: Path) -> dict[str, list[Any]]:
    """The Graph records of a sample tenant (``ir-toolkit sample make`` output), keyed for FakeGraph."""
    out: dict[str, list[Any]] = {key: [] for key in SAMPLE_FOLDERS.values()}
    for sub, key in SAMPLE_FOLDERS.items():
        for page in sorted((folder / sub).glob("page-*.json*")):
            opener = gzip.open if page.suffix == ".gz" else open
            with opener(page, "rt", encoding="utf-8") as fh:
                out[key].extend(json.load(fh)["value"])
    return out
