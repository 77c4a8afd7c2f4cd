"""Playbooks: YAML templates that run the notebooks, in order, on a case, then render the report.

A playbook (``playbooks/NAME.yaml``) declares its parameters with types and defaults,
the data sources it needs, the notebooks in order and the outputs. ``run_playbook``
checks the parameters, executes each notebook with papermill into
``CASE/reports/notebooks/`` on a kernel that runs this very interpreter (one kernel for the
whole run, its namespace emptied between notebooks: :class:`SharedKernel`), and renders the
HTML report.

Exit codes through the CLI: a bad playbook or parameter is a user error (one line, exit
2); a notebook cell that fails stops the run with :class:`PlaybookFailed` (one line
naming the notebook, the cell and the error, exit 1: the inputs were valid but the
analysis did not complete; the executed notebook with the traceback is kept).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ir_toolkit.errors import IrToolkitError, UserError
from ir_toolkit.kernel import KERNEL_NAME, SharedKernel
from ir_toolkit.parameters import BOUND_KEYS, check, check_order, validate_spec
from ir_toolkit.paths import notebooks_dir, playbooks_dir

if TYPE_CHECKING:  # the case layer (pandas, pyarrow) loads only when a playbook runs: bad -p values fail fast
    from ir_toolkit.case import Case

log = logging.getLogger(__name__)

#: Exceptions that stop a notebook on bad input (ir_toolkit.errors.UserError and its kinds).
USER_ERRORS = {"UserError", "BadInput", "CaseError", "InputFormatError"}
TYPES = ("str", "int", "float", "bool", "datetime", "choice", "list")
_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off", ""}


class PlaybookFailed(IrToolkitError):
    """A notebook of a playbook failed; the message names the notebook, cell and error."""

    exit_code = 1


@dataclass(frozen=True)
class Parameter:
    """One playbook parameter: NAME, type (one of TYPES), default, help, choices and declared bounds
    (``min``, ``max``, ``format``, ``not_before``: see :mod:`ir_toolkit.parameters`)."""

    name: str
    type: str
    default: Any
    help: str = ""
    choices: tuple[str, ...] = ()
    required: bool = False
    bounds: tuple[tuple[str, Any], ...] = ()

    def coerce(self, value: Any) -> Any:
        """Convert a value (a ``-p`` string or a Python value) to the declared type.

        Raises:
            UserError: when the value does not fit the type.
        """
        bad = UserError(f"parameter {self.name}: {value!r} is not a valid {self.type}"
                        + (f" (choose one of {', '.join(self.choices)})" if self.choices else ""))
        if value is None:
            return None
        text = str(value).strip()
        if self.type == "str":
            return str(value)
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise bad
        if self.type in ("int", "float"):
            try:
                number = int(text) if self.type == "int" else float(text)
            except ValueError:
                raise bad from None
            return number
        if self.type == "datetime":
            if not text:
                return ""
            from ir_toolkit.timeutil import iso, parse_time  # pandas loads only for a time value

            ts = parse_time(value)
            if ts is None:
                raise UserError(f"parameter {self.name}: {value!r} is not a valid datetime "
                                "(expected ISO 8601 UTC, e.g. 2023-06-01 or 2023-06-01T00:00:00Z)")
            return iso(ts)
        if self.type == "choice":
            if text not in self.choices:
                raise bad
            return text
        items = value if isinstance(value, list) else [v.strip() for v in text.split(",") if v.strip()]
        return [str(v) for v in items]


@dataclass(frozen=True)
class Playbook:
    """A loaded playbook template (see playbooks/*.yaml)."""

    id: str
    title: str
    path: Path
    notebooks: tuple[str, ...]
    parameters: dict[str, Parameter] = field(default_factory=dict)
    data_sources: tuple[dict[str, Any], ...] = ()
    outputs: tuple[str, ...] = ()
    description: str = ""
    version: str = "1"


def load_playbook(ref: str | Path) -> Playbook:
    """Load a playbook from a YAML path or a shipped playbook's name (``token-forgery``).

    Raises:
        UserError: when the file is missing, not YAML, or not a valid playbook.
    """
    path = Path(ref)
    if not path.exists():
        for candidate in (playbooks_dir() / f"{ref}.yaml", playbooks_dir() / str(ref)):
            if candidate.exists():
                path = candidate
                break
        else:
            shipped = ", ".join(sorted(p.stem for p in playbooks_dir().glob("*.yaml")))
            raise UserError(f"{ref}: no such playbook (shipped playbooks: {shipped})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: not a readable YAML playbook ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("notebooks"), list) or not data["notebooks"]:
        raise UserError(f"{path}: not a playbook (needs a 'notebooks' list)")
    params: dict[str, Parameter] = {}
    for name, spec in (data.get("parameters") or {}).items():
        spec = spec if isinstance(spec, dict) else {"default": spec}
        ptype = str(spec.get("type", "str"))
        if ptype not in TYPES:
            raise UserError(f"{path}: parameter {name}: unknown type {ptype!r} (use one of {', '.join(TYPES)})")
        validate_spec(f"playbook {path.stem}", str(name), spec)
        bounds = tuple((k, spec[k]) for k in BOUND_KEYS if spec.get(k) is not None)
        p = Parameter(str(name), ptype, None, str(spec.get("help", "")), tuple(map(str, spec.get("choices", []))),
                      bool(spec.get("required", False)), bounds)
        params[str(name)] = Parameter(p.name, p.type, p.coerce(spec.get("default")), p.help, p.choices, p.required,
                                      bounds)
    for nb in data["notebooks"]:
        if not (notebooks_dir() / str(nb)).exists() and not (path.parent / str(nb)).exists():
            raise UserError(f"{path}: notebook {nb} not found in {notebooks_dir()}")
    return Playbook(
        id=str(data.get("id", path.stem)), title=str(data.get("title", path.stem)), path=path,
        notebooks=tuple(map(str, data["notebooks"])), parameters=params,
        data_sources=tuple(data.get("data_sources") or ()), outputs=tuple(map(str, data.get("outputs") or ())),
        description=str(data.get("description", "")), version=str(data.get("version", "1")),
    )


def parse_assignments(playbook: Playbook, pairs: list[str]) -> dict[str, Any]:
    """Turn ``-p NAME=VALUE`` strings into typed values, checked against the playbook.

    Raises:
        UserError: on a malformed pair, an unknown name or a value of the wrong type.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UserError(f"-p {pair!r}: expected NAME=VALUE")
        out[name.strip()] = value
    return resolve_parameters(playbook, out)


def resolve_parameters(playbook: Playbook, given: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with ``given`` values, each coerced to its declared type."""
    values = {name: p.default for name, p in playbook.parameters.items()}
    for name, value in (given or {}).items():
        if name not in playbook.parameters:
            known = ", ".join(sorted(playbook.parameters))
            raise UserError(f"playbook {playbook.id} has no parameter {name!r} (parameters: {known})")
        values[name] = playbook.parameters[name].coerce(value)
        check(f"playbook {playbook.id}", name, values[name], dict(playbook.parameters[name].bounds))
    for name, p in playbook.parameters.items():
        if p.required and values[name] in (None, "", []):
            raise UserError(f"playbook {playbook.id} needs -p {name}=VALUE ({p.help or p.type})")
    check_order(f"playbook {playbook.id}", values, {n: dict(p.bounds) for n, p in playbook.parameters.items()})
    return values


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_sources(playbook: Playbook, case: Case) -> list[str]:
    """Warnings for declared data sources the case has no events of."""
    have = set(case.events.sources())
    warnings = []
    for ds in playbook.data_sources:
        wanted = set(ds.get("sources") or [ds.get("source")])
        if not wanted & have:
            warnings.append(f"missing data: {ds.get('name', ', '.join(sorted(map(str, wanted))))}"
                            f"{' (' + str(ds['why']) + ')' if ds.get('why') else ''}")
    return warnings


def _execute(src: Path, dest: Path, params: dict[str, Any], kernel: SharedKernel,
             progress: bool) -> tuple[str, int, str, str] | None:
    """Execute one notebook with papermill on ``kernel``; on a failing cell return (notebook, cell, error name,
    message).

    The failure is returned, not raised, so the kernel client it references can be freed first.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    if kernel.used:
        kernel.reset()
    kernel.used = True
    try:
        papermill.execute_notebook(str(src), str(dest), parameters=params, kernel_name=KERNEL_NAME,
                                   km=kernel.manager, progress_bar=progress,
                                   cwd=params["case_path"], log_output=False, language="python")
    except PapermillExecutionError as exc:
        where = f"cell {exc.cell_index}" + (f" (In [{exc.exec_count}])" if exc.exec_count else "")
        return (src.name, int(exc.cell_index), str(exc.ename),
                f"notebook {src.name} failed at {where}: {exc.ename}: {_one_line(str(exc.evalue))}; "
                f"executed notebook kept at {dest}")
    except (ValueError, OSError) as exc:  # unreadable notebook file (not JSON, not a notebook)
        raise UserError(f"notebook {src}: cannot run it ({_one_line(str(exc))})") from None
    return None


def notebooks_out(case: Case, redact: bool) -> Path:
    """Where a playbook's executed notebooks go: beside the report, or, when the report is redacted for
    sharing, CASE/work/notebooks (their outputs hold real names, so they never sit beside a shareable report)."""
    return case.root / "work" / "notebooks" if redact else case.reports_dir / "notebooks"


def run_playbook(playbook: Playbook | str | Path, case: Case | str | Path, params: dict[str, Any] | None = None,
                 progress: bool = False) -> Path:
    """Execute a playbook's notebooks on a case, then render the report.

    Args:
        playbook: A Playbook, a YAML path or a shipped playbook's name.
        case: The case or its folder.
        params: Parameter values (typed or ``-p`` strings), checked against the playbook.
        progress: Show papermill's per-cell progress bars.

    Returns:
        The report path (CASE/reports/report.html unless a notebook chose another).

    Raises:
        UserError: bad playbook or parameters (nothing is executed).
        PlaybookFailed: a notebook cell failed (the run stops there).
    """
    from tqdm.auto import tqdm

    pb = playbook if isinstance(playbook, Playbook) else load_playbook(playbook)
    from ir_toolkit.case import Case

    case = case if isinstance(case, Case) else Case.open(case, writable=True)
    values = resolve_parameters(pb, params)
    for warning in _check_sources(pb, case):
        log.warning("%s: %s", pb.id, warning)
    out_dir = notebooks_out(case, bool(values.get("redact")))
    out_dir.mkdir(parents=True, exist_ok=True)
    injected = {**values, "case_path": str(case.root.resolve()), "playbook": pb.id, "progress": False}
    case.log_action("playbook.start", playbook=pb.id, path=str(pb.path), parameters=values)
    started = time.time()
    for noisy in ("papermill", "traitlets"):  # per-cell chatter; failures are raised, not logged
        logging.getLogger(noisy).setLevel(logging.ERROR)
    spec_dir = Path(tempfile.mkdtemp(prefix="ir-toolkit-kernel-"))
    kernel = SharedKernel(spec_dir, out_dir.resolve() / "kernel.log")
    failure: tuple[str, int, str, str] | None = None
    timings: dict[str, float] = {}  # seconds per notebook, in the custody record
    try:
        for nb in tqdm(pb.notebooks, desc=f"playbook {pb.id}", unit="notebook", disable=not progress):
            src = notebooks_dir() / nb if (notebooks_dir() / nb).exists() else pb.path.parent / nb
            log.info("%s: executing %s", pb.id, nb)
            begun = time.perf_counter()
            failure = _execute(src, out_dir / Path(nb).name, injected, kernel, progress)
            timings[nb] = round(time.perf_counter() - begun, 1)
            log.info("%s: %s %s in %.1f s", pb.id, nb, "failed" if failure else "done", timings[nb])
            if failure is not None:
                break
    finally:
        kernel.close()
        shutil.rmtree(spec_dir, ignore_errors=True)
    if failure is not None:
        name, cell, ename, message = failure
        case.log_action("playbook.fail", artifacts=sorted(out_dir.iterdir()), playbook=pb.id, notebook=name,
                        cell=cell, error=ename)
        if ename in USER_ERRORS:  # the notebook stopped on bad input (a missing import path): exit 2
            raise UserError(f"playbook {pb.id}: {message}")
        raise PlaybookFailed(f"playbook {pb.id}: {message}")
    report = case.reports_dir / "report.html"
    if not report.exists() or report.stat().st_mtime < started:
        from ir_toolkit.report.html import render_report  # only when no notebook rendered it (matplotlib: 0.5 s)

        report = render_report(case, redact=bool(values.get("redact")), tz=str(values.get("tz") or "UTC"),
                               mailbox=str(values.get("mailbox") or ""))
    missing = [o for o in pb.outputs if not (case.root / o).exists()]
    for output in missing:  # e.g. scope.json before scoping is installed: say so, the report still stands
        log.warning("%s: declared output %s was not produced", pb.id, output)
    case.log_action("playbook.done", artifacts=sorted(out_dir.iterdir()), playbook=pb.id,
                    notebooks=list(pb.notebooks), report=str(report),
                    missing_outputs=missing, seconds=round(time.time() - started, 1), notebook_seconds=timings)
    return report
