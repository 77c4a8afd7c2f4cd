"""The registry of import formats: each recognised from content and parsed in batches.

``FORMATS`` maps a format NAME to a :class:`Format` with ``NAME``, ``DESCRIPTION``,
``sniff(sample)`` (does this file look like mine?) and ``parse(...)`` (stream batches of
canonical events plus the records that had to be quarantined). :func:`detect` opens a file
and asks each format in registry order, so the most specific formats come first.

Batches are built by :func:`ir_toolkit.sources.batch.build_batch` (columns listed there).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ir_toolkit.sources import fastjson, fastmap, fastpath
from ir_toolkit.sources.batch import BATCH, Batch, Prepare, build_batch
from ir_toolkit.sources.evtxfile import read_evtx
from ir_toolkit.sources.fields import normalise_keys
from ir_toolkit.sources.mappers import LA_TABLES, classify
from ir_toolkit.sources.reader import CountingReader, Opened, csv_header, open_text, probe, read_records

__all__ = ["BATCH", "EMPTY", "FORMATS", "Batch", "Format", "Sample", "detect", "sample"]

SAMPLE = 20


@dataclass
class Sample:
    """What sniffing sees: the container, a CSV header and the first records (normalised keys)."""

    opened: Opened
    head: str
    header: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def families(self) -> list[str | None]:
        return [classify(r) for r in self.records]


# ----- record preparation per format ------------------------------------------------------------
ENTRA_CSV_COLUMNS = {  # Entra admin center "Download" CSV column -> Graph property (normalised)
    "date (utc)": "createddatetime", "date": "createddatetime", "request id": "id", "user agent": "useragent",
    "correlation id": "correlationid", "user id": "userid", "user": "userdisplayname",
    "username": "userprincipalname", "unique token identifier": "uniquetokenidentifier",
    "application": "appdisplayname", "application id": "appid", "app id": "appid", "resource": "resourcedisplayname",
    "resource id": "resourceid", "ip address": "ipaddress", "location": "location",
    "sign-in error code": "errorcode", "session id": "sessionid", "autonomous system number": "autonomoussystemnumber",
    "service principal id": "serviceprincipalid", "service principal name": "serviceprincipalname",
    "managed identity type": "managedidentitytype", "status": "statustext", "incoming token type": "incomingtokentype",
}


def _entra_csv(r: dict[str, Any], hint: str) -> dict[str, Any]:
    out = {ENTRA_CSV_COLUMNS.get(" ".join(k.split()), k): v for k, v in r.items()}  # "Autonomous system  number"
    if out.get("managedidentitytype") not in (None, "", "None", "none"):
        out["signineventtypes"] = ["managedIdentity"]
    elif out.get("serviceprincipalid") and not out.get("userprincipalname"):
        out["signineventtypes"] = ["servicePrincipal"]
    elif "noninteractive" in hint:
        out["signineventtypes"] = ["nonInteractiveUser"]
    else:
        out["signineventtypes"] = ["interactiveUser"]
    return out


# ----- the format class -------------------------------------------------------------------------
@dataclass(frozen=True)
class Format:
    """One import format.

    Attributes:
        NAME: Registry key, used with ``--format``.
        DESCRIPTION: What a responder would call the file.
        containers: Containers this format reads ("json", "jsonl", "csv").
        test: The content test behind :meth:`sniff`.
        family: Record family for every record (None: classify each record).
        prepare: Per-record key mapping before classification (normalised keys in and out).
    """

    NAME: str
    DESCRIPTION: str
    containers: tuple[str, ...]
    test: Callable[[Sample], bool]
    family: str | None = None
    prepare: Prepare | None = None

    def sniff(self, sample: Sample) -> bool:
        """True when the sampled file is of this format."""
        return sample.opened.container in self.containers and self.test(sample)

    def parse(self, path: Path, opened: Opened, *, evidence: str = "", batch_size: int = BATCH,
              dayfirst: bool | None = False, counter: CountingReader | None = None,
              fast: bool | None = None) -> Iterator[Batch]:
        """Stream the file as batches of canonical events; never raises on bad records.

        Args:
            path: The file (the case's copy).
            opened: Container and encoding from :func:`probe`.
            evidence: Case-relative name written into ``evidence`` and quarantine entries.
            batch_size: Records per batch (memory bound).
            dayfirst: Read ``a/b/yyyy`` dates as day/month.
            counter: Byte counter for progress bars.
            fast: Decode through DuckDB (:mod:`ir_toolkit.sources.fastpath`) where the file is of a kind
                it reads; None: only for files of ``fastpath.FAST_BYTES`` or more.
        """
        hint = path.name.lower().replace("-", "").replace("_", "")
        which: str | None = None
        mapped: fastmap.CsvPlan | fastjson.JsonPlan | None = None
        if opened.container != "evtx" and fast is not False and (fast or path.stat().st_size >= fastpath.FAST_BYTES):
            head = probe(path)[1]
            which = fastpath.kind(self.NAME, path, opened, head)
            if which is None and self.family is None and self.prepare is None:  # SQL generated from field maps
                mapped = fastmap.plan(path, opened, head) or fastjson.plan(path, opened, head)
        if opened.container == "evtx":
            yield from self._evtx(path, evidence, batch_size, counter)
            return
        if which is None and mapped is None:
            yield from self._per_record(path, opened, evidence, batch_size, dayfirst, counter, hint, 0)
            return
        slow = lambda done: self._per_record(path, opened, evidence, batch_size, dayfirst, None, hint, done)  # noqa: E731
        if mapped is not None:
            parse = fastmap.parse if isinstance(mapped, fastmap.CsvPlan) else fastjson.parse
            batches = parse(mapped, path, opened, evidence=evidence, batch_size=batch_size, dayfirst=dayfirst,  # type: ignore[arg-type]
                            hint=hint, slow=slow)
        else:
            batches = fastpath.parse_fast(which or "", path, opened, evidence=evidence, batch_size=batch_size,
                                          dayfirst=dayfirst, hint=hint, family=self.family, slow=slow)
        size = path.stat().st_size
        for batch in batches:  # DuckDB reads the file itself: the bar moves by the records' text
            if counter is not None and not opened.gzip:
                counter.count = min(counter.count + raw_bytes(batch), size - 1)
            yield batch
        if counter is not None:
            counter.count = size

    def _evtx(self, path: Path, evidence: str, batch_size: int, counter: CountingReader | None) -> Iterator[Batch]:
        """Batches of an EVTX file's records (read by ir_toolkit.sources.windows.read_evtx)."""
        stream = read_evtx(path)
        while True:
            batch = build_batch(itertools.islice(stream, batch_size), evidence=evidence, dayfirst=False,
                                family=self.family)
            if not batch.records:
                break
            yield batch
        if counter is not None:
            counter.count = path.stat().st_size

    def _per_record(self, path: Path, opened: Opened, evidence: str, batch_size: int, dayfirst: bool | None,
                    counter: CountingReader | None, hint: str, skip: int) -> Iterator[Batch]:
        """Batches through the per-record readers, after the first ``skip`` records."""
        with open_text(path, opened, counter) as fh:
            stream = read_records(fh, opened.container, opened.delimiter)
            if skip:
                stream = itertools.dropwhile(lambda item: item[0] <= skip, stream)
            while True:
                batch = build_batch(itertools.islice(stream, batch_size), evidence=evidence, dayfirst=dayfirst,
                                    hint=hint, family=self.family, prepare=self.prepare)
                if not batch.records:
                    return
                yield batch

def raw_bytes(batch: Batch) -> int:
    """The bytes of the records' text in a batch (how far into a plain file the batch reaches)."""
    if batch.events.empty:
        return 0
    raw = batch.events["raw"].array
    arr = raw.__arrow_array__() if hasattr(raw, "__arrow_array__") else pa.array(raw, pa.string())
    return int(pc.sum(pc.binary_length(arr)).as_py() or 0)


# ----- content tests ----------------------------------------------------------------------------
def _mostly(sample: Sample, family: str) -> bool:
    fams = [f for f in sample.families() if f is not None]
    return bool(fams) and fams.count(family) * 2 > len(fams)


_LA_NAMES = {*LA_TABLES, "auditlogs", "officeactivity"}


def _la(sample: Sample) -> bool:
    return any("timegenerated" in r or str(r.get("type", "")).lower() in _LA_NAMES
               for r in sample.records)


def _kql_projection(sample: Sample) -> bool:
    """A KQL result whose TimeGenerated and Type were projected away: its rows are still sign-ins,
    directory audits or unified audit log records (issue 15)."""
    return any(_mostly(sample, family) for family in ("signin", "directory_audit", "ual", "windows_event"))


def _odata(sample: Sample, *names: str) -> bool:
    head = sample.head[:2000].lower()
    return "@odata.context" in head and any(f"#{n.lower()}" in head or f"/{n.lower()}" in head for n in names)


def _graph(family: str, *odata: str) -> Callable[[Sample], bool]:
    def test(sample: Sample) -> bool:
        if _la(sample):
            return False
        return _mostly(sample, family) if sample.records else _odata(sample, *odata)

    return test


def _has(*columns: str) -> Callable[[Sample], bool]:
    return lambda s: all(c in s.header for c in columns)


def _mostly_of(sample: Sample, families: set[str]) -> bool:
    fams = [f for f in sample.families() if f is not None]
    return bool(fams) and sum(f in families for f in fams) * 2 > len(fams)


def _categories(sample: Sample) -> list[str]:
    return [str(r.get("category", "")) for r in sample.records if "properties" in r]


def _diagnostic(streaming: bool) -> Callable[[Sample], bool]:
    """Azure Monitor records: diagnostic settings (Entra categories), or Defender's Streaming API."""
    def test(sample: Sample) -> bool:
        cats = _categories(sample)
        hunting = sum(c.lower().startswith("advancedhunting-") for c in cats)
        return _mostly_of(sample, {"azure_monitor_record"}) and (hunting * 2 > len(cats)) == streaming

    return test


EXTRACTOR_TABLES = {"mailbox_rule", "transport_rule", "oauth_permission", "security_alert", "risky_user", "risk",
                    "directory_object", "extractor_mail_session", "extractor_message_id"}
DEFENDER = {"cloud_app_event", "defender_signin", "identity_logon", "email_event", "graph_activity", "defender_event",
            "alert_evidence", "security_alert"}


def _defender(sample: Sample) -> bool:
    """Advanced hunting rows: a Timestamp column (Log Analytics has TimeGenerated) and Defender tables."""
    rows = sample.records
    return bool(rows) and all("timestamp" in r and "timegenerated" not in r for r in rows) and \
        _mostly_of(sample, DEFENDER)


FORMATS: dict[str, Format] = {
    f.NAME: f
    for f in (
        Format("purview-csv", "Purview audit search CSV export (current header RecordId, CreationDate, RecordType, "
               "Operation, UserId, AuditData, ... or the legacy CreationDate, UserIds, Operations, AuditData)",
               ("csv",), _has("creationdate", "auditdata"), family="audit_record"),
        Format("entra-signins-csv", "Entra admin center sign-in log download (CSV)", ("csv",),
               lambda s: ("date (utc)" in s.header or "date" in s.header) and "request id" in s.header,
               family="signin", prepare=_entra_csv),
        Format("entra-audit-csv", "Entra admin center audit log download (CSV)", ("csv",),
               lambda s: "activity" in s.header and "actortype" in s.header and "correlationid" in s.header),
        Format("azure-diagnostic-records", "Azure Monitor diagnostic-settings records of Entra ID: storage-account "
               "blobs (PT1H.json, one record per line) and Event Hub bodies ({\"records\": [...]}) of the categories "
               "SignInLogs, NonInteractiveUserSignInLogs, ServicePrincipalSignInLogs, ManagedIdentitySignInLogs, "
               "MicrosoftServicePrincipalSignInLogs, AuditLogs, MicrosoftGraphActivityLogs, ProvisioningLogs, "
               "RiskyUsers, UserRiskEvents; properties unwrapped, routed by category",
               ("json", "jsonl"), _diagnostic(streaming=False)),
        Format("defender-streaming", "Defender XDR Streaming API records (Event Hub or storage: {\"records\": "
               "[{\"category\": \"AdvancedHunting-CloudAppEvents\", \"properties\": {...}}]})",
               ("json", "jsonl"), _diagnostic(streaming=True)),
        Format("defender-hunting-csv", "Defender XDR advanced hunting results exported from the portal (CSV): "
               "CloudAppEvents, AADSignInEventsBeta / EntraIdSignInEvents, AADSpnSignInEventsBeta, "
               "IdentityLogonEvents, EmailEvents, GraphApiAuditEvents; other tables kept whole in raw",
               ("csv",), _defender),
        Format("defender-hunting-json", "Defender XDR advanced hunting results as JSON: the API's "
               "{\"Schema\": [...], \"Results\": [...]}, Graph runHuntingQuery {\"schema\": [...], "
               "\"results\": [...]}, or a plain array (same tables as defender-hunting-csv)",
               ("json", "jsonl"), _defender),
        Format("splunk-csv", "Splunk search results exported as CSV with _raw (sourcetype "
               "o365:management:activity, azure:aad:signin, azure:aad:audit ...): each _raw mapped as the "
               "record it is", ("csv",), lambda s: "_raw" in s.header and _mostly_of(s, {"splunk_event"})),
        Format("splunk-json", "Splunk search results exported as JSON ({\"preview\": .., \"result\": {..}} "
               "lines, the REST API's {\"results\": [...]}, or arrays of events with _raw)", ("json", "jsonl"),
               lambda s: _mostly_of(s, {"splunk_event", "splunk_result"})),
        Format("wazuh-json", "Wazuh's Office 365 and Microsoft Graph module records ({\"integration\": \"office365\", "
               "\"office365\": {...}}, {\"integration\": \"ms-graph\", \"ms-graph\": {...}}) and the alerts.json / "
               "archives.json lines that hold them in \"data\": each record mapped as the record it is",
               ("json", "jsonl"), lambda s: _mostly_of(s, {"wazuh_event", "wazuh_graph_event", "wazuh_alert"})),
        Format("message-trace", "Exchange Online message trace: Get-MessageTrace / Get-MessageTraceV2 output "
               "(CSV or JSON), Get-MessageTraceDetail(V2), Graph's exchangeMessageTrace and its details, the "
               "Exchange admin center historical (summary) and extended (one row per event, UTF-16) message trace "
               "reports (CSV)",
               ("csv", "json", "jsonl"),
               lambda s: _mostly_of(s, {"message_trace", "message_trace_history", "message_trace_detail",
                                        "message_trace_event"})),
        Format("mailbox-audit-log", "Exchange's legacy mailbox audit log: Search-MailboxAuditLog -ShowDetails output "
               "(Export-Csv or ConvertTo-Json; Microsoft-Extractor-Suite's Get-MailboxAuditLog CSVs): MessageBind as "
               "mail access, the other mailbox operations kept as audit_other", ("csv", "json", "jsonl"),
               lambda s: _mostly_of(s, {"mailbox_audit"})),
        Format("exchange-admin-audit", "Exchange admin audit log as Hawk 1.x simplified Search-AdminAuditLog results "
               "(Simple_New_InboxRule.csv, Simple_User_Changes.csv ...: Caller, Cmdlet, FullCommand, RunDate(UTC), "
               "ObjectModified)", ("csv",), lambda s: _mostly_of(s, {"hawk_admin_audit"})),
        Format("extractor-suite-csv", "Microsoft-Extractor-Suite tenant-state CSVs: MailboxRules, TransportRules, "
               "OAuthPermissions, Users, RiskyUsers, RiskyDetections, SecurityAlerts, MailItemsAccessed Sessions and "
               "MessageIDs (its UAL, sign-in, audit and "
               "message trace outputs are read by the formats of those logs)", ("csv",),
               lambda s: _mostly_of(s, EXTRACTOR_TABLES) and "timegenerated" not in s.header),  # not Sentinel's
        Format("exchange-inbox-rules", "Get-InboxRule output exported to CSV or JSON (by hand, Hawk, Untitled Goose "
               "Tool, its Graph messageRule lines too): inbox rules as tenant state", ("csv", "json", "jsonl"),
               lambda s: _mostly_of(s, {"inbox_rule", "message_rule"})),
        Format("log-analytics-csv", "Log Analytics / Sentinel table export as CSV: SigninLogs, "
               "AADNonInteractiveUserSignInLogs, AADServicePrincipalSignInLogs, AADManagedIdentitySignInLogs, "
               "AuditLogs, OfficeActivity, MicrosoftGraphActivityLogs, AADProvisioningLogs, AADRiskyUsers, "
               "AADUserRiskEvents, and Defender tables streamed to Sentinel (CloudAppEvents ...)", ("csv",),
               lambda s: any(c in s.header for c in ("timegenerated", "tenantid")) or _la(s) or _kql_projection(s)),
        Format("log-analytics-json", "Log Analytics / Sentinel table export or query result as JSON "
               "(same tables as log-analytics-csv), including the query API's {\"tables\": [{\"columns\", \"rows\"}]} "
               "body", ("json", "jsonl"), lambda s: _la(s)),
        Format("windows-evtx", "Windows event log files (.evtx): Security of the AD FS servers and domain "
               "controllers (AD FS audits 1200-1207, 299/412/500/501, 4662 DKM reads), "
               "CertificateServicesClient-Lifecycle-System (1007 certificate export)", ("evtx",),
               lambda s: True, family="windows_event"),
        Format("graph-audit-records", "Microsoft Graph security auditLogRecord pages (records of an audit log "
               "query, with auditData)", ("json", "jsonl"), _graph("audit_record", "auditLog/queries")),
        Format("management-api", "Office 365 Management Activity API content (unified audit log records, "
               "PascalCase), arrays or JSON lines", ("json", "jsonl"), lambda s: not _la(s) and _mostly(s, "ual")),
        Format("graph-signins", "Microsoft Graph signIns v1.0/beta (all four event types) and Entra admin center "
               "JSON downloads: pages, arrays, JSON lines, gzip", ("json", "jsonl"), _graph("signin", "signIns")),
        Format("graph-directory-audits", "Microsoft Graph directoryAudits", ("json", "jsonl"),
               _graph("directory_audit", "directoryAudits")),
        Format("graph-risk-detections", "Microsoft Graph identityProtection riskDetections", ("json", "jsonl"),
               _graph("risk", "riskDetections")),
        Format("graph-provisioning", "Microsoft Graph provisioning logs (provisioningObjectSummary)",
               ("json", "jsonl"), _graph("provisioning", "provisioning")),
        Format("graph-risky-users", "Microsoft Graph identityProtection riskyUsers", ("json", "jsonl"),
               _graph("risky_user", "riskyUsers")),
        Format("graph-security-alerts", "Microsoft Graph security alerts: alerts_v2 and the legacy security/alerts "
               "(tenant state: securityAlert, result the severity, target the title)", ("json", "jsonl"),
               _graph("security_alert", "security/alerts_v2", "security/alerts")),
        Format("graph-directory-objects", "Microsoft Graph users, servicePrincipals, applications, "
               "oauth2PermissionGrants (tenant snapshot)", ("json", "jsonl"),
               _graph("directory_object", "users", "servicePrincipals", "applications", "oauth2PermissionGrants")),
    )
}


def sample(path: Path) -> Sample:
    """Open ``path`` and read what sniffing needs.

    Raises:
        OSError: unreadable file.  ValueError: empty file.
    """
    opened, head = probe(path)
    s = Sample(opened, head)
    if opened.container == "evtx":
        first = itertools.islice(read_evtx(path), SAMPLE)
        s.records = [normalise_keys(rec) for _, rec in first if isinstance(rec, dict)]
        return s
    if opened.container == "csv":
        s.header = [normalise_keys({h: None}).popitem()[0]
                    for h in csv_header(head.lstrip("\ufeff"), opened.delimiter)]
    with open_text(path, opened) as fh:
        for _, rec in itertools.islice(read_records(fh, opened.container, opened.delimiter), SAMPLE):
            if isinstance(rec, dict):
                s.records.append(normalise_keys(rec))
    return s


def detect(s: Sample) -> Format | None:
    """The first registered format whose sniff accepts the sample, or None."""
    return next((f for f in FORMATS.values() if f.sniff(s)), None)


# an empty query result ([], {"value": []}, a header-only CSV ...) that no format claims: accepted with
# 0 records (ir_toolkit.sources.filechecks.is_empty_result decides; never chosen by detect)
EMPTY = Format("empty", "an empty query result: [], {\"value\": []}, a CSV header without rows",
               ("json", "jsonl", "csv"), lambda s: False)
