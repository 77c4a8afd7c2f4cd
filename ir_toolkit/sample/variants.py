"""Evidence variants: the partial evidence responders meet (a log family missing, an export with holes).

A :class:`Variant` says, for each record and each output file family, whether the record is written.
Names (``--drop NAME``, ``--gap NAME:START:HOURS``):

- ``signin_interactive``, ``signin_noninteractive``, ``signin_serviceprincipal``; ``signins`` (all three)
- ``directory_audit``
- ``ual`` (both the Graph audit-record pages and the Purview CSV export), ``ual_graph`` (the pages only),
  ``ual_csv`` (the CSV only), ``ual_other`` (every UAL record that is not MailItemsAccessed, in both)

Dropping removes the family's files (``ual_other`` keeps the files, with MailItemsAccessed records only);
a gap removes the family's records with ``start <= time < end`` and the pages are written as usual.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ir_toolkit.errors import UserError
from ir_toolkit.sample.ids import iso

SIGNIN_TARGETS = ("signin_interactive", "signin_noninteractive", "signin_serviceprincipal")
UAL_TARGETS = ("ual_graph", "ual_csv")
TARGETS = (*SIGNIN_TARGETS, "directory", *UAL_TARGETS)        # the output file families
FAMILIES: dict[str, tuple[str, ...]] = {                       # name -> the output families it covers
    **{name: (name,) for name in SIGNIN_TARGETS}, "signins": SIGNIN_TARGETS, "directory_audit": ("directory",),
    "ual": UAL_TARGETS, "ual_other": UAL_TARGETS, "ual_graph": ("ual_graph",), "ual_csv": ("ual_csv",)}
GAP_FORMAT = "SOURCE:START:HOURS (e.g. ual:2023-06-01T00:00Z:24; START 2023-06-01, 2023-06-01T00:00Z or " \
             "2023-06-01T00:00:00Z; HOURS a positive number)"
MAIL = "MailItemsAccessed"


def family(name: str, option: str = "--drop") -> str:
    """``name`` if it is a known family name, else a one-line UserError listing the known ones."""
    if name not in FAMILIES:
        raise UserError(f"{option}: unknown log family {name!r} (known: {', '.join(FAMILIES)})")
    return name


@dataclass(frozen=True)
class Gap:
    """Records of ``source`` with ``start <= time < end`` are missing."""

    source: str
    start: datetime
    end: datetime

    def to_json(self) -> dict[str, str]:
        """The answer key's form: ``{"source", "start", "end"}``."""
        return {"source": self.source, "start": iso(self.start), "end": iso(self.end)}


def parse_start(text: str) -> datetime:
    """``2023-06-01``, ``2023-06-01T00:00Z`` or ``2023-06-01T00:00:00Z`` (UTC when no zone); ValueError if not."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    t = datetime.fromisoformat(value)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def parse_gap(text: str) -> Gap:
    """``SOURCE:START:HOURS`` as a :class:`Gap`; a one-line UserError naming the format if malformed."""
    source, sep, rest = text.partition(":")
    start_text, sep2, hours_text = rest.rpartition(":")
    if not sep or not sep2 or not source or not start_text:
        raise UserError(f"--gap {text!r}: expected {GAP_FORMAT}")
    family(source, "--gap")
    try:
        start = parse_start(start_text)
    except ValueError:
        raise UserError(f"--gap {text!r}: START {start_text!r} is not an ISO date or time; expected {GAP_FORMAT}") \
            from None
    try:
        hours = float(hours_text)
    except ValueError:
        hours = math.nan
    if not math.isfinite(hours) or hours <= 0 or hours > 24 * 3650:
        raise UserError(f"--gap {text!r}: HOURS {hours_text!r} is not a positive number; expected {GAP_FORMAT}")
    return Gap(source, start, start + timedelta(hours=hours))


@dataclass(frozen=True)
class Variant:
    """Which evidence the generated tenant holds (the default: everything)."""

    dropped: tuple[str, ...] = ()
    gaps: tuple[Gap, ...] = ()
    shared_vpn: bool = False
    frontend_ips: bool = False
    graph_activity: bool = False
    _rules: dict[str, list[tuple[bool, Gap | None]]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for target in TARGETS:
            rules: list[tuple[bool, Gap | None]] = []
            for name in self.dropped:
                if target in FAMILIES[name]:
                    rules.append((name == "ual_other", None))
            for gap in self.gaps:
                if target in FAMILIES[gap.source]:
                    rules.append((gap.source == "ual_other", gap))
            self._rules[target] = rules

    def file_dropped(self, target: str) -> bool:
        """True when the files of output family ``target`` are not written at all."""
        return any(not other_only and gap is None for other_only, gap in self._rules.get(target, ()))

    def written(self, target: str, t: datetime, rec: dict[str, Any]) -> bool:
        """Whether the record ``rec`` (time ``t``) goes into output family ``target``."""
        for other_only, gap in self._rules.get(target, ()):  # a story's own families have no rules
            if other_only and rec.get("Operation") == MAIL:
                continue
            if gap is None or gap.start <= t < gap.end:
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        """The answer key's ``evidence_variant``."""
        out: dict[str, Any] = {"dropped": list(self.dropped), "gaps": [g.to_json() for g in self.gaps],
                               "shared_vpn": self.shared_vpn, "frontend_ips": self.frontend_ips}
        if self.graph_activity:   # only then: the default key stays byte-identical
            out["graph_activity"] = True
        return out

    def args(self) -> list[str]:
        """The ``sample make`` options that make this variant (for the README's command line)."""
        out = [f"--drop {name}" for name in self.dropped]
        for g in self.gaps:
            hours = (g.end - g.start).total_seconds() / 3600
            out.append(f"--gap {g.source}:{g.start.strftime('%Y-%m-%dT%H:%M:%SZ')}:{hours:g}")
        return (out + ["--shared-vpn"] * self.shared_vpn + ["--frontend-ips"] * self.frontend_ips
                + ["--graph-activity"] * self.graph_activity)


def make_variant(drop: Iterable[str] = (), gaps: Sequence[str | Gap] = (), shared_vpn: bool = False,
                 frontend_ips: bool = False, graph_activity: bool = False) -> Variant:
    """Validate the options into a :class:`Variant` (raises a one-line UserError on a bad value)."""
    names = tuple(dict.fromkeys(family(n) for n in drop))
    holes = tuple(g if isinstance(g, Gap) else parse_gap(str(g)) for g in gaps)
    return Variant(names, holes, bool(shared_vpn), bool(frontend_ips), bool(graph_activity))
