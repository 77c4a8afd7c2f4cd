"""Entra directory objects: ``directoryAudit`` records and the tenant snapshot (users, apps, grants).

Shapes follow graph-and-msal.md §2 (directoryAudits v1.0; applications and servicePrincipals with
keyCredentials / passwordCredentials; oauth2PermissionGrants). Pure builders.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from typing import Any

from ir_toolkit.sample.ids import graph_time, graph_time7, guid, hexid
from ir_toolkit.sample.story import Story, User

MS_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
GRAPH_SP_NAME = "Microsoft Graph"


def directory_audit(rng: random.Random, t: datetime, *, activity: str, category: str, operation_type: str,
                    initiator: User | None, app: tuple[str, str] | None, target: dict[str, Any],
                    service: str = "Core Directory", details: list[tuple[str, str]] = (),  # type: ignore[assignment]
                    ) -> dict[str, Any]:
    """One directoryAudit; ``initiator`` a user, or ``app`` = (appId, displayName) for app-initiated."""
    by: dict[str, Any] = {"user": None, "app": None}
    if initiator is not None:
        by["user"] = {"id": initiator.id, "displayName": None, "userPrincipalName": initiator.upn,
                      "ipAddress": initiator.home_ip}
    if app is not None:
        by["app"] = {"appId": app[0], "displayName": app[1], "servicePrincipalId": guid(rng),
                     "servicePrincipalName": None}
    return {"id": f"Directory_{guid(rng)}", "category": category, "correlationId": guid(rng), "result": "success",
            "resultReason": "", "activityDisplayName": activity, "activityDateTime": graph_time7(t, rng),
            "loggedByService": service, "operationType": operation_type, "initiatedBy": by,
            "targetResources": [target], "additionalDetails": [{"key": k, "value": v} for k, v in details]}


def user_target(user: User, props: list[tuple[str, str, str]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """A targetResources entry for a user; ``props`` = [(displayName, oldValue, newValue)]."""
    return {"id": user.id, "displayName": None, "type": "User", "userPrincipalName": user.upn, "groupType": None,
            "modifiedProperties": [{"displayName": n, "oldValue": o, "newValue": v} for n, o, v in props]}


def object_target(obj_id: str, name: str, kind: str, props: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
                  ) -> dict[str, Any]:
    """A targetResources entry for an application, service principal or group."""
    return {"id": obj_id, "displayName": name, "type": kind, "userPrincipalName": None, "groupType": None,
            "modifiedProperties": [{"displayName": n, "oldValue": o, "newValue": v} for n, o, v in props]}


def _thumb(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest().upper()  # noqa: S324 - a made-up certificate thumbprint


def snapshot(story: Story) -> dict[str, list[dict[str, Any]]]:
    """The tenant snapshot: Graph ``users``, ``servicePrincipals``, ``applications``, ``oauth2PermissionGrants``."""
    rng = random.Random(f"{story.seed}|snapshot")
    created = datetime(2019, 3, 4, 15, 0) + timedelta(days=rng.randint(0, 300))
    users: list[dict[str, Any]] = [{"id": u.id, "displayName": u.display, "givenName": u.given, "surname": u.surname,
              "userPrincipalName": u.upn, "mail": u.upn, "jobTitle": u.job, "department": u.department,
              "officeLocation": "Headquarters" if u.index % 3 else "Remote", "businessPhones": [],
              "mobilePhone": None, "preferredLanguage": "en-US", "accountEnabled": True, "userType": "Member",
              "createdDateTime": graph_time(created + timedelta(days=7 * u.index))} for u in story.users]
    b, c = story.backup_app, story.new_client
    backup_key = {"customKeyIdentifier": _thumb(b["keyId"]), "displayName": f"CN={b['name']}",
                  "endDateTime": "2024-09-30T00:00:00Z", "key": None, "keyId": b["keyId"],
                  "startDateTime": "2022-10-01T00:00:00Z", "type": "AsymmetricX509Cert", "usage": "Verify"}
    secret = {"customKeyIdentifier": None, "displayName": "setup", "endDateTime": "2024-01-15T00:00:00Z",
              "hint": "q~8", "keyId": guid(rng), "secretText": None, "startDateTime": "2022-01-15T00:00:00Z"}
    graph_sp = guid(rng)
    sps = [
        {"id": b["spId"], "appId": b["appId"], "displayName": b["name"], "appOwnerOrganizationId": b["ownerTenant"],
         "servicePrincipalType": "Application", "accountEnabled": True, "signInAudience": "AzureADMultipleOrgs",
         "appRoleAssignmentRequired": False, "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
         "keyCredentials": [backup_key], "passwordCredentials": [], "createdDateTime": "2022-10-01T10:12:00Z"},
        {"id": c["spId"], "appId": c["appId"], "displayName": c["name"], "appOwnerOrganizationId": c["ownerTenant"],
         "servicePrincipalType": "Application", "accountEnabled": True,
         "signInAudience": "AzureADandPersonalMicrosoftAccount",
         "appRoleAssignmentRequired": False, "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
         "keyCredentials": [], "passwordCredentials": [], "createdDateTime": graph_time(
             datetime(story.switch_day.year, story.switch_day.month, story.switch_day.day, 14, 2))},
        {"id": graph_sp, "appId": "00000003-0000-0000-c000-000000000000", "displayName": GRAPH_SP_NAME,
         "appOwnerOrganizationId": MS_TENANT, "servicePrincipalType": "Application", "accountEnabled": True,
         "signInAudience": "AzureADMultipleOrgs", "appRoleAssignmentRequired": False, "tags": [],
         "keyCredentials": [], "passwordCredentials": [], "createdDateTime": graph_time(created)},
        {"id": guid(rng), "appId": "00000002-0000-0ff1-ce00-000000000000", "displayName": "Office 365 Exchange Online",
         "appOwnerOrganizationId": MS_TENANT, "servicePrincipalType": "Application", "accountEnabled": True,
         "signInAudience": "AzureADMultipleOrgs", "appRoleAssignmentRequired": False, "tags": [],
         "keyCredentials": [], "passwordCredentials": [], "createdDateTime": graph_time(created)},
    ]
    internal_app = guid(rng)
    apps = [{"id": guid(rng), "appId": internal_app, "displayName": f"{story.org_name} HR Sync",
             "createdDateTime": "2021-02-11T09:30:00Z", "signInAudience": "AzureADMyOrg",
             "publisherDomain": story.domain, "keyCredentials": [], "passwordCredentials": [secret],
             "requiredResourceAccess": [{"resourceAppId": "00000003-0000-0000-c000-000000000000",
                                         "resourceAccess": [{"id": "df021288-bdef-4463-88db-98f22de89214",
                                                             "type": "Role"}]}]}]
    sps.append({"id": guid(rng), "appId": internal_app, "displayName": f"{story.org_name} HR Sync",
                "appOwnerOrganizationId": story.tenant_id, "servicePrincipalType": "Application",
                "accountEnabled": True, "signInAudience": "AzureADMyOrg", "appRoleAssignmentRequired": False,
                "tags": [], "keyCredentials": [], "passwordCredentials": [], "createdDateTime": "2021-02-11T09:30:00Z"})
    grants: list[dict[str, Any]] = [{"id": hexid(rng, 43), "clientId": c["spId"], "consentType": "Principal",
               "principalId": story.users[i].id, "resourceId": graph_sp,
               "scope": "openid profile offline_access Mail.ReadWrite Mail.Send User.Read"} for i in story.switchers]
    grants.append({"id": hexid(rng, 43), "clientId": b["spId"], "consentType": "AllPrincipals", "principalId": None,
                   "resourceId": graph_sp, "scope": "User.Read"})
    return {"users": users, "servicePrincipals": sps, "applications": apps, "oauth2PermissionGrants": grants}
