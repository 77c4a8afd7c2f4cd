"""The canonical event and finding columns: the one place that defines them.

Every importer and collector turns a log record into one row of the canonical
event table; every detection reads it. The table is stored as Parquet under
``CASE/events/<source>/`` and read back as a pandas DataFrame whose columns and
dtypes are exactly :data:`EVENT_COLUMNS`.

Times are tz-aware UTC everywhere inside the toolkit; display zones are a
parameter of the report and the plots only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

TIME_TYPE = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    """One canonical column.

    Attributes:
        name: Column name.
        type: Arrow type in the Parquet store.
        description: What the column holds, in the responder's words.
    """

    name: str
    type: pa.DataType
    description: str


EVENT_COLUMNS: tuple[Column, ...] = (
    Column("time", TIME_TYPE, "When the event happened (UTC)."),
    Column("source", pa.string(), "Log family: signin_interactive, signin_noninteractive, "
           "signin_serviceprincipal, signin_managedidentity, directory_audit, mail_access, "
           "audit_other, graph_activity, mail_flow, tenant_snapshot, risk_detection, token."),
    Column("operation", pa.string(), "What happened, e.g. MailItemsAccessed, Sign-in, New-InboxRule."),
    Column("result", pa.string(), "success, failure, or the source's own result word."),
    Column("error_code", pa.int64(), "Numeric error/status code where the source has one (0 = success)."),
    Column("user", pa.string(), "Acting user's UPN, lower case (or the service principal name)."),
    Column("user_id", pa.string(), "Acting user's or service principal's object id."),
    Column("user_display_name", pa.string(), "Acting user's display name as logged (directory audits: "
           "initiatedBy.user.displayName; a Microsoft service's name there beside a person's UPN marks an "
           "actor token)."),
    Column("mailbox", pa.string(), "Owner UPN of the mailbox acted upon (mailbox events), lower case."),
    Column("app_id", pa.string(), "Application (client) id that acted, lower case GUID."),
    Column("app_name", pa.string(), "Application display name as logged."),
    Column("client_app_id", pa.string(), "ClientAppId of mailbox access (the app the token was issued to)."),
    Column("resource_id", pa.string(), "Resource (audience) application id of a sign-in."),
    Column("ip", pa.string(), "Client IP address, without port or brackets."),
    Column("country", pa.string(), "Country or region code where known."),
    Column("asn", pa.int64(), "Autonomous system number where known."),
    Column("user_agent", pa.string(), "User agent or Exchange ClientInfoString."),
    Column("session_id", pa.string(), "Entra session id (sign-in sessionId / AADSessionId)."),
    Column("token_id", pa.string(), "Unique token identifier (uniqueTokenIdentifier / UniqueTokenId / uti)."),
    Column("token_issued_at", TIME_TYPE, "When the token used was issued (AppAccessContext.IssuedAtTime)."),
    Column("exchange_session_id", pa.string(), "Exchange SessionId of mailbox events."),
    Column("mail_access_type", pa.string(), "Bind or Sync for MailItemsAccessed."),
    Column("items", pa.int64(), "Number of mail items touched (OperationCount)."),
    Column("message_ids", pa.list_(pa.string()), "InternetMessageIds of the items touched."),
    Column("folders", pa.list_(pa.string()), "Mailbox folder paths touched."),
    Column("throttled", pa.bool_(), "True when Bind logging for this mailbox was throttled."),
    Column("target", pa.string(), "What the operation acted upon (rule, app, permission, object)."),
    Column("request_uri", pa.string(), "Requested URI of an API call (Graph activity logs), as logged."),
    Column("request_method", pa.string(), "HTTP method of an API call (GET, POST, PATCH, DELETE ...)."),
    Column("response_status", pa.int64(), "HTTP status code the API call was answered with."),
    Column("scopes", pa.string(), "Delegated permissions (scp) of the token used, space-separated as logged."),
    Column("roles", pa.string(), "Application permissions (roles) of the token used, space-separated as logged."),
    Column("record_id", pa.string(), "The record's own id (de-duplication key within a source)."),
    Column("evidence", pa.string(), "Evidence file (case-relative) and line/record that the row came from."),
    Column("raw", pa.string(), "The original record as JSON: nothing of it is lost."),
)

EVENT_SCHEMA: pa.Schema = pa.schema([pa.field(c.name, c.type) for c in EVENT_COLUMNS])
EVENT_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in EVENT_COLUMNS)

SOURCES: dict[str, str] = {
    "signin_interactive": "Entra interactive user sign-ins",
    "signin_noninteractive": "Entra non-interactive user sign-ins",
    "signin_serviceprincipal": "Entra service principal sign-ins",
    "signin_managedidentity": "Entra managed identity sign-ins",
    "directory_audit": "Entra directory audit log",
    "mail_access": "Exchange MailItemsAccessed audit records",
    "audit_other": "Other unified audit log records",
    "graph_activity": "Microsoft Graph activity logs (API requests: URI, method, status, token)",
    "mail_flow": "Messages sent and received (message trace, Defender EmailEvents)",
    "tenant_snapshot": "Directory objects: applications, service principals, grants",
    "risk_detection": "Entra ID Protection risk detections",
    "token": "Tokens found in files (token scan)",
    "windows_event": "Windows Security and AD FS audit events (EVTX, Log Analytics SecurityEvent / Event)",
}
SIGNIN_SOURCES: tuple[str, ...] = tuple(s for s in SOURCES if s.startswith("signin_"))

FINDING_COLUMNS: tuple[Column, ...] = (
    Column("finding_id", pa.string(), "Stable id of the finding (detection id + hash of its key)."),
    Column("detection", pa.string(), "Detection id that produced it."),
    Column("title", pa.string(), "Detection title."),
    Column("severity", pa.string(), "informational, low, medium, high, critical."),
    Column("verdict", pa.string(), "confirmed, likely, possible, unverifiable, benign."),
    Column("first", TIME_TYPE, "First event time covered."),
    Column("last", TIME_TYPE, "Last event time covered."),
    Column("mailbox", pa.string(), "Mailbox implicated."),
    Column("user", pa.string(), "User implicated."),
    Column("ip", pa.string(), "Address implicated."),
    Column("app_id", pa.string(), "Application implicated."),
    Column("token_id", pa.string(), "Token implicated."),
    Column("session_id", pa.string(), "Session implicated."),
    Column("events", pa.int64(), "Number of supporting events."),
    Column("explanation", pa.string(), "One sentence with the numbers behind it."),
    Column("techniques", pa.list_(pa.string()), "MITRE ATT&CK technique ids."),
    Column("evidence", pa.list_(pa.string()), "record_ids of the supporting events."),
    Column("member", pa.string(), "Member of the token-abuse family the detection rules in (forged-oauth-token, "
           "app-abuse, actor-token, golden-saml, silver-saml); empty for signals that only support a verdict."),
)
FINDING_SCHEMA: pa.Schema = pa.schema([pa.field(c.name, c.type) for c in FINDING_COLUMNS])
FINDING_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in FINDING_COLUMNS)


def _pandas_dtype(t: pa.DataType) -> Any:
    if pa.types.is_timestamp(t):
        return "datetime64[us, UTC]"
    if pa.types.is_int64(t):
        return "Int64"
    if pa.types.is_boolean(t):
        return "boolean"
    return "object"


def empty_frame(columns: tuple[Column, ...] = EVENT_COLUMNS) -> pd.DataFrame:
    """An empty DataFrame with the canonical columns and dtypes."""
    return pd.DataFrame({c.name: pd.Series([], dtype=_pandas_dtype(c.type)) for c in columns})


def conform(frame: pd.DataFrame, columns: tuple[Column, ...] = EVENT_COLUMNS) -> pd.DataFrame:
    """Return ``frame`` with exactly the canonical columns, in order, with canonical dtypes.

    Missing columns are added empty; unknown columns are dropped (they belong in ``raw``).
    Naive timestamps are rejected: every time inside the toolkit is tz-aware UTC.

    Raises:
        ValueError: when a time column holds naive datetimes.
    """
    out = {}
    n = len(frame)
    for c in columns:
        dtype = _pandas_dtype(c.type)
        if c.name in frame.columns:
            s = frame[c.name]
            if dtype.startswith("datetime64"):
                if pd.api.types.is_datetime64_any_dtype(s) and getattr(s.dt, "tz", None) is None:
                    raise ValueError(f"column {c.name!r} holds naive datetimes; use tz-aware UTC")
                s = pd.to_datetime(s, utc=True).astype(dtype)
            elif dtype != "object":
                s = s.astype(dtype)
            elif not isinstance(s.dtype, pd.ArrowDtype):  # Arrow-backed columns go to Parquet as they are
                s = s.astype(object).where(s.notna(), None)
            out[c.name] = s.reset_index(drop=True)
        else:
            out[c.name] = pd.Series([None] * n, dtype=dtype if dtype != "object" else object)
    return pd.DataFrame(out)


def to_arrow(frame: pd.DataFrame, columns: tuple[Column, ...] = EVENT_COLUMNS) -> pa.Table:
    """Convert a conformed frame to an Arrow table with the canonical schema."""
    schema = pa.schema([pa.field(c.name, c.type) for c in columns])
    return pa.Table.from_pandas(conform(frame, columns), schema=schema, preserve_index=False)


def describe_markdown() -> str:
    """The event columns as a Markdown table (used by docs/schema.md)."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| {c.name} | {c.type} | {c.description} |" for c in EVENT_COLUMNS]
    return "\n".join(lines)
