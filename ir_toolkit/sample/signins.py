"""Graph beta ``signIn`` records (interactive, non-interactive, service principal).

Field names, nesting and value shapes follow the beta signIn resource (graph-and-msal.md §1.6):
``uniqueTokenIdentifier`` and ``sessionId`` link a sign-in to the mailbox access its token allowed.
Pure builders: each returns one dict ready for a ``value`` array.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from ir_toolkit.sample.ids import graph_time, guid, token_id

MOBILE_DESKTOP = "Mobile Apps and Desktop clients"
EXCHANGE = ("00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online")
GRAPH = ("00000003-0000-0000-c000-000000000000", "Microsoft Graph")

# Where tenant addresses are, for location and ASN (documentation ranges, made-up places).
SITES = {
    "192.0.2.": ("Arlington", "Virginia", "US", 38.88, -77.1, 7018),
    "198.51.100.": ("Washington", "District of Columbia", "US", 38.9, -77.03, 7922),
    "2001:db8:1:": ("Baltimore", "Maryland", "US", 39.29, -76.61, 701),
    "198.51.100.20": ("Boston", "Massachusetts", "US", 42.36, -71.06, 16509),   # the backup vendor's cloud
}
ABROAD = {"JP": (35.69, 139.69, 2516), "SG": (1.29, 103.85, 4657), "KR": (37.57, 126.98, 4766),
          "AU": (-33.87, 151.21, 1221)}   # country -> (latitude, longitude, ASN) of the traveller's hotel
SPRAY_PLACE = ("Amsterdam", "Noord-Holland", "NL", 52.37, 4.9, 60781)


def place(ip: str) -> tuple[str, str, str, float, float, int]:
    """(city, state, country, lat, lon, asn) of a tenant address."""
    best = ""
    for prefix in SITES:
        if ip.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return SITES[best] if best else SPRAY_PLACE


def _base(rng: random.Random, t: datetime, app: tuple[str, str], resource: tuple[str, str], ip: str,
          loc: tuple[str, str, str, float, float, int], tenant_id: str) -> dict[str, Any]:
    city, state, country, lat, lon, asn = loc
    return {
        "id": guid(rng), "createdDateTime": graph_time(t),
        "userDisplayName": None, "userPrincipalName": None, "userId": None,
        "appId": app[0], "appDisplayName": app[1], "ipAddress": ip, "ipAddressFromResourceProvider": None,
        "clientAppUsed": MOBILE_DESKTOP, "userAgent": "",
        "correlationId": guid(rng), "conditionalAccessStatus": "notApplied", "originalRequestId": guid(rng),
        "isInteractive": False, "tokenIssuerName": "", "tokenIssuerType": "AzureAD",
        "clientCredentialType": "none", "processingTimeInMilliseconds": rng.randint(40, 900),
        "riskDetail": "none", "riskLevelAggregated": "none", "riskLevelDuringSignIn": "none", "riskState": "none",
        "riskEventTypes_v2": [], "resourceDisplayName": resource[1], "resourceId": resource[0],
        "resourceTenantId": tenant_id, "homeTenantId": tenant_id, "homeTenantName": "",
        "appOwnerTenantId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a", "resourceOwnerTenantId": tenant_id,
        "authenticationProtocol": "none", "incomingTokenType": "none", "authenticationRequirement":
        "singleFactorAuthentication", "authenticationMethodsUsed": [], "signInIdentifier": "",
        "signInIdentifierType": None, "servicePrincipalId": "", "servicePrincipalName": "",
        "servicePrincipalCredentialKeyId": "", "servicePrincipalCredentialThumbprint": "",
        "uniqueTokenIdentifier": token_id(rng), "sessionId": "", "signInEventTypes": [],
        "userType": "member", "flaggedForReview": False, "isTenantRestricted": False,
        "isThroughGlobalSecureAccess": False, "autonomousSystemNumber": asn, "crossTenantAccessType": "none",
        "status": {"errorCode": 0, "failureReason": None, "additionalDetails": None},
        "deviceDetail": {"deviceId": "", "displayName": "", "operatingSystem": "", "browser": "",
                         "isCompliant": False, "isManaged": False, "trustType": ""},
        "location": {"city": city, "state": state, "countryOrRegion": country,
                     "geoCoordinates": {"altitude": None, "latitude": lat, "longitude": lon}},
        "appliedConditionalAccessPolicies": [], "authenticationProcessingDetails": [],
        "networkLocationDetails": [], "authenticationDetails": [], "authenticationRequirementPolicies": [],
        "sessionLifetimePolicies": [], "authenticationAppDeviceDetails": None,
        "authenticationAppPolicyEvaluationDetails": [], "authenticationContextClassReferences": [],
        "appTokenProtectionStatus": None, "signInTokenProtectionStatus": "none", "tokenProtectionStatusDetails": None,
        "managedServiceIdentity": {"msiType": "none", "associatedResourceId": None, "federatedTokenId": None,
                                   "federatedTokenIssuer": None},
        "mfaDetail": None, "privateLinkDetails": None, "globalSecureAccessIpAddress": None, "agent": None,
    }


def user_signin(rng: random.Random, t: datetime, *, user: Any, tenant_id: str, app: tuple[str, str], ip: str,
                user_agent: str, os_name: str, browser: str, session_id: str, interactive: bool,
                loc: tuple[str, str, str, float, float, int] | None = None, error: tuple[int, str] | None = None,
                resource: tuple[str, str] = EXCHANGE, protocol: str = "none", owner: str | None = None,
                ) -> dict[str, Any]:
    """A user sign-in (``interactiveUser`` or ``nonInteractiveUser``); ``error`` = (code, reason) for a failure."""
    rec = _base(rng, t, app, resource, ip, loc or place(ip), tenant_id)
    rec.update({"userDisplayName": user.display, "userPrincipalName": user.upn, "userId": user.id,
                "userAgent": user_agent, "sessionId": session_id, "isInteractive": interactive,
                "signInIdentifier": user.upn if interactive else "", "authenticationProtocol": protocol,
                "signInEventTypes": ["interactiveUser" if interactive else "nonInteractiveUser"],
                "incomingTokenType": "none" if interactive else "primaryRefreshToken",
                "clientAppUsed": "Browser" if browser.startswith(("Edge", "Chrome")) else MOBILE_DESKTOP})
    if owner is not None:
        rec["appOwnerTenantId"] = owner
    rec["deviceDetail"].update({"operatingSystem": os_name, "browser": browser})
    if interactive:
        ok = error is None
        rec["authenticationDetails"] = [{
            "authenticationStepDateTime": graph_time(t), "authenticationMethod": "Password",
            "authenticationMethodDetail": "Password in the cloud", "succeeded": ok,
            "authenticationStepResultDetail": "Correct password" if ok else "Invalid username or password or "
            "Invalid on-premise username or password.", "authenticationStepRequirement": "Primary authentication"}]
        rec["authenticationProcessingDetails"] = [{"key": "Login Hint Present", "value": "True"}]
    if error is not None:
        rec["status"] = {"errorCode": error[0], "failureReason": error[1],
                         "additionalDetails": "The user didn't enter the right credentials."}
        rec["uniqueTokenIdentifier"] = token_id(rng)   # Entra logs an identifier even for failed requests
        rec["sessionId"] = ""
    return rec


def sp_signin(rng: random.Random, t: datetime, *, app: dict[str, str], tenant_id: str, ip: str,
              resource: tuple[str, str] = GRAPH) -> dict[str, Any]:
    """An app-only (client credentials) ``servicePrincipal`` sign-in with a certificate."""
    rec = _base(rng, t, (app["appId"], app["name"]), resource, ip, place(ip), tenant_id)
    rec.update({"servicePrincipalId": app["spId"], "servicePrincipalName": app["name"],
                "servicePrincipalCredentialKeyId": app["keyId"],
                "servicePrincipalCredentialThumbprint": app.get("thumbprint", ""),
                "clientCredentialType": "certificate", "signInEventTypes": ["servicePrincipal"],
                "appOwnerTenantId": app.get("ownerTenant", tenant_id), "clientAppUsed": None,
                "userType": None, "authenticationProtocol": "none"})
    return rec
