"""Independent readers for a generated sample tenant (tests only: they do not use the importer).

Field lists are copied from /work/shared/reference/graph-and-msal.md (§1.6 beta signIn property
list; §2.1 directoryAudit; §2.2/2.3 credentials and grants; §3.1 auditLogRecord; §3.2 common
record schema) and reference/storm-0558.md (MailItemsAccessed fields).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BETA_SIGNIN = set("""agent appDisplayName appId appOwnerTenantId appTokenProtectionStatus
appliedConditionalAccessPolicies appliedEventListeners authenticationAppDeviceDetails
authenticationAppPolicyEvaluationDetails
authenticationContextClassReferences authenticationDetails authenticationMethodsUsed authenticationProcessingDetails
authenticationProtocol authenticationRequirement authenticationRequirementPolicies autonomousSystemNumber
azureResourceId clientAppUsed clientCredentialType conditionalAccessAudiences conditionalAccessStatus correlationId
createdDateTime crossTenantAccessType deviceDetail federatedCredentialId flaggedForReview globalSecureAccessIpAddress
homeTenantId homeTenantName id incomingTokenType ipAddress ipAddressFromResourceProvider isInteractive
isTenantRestricted isThroughGlobalSecureAccess location managedServiceIdentity mfaDetail networkLocationDetails
originalRequestId originalTransferMethod privateLinkDetails processingTimeInMilliseconds resourceDisplayName resourceId
resourceOwnerTenantId resourceServicePrincipalId resourceTenantId riskDetail riskEventTypes_v2 riskLevelAggregated
riskLevelDuringSignIn riskState servicePrincipalCredentialKeyId servicePrincipalCredentialThumbprint
servicePrincipalId servicePrincipalName sessionId sessionLifetimePolicies signInEventTypes signInIdentifier
signInIdentifierType signInTokenProtectionStatus status tokenIssuerName tokenIssuerType tokenProtectionStatusDetails
uniqueTokenIdentifier userAgent userDisplayName userId userPrincipalName userType""".split())
STATUS = {"errorCode", "failureReason", "additionalDetails"}
DEVICE = {"deviceId", "displayName", "operatingSystem", "browser", "isCompliant", "isManaged", "trustType"}
LOCATION = {"city", "state", "countryOrRegion", "geoCoordinates"}
GEO = {"altitude", "latitude", "longitude"}
EVENT_TYPES = {"interactiveUser", "nonInteractiveUser", "servicePrincipal", "managedIdentity"}
TOKEN_ISSUER_TYPES = {"AzureAD", "ADFederationServices", "UnknownFutureValue", "AzureADBackupAuth"}
INCOMING = {"none", "primaryRefreshToken", "saml11", "saml20", "remoteDesktopToken", "refreshToken"}
PROTOCOLS = {"none", "oAuth2", "ropc", "wsFederation", "saml20", "deviceCode"}
CREDENTIAL_TYPES = {"none", "clientSecret", "clientAssertion", "federatedIdentityCredential", "managedIdentity",
                    "certificate"}
AUTH_DETAIL = {"authenticationStepDateTime", "authenticationMethod", "authenticationMethodDetail", "succeeded",
               "authenticationStepResultDetail", "authenticationStepRequirement"}

DIRECTORY_AUDIT = {"id", "activityDateTime", "activityDisplayName", "additionalDetails", "category", "correlationId",
                   "initiatedBy", "loggedByService", "operationType", "result", "resultReason", "targetResources"}
INITIATED_USER = {"id", "displayName", "userPrincipalName", "ipAddress"}
INITIATED_APP = {"appId", "displayName", "servicePrincipalId", "servicePrincipalName"}
TARGET = {"id", "displayName", "type", "userPrincipalName", "groupType", "modifiedProperties"}
MODIFIED = {"displayName", "oldValue", "newValue"}

AUDIT_LOG_RECORD = {"@odata.type", "id", "createdDateTime", "auditLogRecordType", "operation", "organizationId",
                    "userType", "userId", "userPrincipalName", "service", "objectId", "clientIp",
                    "administrativeUnits", "auditData"}
AUDIT_USER_TYPES = {"regular", "reserved", "admin", "dcAdmin", "system", "application", "servicePrincipal",
                    "customPolicy", "systemPolicy", "partnerTechnician", "guest"}
COMMON_SCHEMA = {"Id", "RecordType", "CreationTime", "Operation", "OrganizationId", "UserType", "UserKey", "Workload",
                 "ResultStatus", "UserId"}
MAIL_ITEMS = {"UserId", "MailboxOwnerUPN", "MailboxGuid", "LogonType", "ExternalAccess", "ClientIPAddress",
              "ClientInfoString", "SessionId", "AppId", "ClientAppId", "OperationProperties", "Folders",
              "OperationCount"}
APP_ACCESS_CONTEXT = {"UniqueTokenId", "AADSessionId", "IssuedAtTime", "ClientAppId"}
CSV_HEADER = ["RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData", "AssociatedAdminUnits",
              "AssociatedAdminUnitsNames"]
KEY_CREDENTIAL = {"customKeyIdentifier", "displayName", "endDateTime", "key", "keyId", "startDateTime", "type", "usage"}
PASSWORD_CREDENTIAL = {"customKeyIdentifier", "displayName", "endDateTime", "hint", "keyId", "secretText",
                       "startDateTime"}
GRANT = {"id", "clientId", "consentType", "principalId", "resourceId", "scope"}


def read_text(path: Path) -> str:
    """A file's text, gunzipped when it ends in .gz."""
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")


def pages(folder: Path) -> list[dict[str, Any]]:
    """Every page object of a folder of Graph list pages, in order."""
    files = sorted(folder.glob("page-*.json*"))
    assert files, f"no pages in {folder}"
    return [json.loads(read_text(f)) for f in files]


def records(folder: Path) -> list[dict[str, Any]]:
    """Every ``value`` record of a folder of pages."""
    return [r for p in pages(folder) for r in p["value"]]


def csv_export(root: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of the Purview export, plain or gzipped."""
    path = next((root / "purview").glob("audit_search_export.csv*"))
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    header = next(reader)
    return header, [dict(zip(header, row, strict=True)) for row in reader]


def ual(root: Path) -> Iterator[dict[str, Any]]:
    """Every AuditData record of the CSV export."""
    for row in csv_export(root)[1]:
        yield json.loads(row["AuditData"])


def bare_ip(value: str) -> str:
    """``ip`` from ``ip``, ``ip:port`` or ``[ipv6]:port``."""
    if value.startswith("["):
        return value[1:value.index("]")]
    return value.split(":")[0] if value.count(":") == 1 else value
