"""The registry of import formats: each recognised from content and parsed in batches.

``FORMATS`` maps a format NAME to a :class:`Format` with ``NAME``, ``DESCRIPTION``,
``sniff(sample)`` (does this file look like mine?) and ``parse(...)`` (stream batches of
canonical events plus the records that had to be quarantined). :func:`detect` opens a file
and asks each format in registry order, so the most specific formats come first.

Each batch's frame has the canonical columns of :mod:`ir_toolkit.schema`: time (UTC),
source, operation, result, error_code, user, user_id, mailbox, app_id, app_name,
client_app_id, resource_id, ip, country, asn, user_agent, session_id, token_id,
token_issued_at, exchange_session_id, mail_access_type, items, message_ids, folders,
throttled, target, record_id, evidence (``FILE#POSITION``) and raw (the record as compact JSON).
"""

from __future__ import annotations

import gc
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ir_toolkit.sources.fields import boolean, integer, normalise_keys, text
from ir_toolkit.sources.mappers import LA_TABLES, MAPPERS, UNWRAP, RecordError, classify
from ir_toolkit.sources.reader import READERS, Broken, CountingReader, Opened, csv_header, open_text, probe
from ir_toolkit.timeutil import parse_times

try:  # orjson is a declared dependency; the stdlib keeps the importer working without it
    import orjson

    def _dumps(obj: Any) -> bytes:
        """The record as compact UTF-8 JSON. Raises UnicodeEncodeError for undecodable bytes."""
        try:
            return orjson.dumps(obj)
        except TypeError:  # integers beyond 64 bits, lone surrogates
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
except ImportError:  # pragma: no cover
    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

MAPPED_COLUMNS = (
    "time", "source", "operation", "result", "error_code", "user", "user_id", "mailbox", "app_id", "app_name",
    "client_app_id", "resource_id", "ip", "country", "asn", "user_agent", "session_id", "token_id",
    "token_issued_at", "exchange_session_id", "mail_access_type", "items", "message_ids", "folders",
    "throttled", "target", "record_id",
)
BATCH = 50_000
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


@dataclass
class Batch:
    """One parsed batch: canonical events and the records that went to quarantine."""

    events: pd.DataFrame
    quarantined: list[dict[str, Any]]
    records: int


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
    out = {ENTRA_CSV_COLUMNS.get(k, k): v for k, v in r.items()}
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
    prepare: Callable[[dict[str, Any], str], dict[str, Any]] | None = None

    def sniff(self, sample: Sample) -> bool:
        """True when the sampled file is of this format."""
        return sample.opened.container in self.containers and self.test(sample)

    def parse(self, path: Path, opened: Opened, *, evidence: str = "", batch_size: int = BATCH,
              dayfirst: bool = False, counter: CountingReader | None = None) -> Iterator[Batch]:
        """Stream the file as batches of canonical events; never raises on bad records.

        Args:
            path: The file (the case's copy).
            opened: Container and encoding from :func:`probe`.
            evidence: Case-relative name written into ``evidence`` and quarantine entries.
            batch_size: Records per batch (memory bound).
            dayfirst: Read ``a/b/yyyy`` dates as day/month.
            counter: Byte counter for progress bars.
        """
        hint = path.name.lower().replace("-", "").replace("_", "")
        with open_text(path, opened, counter) as fh:
            stream = READERS[opened.container](fh)
            while True:
                batch = self._batch(itertools.islice(stream, batch_size), evidence, dayfirst, hint)
                if not batch.records:
                    return
                yield batch

    def _batch(self, chunk: Iterator[tuple[int, Any]], evidence: str, dayfirst: bool, hint: str) -> Batch:
        groups: dict[str, tuple[list[dict[str, Any]], list[int], list[bytes]]] = {}
        quarantined: list[dict[str, Any]] = []
        records = 0
        group: Any = None
        item: Any = None
        rec: Any = None
        norm: Any = None

        def bad(pos: int, reason: str, record: Any) -> None:
            if isinstance(record, bytes):
                record = record.decode("utf-8", "backslashreplace")
            elif isinstance(record, str):
                record = _printable(record)
            quarantined.append({"file": evidence, "position": pos, "reason": reason, "record": record})

        enabled = gc.isenabled()
        gc.disable()  # parsed records hold no cycles; the collector only slows the parse down
        try:
            for pos, rec in chunk:
                records += 1
                item = self._prepare(pos, rec, hint, bad)
                if item is not None:
                    family, norm, raw = item
                    group = groups.get(family)
                    if group is None:
                        group = groups[family] = ([], [], [])
                    group[0].append(norm)
                    group[1].append(pos)
                    group[2].append(raw)
            frames = [self._map(family, *group, evidence, dayfirst, bad) for family, group in groups.items()]
            groups.clear()  # free the parsed records by reference counting before the collector resumes
            del group, item, rec, norm
        finally:
            if enabled:
                gc.enable()
        frame = frames[0] if len(frames) == 1 else (
            pd.concat(frames, ignore_index=True) if frames else _frame({}, [], [], evidence, dayfirst))
        return Batch(frame, quarantined, records)

    def _prepare(self, pos: int, rec: Any, hint: str,
                 bad: Callable[[int, str, Any], None]) -> tuple[str, dict[str, Any], bytes] | None:
        """Family, normalised record and raw JSON of one record, or None (quarantined)."""
        if isinstance(rec, Broken):
            bad(pos, rec.reason, rec.text)
            return None
        if not isinstance(rec, dict):
            bad(pos, f"record {pos} is a JSON {type(rec).__name__}, not an object", _safe(rec))
            return None
        try:
            raw = _dumps(rec)
        except UnicodeEncodeError:
            bad(pos, f"record {pos} holds bytes that are not valid in the file's encoding", _safe(rec))
            return None
        try:
            norm = normalise_keys(rec)
            if self.prepare is not None:
                norm = self.prepare(norm, hint)
            family = self.family or classify(norm)
            if family is None:
                raise RecordError(f"not a record this format knows (keys: {', '.join(map(str, list(rec)[:8]))})")
            if family in UNWRAP:
                family, unwrap = UNWRAP[family]
                norm = unwrap(norm)
            return family, norm, raw
        except RecordError as exc:
            bad(pos, f"record {pos}: {exc}", raw)
        except Exception as exc:  # noqa: BLE001 - attacker-controlled input: quarantine, never crash
            bad(pos, f"record {pos}: unreadable ({exc.__class__.__name__}: {exc})", raw)
        return None

    def _map(self, family: str, rs: list[dict[str, Any]], positions: list[int], raws: list[bytes],
             evidence: str, dayfirst: bool, bad: Callable[[int, str, Any], None]) -> pd.DataFrame:
        """Map one family's records column by column; a record that breaks the mapper is quarantined."""
        mapper = MAPPERS[family]
        cols: dict[str, list[Any]]
        try:
            cols = mapper(rs)
        except Exception:  # noqa: BLE001 - find the record(s) at fault, one by one
            cols = {}
            keep: list[int] = []
            for i, r in enumerate(rs):
                try:
                    one = mapper([r])
                except Exception as exc:  # noqa: BLE001
                    bad(positions[i], f"record {positions[i]}: unreadable ({exc.__class__.__name__}: {exc})", raws[i])
                    continue
                for name in set(one) | set(cols):
                    cols.setdefault(name, [None] * len(keep)).extend(one.get(name, [None]))
                keep.append(i)
            positions, raws = [positions[i] for i in keep], [raws[i] for i in keep]
        frame = _frame(cols, positions, raws, evidence, dayfirst)
        missing = frame["time"].isna() & (frame["source"] != "tenant_snapshot")
        if missing.any():
            times = cols.get("time") or [None] * len(positions)
            for i in missing[missing].index:
                bad(positions[i], f"record {positions[i]}: no readable time (got {times[i]!r})", raws[i])
            frame = frame[~missing].reset_index(drop=True)
        return frame


def _safe(obj: Any) -> str:
    """The record as JSON text that can be written as UTF-8 (undecodable bytes shown as \\xNN)."""
    try:
        text = json.dumps(obj, default=str, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = repr(obj)
    return _printable(text)[:1_000_000]


def _printable(text: str) -> str:
    """Text that encodes as UTF-8: escaped undecodable bytes and lone surrogates become \\xNN / \\udNNN."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


_LOWER = {"user_id", "mailbox", "app_id", "client_app_id", "resource_id", "session_id", "exchange_session_id",
          "result"}
_INTS = {"error_code", "asn", "items"}
_LISTS = {"message_ids", "folders"}
_NULL = pa.scalar(None, pa.string())


def _strings(values: list[Any], lower: bool) -> pa.Array:
    """A string column: whitespace trimmed, empty -> null, optionally lower case (vectorised)."""
    try:
        arr = pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array([text(v) for v in values], type=pa.string())
    arr = pc.utf8_trim_whitespace(arr)
    arr = pc.if_else(pc.equal(arr, ""), _NULL, arr)
    return pc.utf8_lower(arr) if lower else arr


def _typed(values: list[Any], kind: pa.DataType, convert: Callable[[Any], Any]) -> pa.Array:
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([convert(v) for v in values], type=kind)


def _string_list(value: Any) -> list[str] | None:
    return [str(v) for v in value] if isinstance(value, list) else None


def _frame(cols: dict[str, list[Any]], positions: list[int], raws: list[bytes], evidence: str,
           dayfirst: bool) -> pd.DataFrame:
    """The canonical frame of one batch; string columns are Arrow-backed (no Python round trip)."""
    n = len(positions)
    data: dict[str, Any] = {}
    for name in MAPPED_COLUMNS:
        values = cols.get(name) or [None] * n
        if name in ("time", "token_issued_at"):
            data[name] = parse_times(pd.Series(values, dtype=object), dayfirst=dayfirst)
            continue
        if name in _INTS:
            arr = _typed(values, pa.int64(), integer)
        elif name == "throttled":
            arr = _typed(values, pa.bool_(), boolean)
        elif name in _LISTS:
            arr = _typed(values, pa.list_(pa.string()), _string_list)
        else:
            arr = _strings(values, name in _LOWER)
        data[name] = pd.Series(pd.arrays.ArrowExtensionArray(arr))
    data["evidence"] = pd.Series(pd.arrays.ArrowExtensionArray(
        pa.array([f"{evidence}#{p}" for p in positions], type=pa.string())))
    data["raw"] = pd.Series(pd.arrays.ArrowExtensionArray(pa.array(raws, type=pa.binary()).cast(pa.string())))
    return pd.DataFrame(data)


# ----- content tests ----------------------------------------------------------------------------
def _mostly(sample: Sample, family: str) -> bool:
    fams = [f for f in sample.families() if f is not None]
    return bool(fams) and fams.count(family) * 2 > len(fams)


_LA_NAMES = {*LA_TABLES, "auditlogs", "officeactivity"}


def _la(sample: Sample) -> bool:
    return any("timegenerated" in r or str(r.get("type", "")).lower() in _LA_NAMES
               for r in sample.records)


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


FORMATS: dict[str, Format] = {
    f.NAME: f
    for f in (
        Format("purview-csv", "Purview audit search CSV export (current header RecordId, CreationDate, RecordType, "
               "Operation, UserId, AuditData, ... or the legacy CreationDate, UserIds, Operations, AuditData)",
               ("csv",), _has("creationdate", "auditdata"), family="audit_record"),
        Format("entra-signins-csv", "Entra admin center sign-in log download (CSV)", ("csv",),
               lambda s: ("date (utc)" in s.header or "date" in s.header) and "request id" in s.header,
               family="signin", prepare=_entra_csv),
        Format("log-analytics-csv", "Log Analytics / Sentinel table export as CSV: SigninLogs, "
               "AADNonInteractiveUserSignInLogs, AADServicePrincipalSignInLogs, AADManagedIdentitySignInLogs, "
               "AuditLogs, OfficeActivity", ("csv",),
               lambda s: any(c in s.header for c in ("timegenerated", "tenantid")) or _la(s)),
        Format("log-analytics-json", "Log Analytics / Sentinel table export or query result as JSON "
               "(same tables as log-analytics-csv)", ("json", "jsonl"), lambda s: _la(s)),
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
        Format("graph-directory-objects", "Microsoft Graph servicePrincipals, applications, oauth2PermissionGrants "
               "(tenant snapshot)", ("json", "jsonl"),
               _graph("directory_object", "servicePrincipals", "applications", "oauth2PermissionGrants")),
    )
}


def sample(path: Path) -> Sample:
    """Open ``path`` and read what sniffing needs.

    Raises:
        OSError: unreadable file.  ValueError: empty file.
    """
    opened, head = probe(path)
    s = Sample(opened, head)
    if opened.container == "csv":
        s.header = [normalise_keys({h: None}).popitem()[0] for h in csv_header(head.lstrip("\ufeff"))]
    with open_text(path, opened) as fh:
        for _, rec in itertools.islice(READERS[opened.container](fh), SAMPLE):
            if isinstance(rec, dict):
                s.records.append(normalise_keys(rec))
    return s


def detect(s: Sample) -> Format | None:
    """The first registered format whose sniff accepts the sample, or None."""
    return next((f for f in FORMATS.values() if f.sniff(s)), None)
