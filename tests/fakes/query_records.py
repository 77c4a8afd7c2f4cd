"""Small synthetic Log Analytics and advanced hunting rows for the fake query service.

Rows look like what the query APIs return: dynamic columns as JSON text, times as ISO strings with
7 fractional digits, some exactly on day boundaries (where slices meet). Every row has a unique id
column (``Id``, ``OfficeId``, ``RequestId``, ``ReportId``).
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pandas as pd

TENANT = "4b2462a4-bbee-495a-a0e1-f23ae524cc9c"
LA_ID = {"OfficeActivity": "OfficeId", "MicrosoftGraphActivityLogs": "RequestId"}


def _t(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts.microsecond * 10:07d}Z"


def _times(rng: random.Random, t0: pd.Timestamp, days: int, n: int) -> list[pd.Timestamp]:
    span = int(pd.Timedelta(days=days) / pd.Timedelta(microseconds=1))
    return [t0 + pd.Timedelta(days=rng.randrange(days)) if i % 23 == 0 else
            t0 + pd.Timedelta(microseconds=rng.randrange(span)) for i in range(n)]


def make_la_rows(start: str = "2023-06-01", days: int = 3, per_day: int = 40, seed: int = 11) -> dict[str, list[Any]]:
    """Rows of every Log Analytics table the collector knows, ``per_day`` per table and day."""
    rng = random.Random(seed)
    t0 = pd.Timestamp(start, tz="UTC")
    users = [f"user{i}@contoso.com" for i in range(6)]

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128)))

    def signin(table: str, category: str, ts: pd.Timestamp) -> dict[str, Any]:
        user = rng.choice(users)
        row = {"TenantId": TENANT, "TimeGenerated": _t(ts), "Type": table, "Category": category, "Id": uid(),
               "CreatedDateTime": _t(ts), "AppId": uid(), "AppDisplayName": "Office 365 Exchange Online",
               "IPAddress": f"203.0.113.{rng.randrange(255)}", "ResultType": "0",
               "UniqueTokenIdentifier": uid()[:22], "SessionId": uid(),
               "LocationDetails": json.dumps({"countryOrRegion": "US", "city": "Redmond"})}
        if table in ("AADServicePrincipalSignInLogs", "AADManagedIdentitySignInLogs"):
            row.update(ServicePrincipalId=uid(), ServicePrincipalName="backup-robot")
        else:
            row.update(UserPrincipalName=user, UserId=uid(), UserAgent="Mozilla/5.0",
                       IsInteractive=table == "SigninLogs")
        return row

    n = per_day * days
    out: dict[str, list[Any]] = {}
    for table, category in (("SigninLogs", "SignInLogs"),
                            ("AADNonInteractiveUserSignInLogs", "NonInteractiveUserSignInLogs"),
                            ("AADServicePrincipalSignInLogs", "ServicePrincipalSignInLogs"),
                            ("AADManagedIdentitySignInLogs", "ManagedIdentitySignInLogs")):
        out[table] = [signin(table, category, ts) for ts in _times(rng, t0, days, n)]
    out["AuditLogs"] = [{"TenantId": TENANT, "TimeGenerated": _t(ts), "Type": "AuditLogs", "Id": uid(),
                         "OperationName": "Consent to application", "Category": "ApplicationManagement",
                         "Result": "success", "ActivityDateTime": _t(ts),
                         "InitiatedBy": json.dumps({"user": {"userPrincipalName": rng.choice(users)}}),
                         "TargetResources": json.dumps([{"displayName": "app", "id": uid()}])}
                        for ts in _times(rng, t0, days, n // 2)]
    out["OfficeActivity"] = [{"TenantId": TENANT, "TimeGenerated": _t(ts), "Type": "OfficeActivity",
                              "OfficeId": uid(), "Operation": "MailItemsAccessed",
                              "RecordType": "ExchangeItemAggregated",
                              "OfficeWorkload": "Exchange", "UserId": rng.choice(users), "ClientIP": "198.51.100.7",
                              "MailboxOwnerUPN": rng.choice(users), "ResultStatus": "Succeeded",
                              "AppId": uid(), "ClientAppId": uid(), "Folders": json.dumps([])}
                             for ts in _times(rng, t0, days, n // 2)]
    out["MicrosoftGraphActivityLogs"] = [{"TenantId": TENANT, "TimeGenerated": _t(ts),
                                          "Type": "MicrosoftGraphActivityLogs", "RequestId": uid(),
                                          "RequestUri": "https://graph.microsoft.com/v1.0/me/messages",
                                          "RequestMethod": "GET", "AppId": uid(), "IPAddress": "198.51.100.8",
                                          "SignInActivityId": uid()[:22], "ResponseStatusCode": 200}
                                         for ts in _times(rng, t0, days, n // 4)]
    return out


def make_hunting_rows(start: str = "2023-06-01", days: int = 3, per_day: int = 30,
                      seed: int = 12) -> dict[str, list[Any]]:
    """Rows of the advanced hunting tables (EntraIdSignInEvents also under its older name)."""
    rng = random.Random(seed)
    t0 = pd.Timestamp(start, tz="UTC")

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128)))

    n = per_day * days
    cloud = [{"Timestamp": _t(ts), "ActionType": "MailItemsAccessed", "Application": "Microsoft Exchange Online",
              "AccountObjectId": uid(), "IPAddress": "198.51.100.9", "ReportId": uid(),
              "RawEventData": json.dumps({"Operation": "MailItemsAccessed"})} for ts in _times(rng, t0, days, n)]
    graph = [{"Timestamp": _t(ts), "ApplicationId": uid(), "RequestUri": "https://graph.microsoft.com/v1.0/users",
              "IPAddress": "198.51.100.10", "ReportId": uid(), "SignInActivityId": uid()[:22]}
             for ts in _times(rng, t0, days, n)]
    signins = [{"Timestamp": _t(ts), "AccountUpn": f"user{rng.randrange(6)}@contoso.com", "ReportId": uid(),
                "Application": "Office 365 Exchange Online", "IPAddress": "203.0.113.5", "ErrorCode": 0}
               for ts in _times(rng, t0, days, n)]
    return {"CloudAppEvents": cloud, "GraphApiAuditEvents": graph, "EntraIdSignInEvents": signins,
            "AADSignInEventsBeta": signins}


def row_id(row: dict[str, Any]) -> str:
    """The unique id of a row, whichever table it is from."""
    return str(row.get("Id") or row.get("OfficeId") or row.get("RequestId") or row.get("ReportId"))
