"""Detections as data: packs of YAML-defined SQL detections, and their registry.

A pack (``ir_toolkit/analysis/packs/NAME.yaml``) holds parameters with defaults, helper
views and detections. A detection has an id, title, description, severity, ATT&CK
technique ids, required sources, references, an explanation template and its logic as
portable SQL over the view ``events`` (and the pack's helper views). Each detection's
query returns one row per finding with some of the columns ``verdict``, ``severity``,
``first``, ``last``, ``mailbox``, ``user``, ``ip``, ``app_id``, ``token_id``,
``session_id``, ``events``, ``evidence`` (list of record ids) plus the numbers its
explanation names.

Adding a detection is adding one entry to a pack; adding a pack is adding one YAML file. A pack may
``include`` other YAML files of its folder (``includes: [family/file.yaml, ...]``): their parameters, views and
detections are added after the pack's own, in order, so a member of the token-abuse family lives in a
file of its own. A detection's ``member`` names the member of the family it rules in (``forged-oauth-token``,
``app-abuse``, ``actor-token``, ``golden-saml``, ``silver-saml``); signals that only support a verdict
have none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ir_toolkit.errors import UserError
from ir_toolkit.parameters import check, check_order, validate_spec

PACKS_DIR = Path(__file__).resolve().parent / "packs"
# libyaml's safe loader when PyYAML has it (ten times faster: the pack is read at every start), else the pure one
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Detection:
    """One detection of a pack (see the module docstring for what its SQL returns)."""

    id: str
    title: str
    description: str
    severity: str
    techniques: tuple[str, ...]
    sources: tuple[str, ...]
    references: tuple[str, ...]
    explanation: str
    sql: str
    postprocess: str | None = None
    member: str | None = None


@dataclass(frozen=True)
class Pack:
    """A detection pack: parameters with defaults, helper views and detections."""

    name: str
    title: str
    parameters: dict[str, dict[str, Any]]
    views: tuple[dict[str, Any], ...]
    detections: dict[str, Detection] = field(default_factory=dict)
    references: tuple[str, ...] = ()

    def resolve(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """Pack defaults overlaid with ``params`` (CLI strings are converted to the default's type).

        Raises:
            UserError: on an unknown parameter, a value of the wrong type or outside its declared bounds
                (``min``, ``max``, ``not_before``: see :mod:`ir_toolkit.parameters`).
        """
        values = {k: spec.get("default") for k, spec in self.parameters.items()}
        for name, value in (params or {}).items():
            if name not in self.parameters:
                known = ", ".join(sorted(self.parameters))
                raise UserError(f"unknown parameter {name!r} for pack {self.name} (known: {known})")
            values[name] = _coerce(name, value, self.parameters[name].get("default"))
            check(f"pack {self.name}", name, values[name], self.parameters[name])
        check_order(f"pack {self.name}", values, self.parameters)
        return values


def _coerce(name: str, value: Any, default: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise UserError(f"parameter {name}: {value!r} is not a {type(default).__name__}") from None
    if isinstance(default, list):
        return [v.strip() for v in value.split(",") if v.strip()]
    from ir_toolkit.timeutil import parse_time  # pandas loads only for a time value

    if name.endswith(("_start", "_end")) and parse_time(value) is None:
        raise UserError(f"parameter {name}: {value!r} is not a date or time (expected ISO 8601 UTC, e.g. 2023-06-01)")
    return value


def _detection(entry: dict[str, Any], path: Path) -> Detection:
    try:
        return Detection(
            id=str(entry["id"]), title=str(entry["title"]), description=" ".join(str(entry["description"]).split()),
            severity=str(entry.get("severity", "medium")), techniques=tuple(entry.get("techniques") or ()),
            sources=tuple(entry.get("sources") or ()), references=tuple(entry.get("references") or ()),
            explanation=str(entry.get("explanation", "{events} event(s).")), sql=str(entry["sql"]),
            postprocess=entry.get("postprocess"), member=entry.get("member"),
        )
    except KeyError as exc:
        raise UserError(f"{path}: detection {entry.get('id', '?')} lacks {exc}") from None


@cache
def load_pack(name: str) -> Pack:
    """Load a pack by name (``packs/NAME.yaml``) or from a YAML file path.

    Raises:
        UserError: when the pack does not exist or is malformed.
    """
    path = Path(name) if name.endswith((".yaml", ".yml")) else PACKS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown detection pack {name!r} (known: {', '.join(PACKS)})")
    data = _read_yaml(path)
    if "detections" not in data:
        raise UserError(f"{path}: a pack needs 'name' and 'detections'")
    parts = [data] + [_read_yaml(path.parent / str(inc)) for inc in data.get("includes") or ()]
    detections: dict[str, Detection] = {}
    parameters: dict[str, dict[str, Any]] = {}
    views: list[dict[str, Any]] = []
    for part in parts:
        for det in (_detection(e, path) for e in part.get("detections") or ()):
            if det.id in detections:
                raise UserError(f"{path}: detection {det.id} is defined twice")
            detections[det.id] = det
        for pname, spec in (part.get("parameters") or {}).items():
            if pname in parameters:
                raise UserError(f"{path}: parameter {pname} is defined twice")
            validate_spec(f"pack {path.stem}", str(pname), spec if isinstance(spec, dict) else {})
            parameters[str(pname)] = dict(spec)
        views.extend(part.get("views") or ())
    return Pack(
        name=str(data.get("name", path.stem)), title=str(data.get("title", "")),
        parameters=parameters, views=tuple(views),
        detections=detections, references=tuple(data.get("references") or ()),
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    """One pack file as a mapping (the pack itself or a file it includes)."""
    if not path.is_file():
        raise UserError(f"{path}: pack file not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a pack file is a mapping of parameters, views and detections")
    return data


def render(sql: str, values: dict[str, Any]) -> str:
    """Fill ``{name}`` placeholders of ``sql`` with SQL literals of ``values``."""
    from ir_toolkit.analysis.engine import sql_literal  # the engines load only when SQL is rendered

    return sql.format_map({k: v if isinstance(v, _Raw) else sql_literal(v) for k, v in values.items()})


class _Raw(str):
    """A value inserted into SQL as is (already a SQL expression)."""


def raw_sql(expression: str) -> str:
    """Mark ``expression`` to be inserted verbatim by :func:`render`."""
    return _Raw(expression)


PACKS: dict[str, str] = {p.stem: f"packs/{p.name}" for p in sorted(PACKS_DIR.glob("*.yaml"))}
DETECTIONS: dict[str, Detection] = dict(load_pack("token-forgery").detections)
