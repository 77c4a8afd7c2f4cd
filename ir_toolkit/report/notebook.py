"""What the notebooks share: their setup, tables shown in the display zone, inputs checked in one line.

Every notebook starts with :func:`start_notebook` (open the case, quiet logging, and a display
formatter that shows every DataFrame's times in the ``tz`` parameter). A bad input (a missing import
path, an unknown zone) stops a notebook with :class:`BadInput`: one line, no traceback, and the playbook
runner reports it as a user error.
"""

from __future__ import annotations

import logging

import pandas as pd

from ir_toolkit.case import Case
from ir_toolkit.errors import UserError

#: Columns of identifiers a reader compares by their start: shortened in tables, the full value at the end.
ID_COLUMNS = ("token_id", "session_id", "exchange_session_id", "record_id", "sha256", "finding_id",
              "client_app_id", "app_id", "resource_id", "user_id")
SHORT_ID = 8


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose long identifiers (:data:`ID_COLUMNS`) are shortened to their first
    characters, each such column repeated in full at the end (``token_id (full)``), so the columns a
    reader scans stay narrow and nothing is lost. Text such as explanations is never cut."""
    wide = [c for c in frame.columns if c in ID_COLUMNS and frame[c].dtype == object
            and frame[c].map(lambda v: isinstance(v, str) and len(v) > SHORT_ID + 2).any()]
    if not wide:
        return frame
    out = frame.copy()
    for col in wide:
        out[f"{col} (full)"] = frame[col]
        out[col] = frame[col].map(lambda v: v[:SHORT_ID] + "…" if isinstance(v, str) and len(v) > SHORT_ID + 2
                                  else v)
    return out


def check_tz_name(tz: str) -> None:
    """Raise BadInput (one line) when ``tz`` is not an IANA time zone name."""
    try:
        pd.Timestamp("2023-01-01", tz=tz)
    except Exception:  # noqa: BLE001 - pytz/zoneinfo raise several kinds
        raise BadInput(f"tz {tz!r}: not a time zone name (use an IANA name such as Europe/Berlin)") from None


def local_times(frame: pd.DataFrame, tz: str) -> pd.DataFrame:
    """A copy of ``frame`` with every tz-aware time column (and column of timestamps) shown in ``tz``.

    The notebooks display every table through this (see :func:`start_notebook`): data stays UTC
    inside, the reader sees the zone of the ``tz`` parameter.
    """
    out = frame.copy() if len(frame.columns) else frame
    for col in out.columns:
        s = out[col]
        if isinstance(s, pd.DataFrame):  # duplicate column names: leave them
            continue
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            out[col] = s.dt.tz_convert(tz)
        elif s.dtype == object and len(s) and s.map(lambda v: isinstance(v, pd.Timestamp)
                                                    and v.tzinfo is not None).all():
            out[col] = s.map(lambda v: v.tz_convert(tz))
    if isinstance(out.index, pd.DatetimeIndex) and out.index.tz is not None:
        out.index = out.index.tz_convert(tz)
    return out


class BadInput(UserError):
    """A notebook's input that cannot be used (a missing import path, an unknown zone).

    Like every UserError it shows in a notebook as its one line, no traceback; the playbook runner
    turns a notebook stopped by a user error into a user error of its own (exit 2).
    """


def check_paths(paths: list[str]) -> list[str]:
    """The import paths as given, after checking each is a readable file or folder.

    Raises:
        BadInput: naming the first path that does not exist.
    """
    from pathlib import Path

    for p in paths:
        if not Path(p).exists():
            raise BadInput(f"import path {p}: no such file or folder (check the import_paths parameter)")
    return paths


def start_notebook(case_path: str, tenant: str = "", tz: str = "UTC") -> tuple[Case, str]:
    """The notebooks' setup: quiet logging, readable tables in ``tz``, open the case and show whose it is.

    Every DataFrame the notebook displays afterwards shows its times in ``tz`` (:func:`local_times`),
    its text whole and its long identifiers shortened with the full value at the end (:func:`readable`).

    Returns:
        ``(case, tenant)``: the tenant parameter, or the case's own when it is empty.
    """
    import warnings

    from IPython import get_ipython
    from IPython.display import Markdown, display

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", message="IProgress not found")  # progress bars fall back to text
    pd.set_option("display.max_colwidth", None)  # explanations are read whole, never cut
    check_tz_name(tz)
    shell = get_ipython()
    if shell is not None:
        formatters = shell.display_formatter.formatters
        formatters["text/html"].for_type(pd.DataFrame, lambda f: readable(local_times(f, tz)).to_html(max_rows=60))
        formatters["text/plain"].for_type(pd.DataFrame,
                                          lambda f, p, cycle: p.text(repr(readable(local_times(f, tz)))))
    case = Case.open(case_path)
    tenant = tenant or case.tenant
    display(Markdown(f"Case **{case.manifest['case']}**, tenant **{tenant}**, times shown in **{tz}**."))
    return case, tenant
