"""Display helpers of the report: cells as text in the display zone, tables, figures as PNG."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from ir_toolkit.timeutil import parse_time

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def fmt(value: Any, tz: str) -> str:
    """Display a cell: times in the display zone, lists joined, missing as empty."""
    if value is None:
        return ""
    if isinstance(value, pd.Timestamp):
        return "" if pd.isna(value) else value.tz_convert(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
    if isinstance(value, list | tuple) or (hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1):
        return ", ".join(fmt(v, tz) for v in list(value))
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    if isinstance(value, str) and _ISO.match(value):
        ts = parse_time(value)
        return fmt(ts, tz) if ts is not None else value
    return str(value)


def table(frame: pd.DataFrame | list[dict[str, Any]], columns: list[str], tz: str,
           text: Callable[[str], str]) -> dict[str, Any]:
    """Rows of display strings for the template's table macro."""
    df = pd.DataFrame(frame) if not isinstance(frame, pd.DataFrame) else frame
    df = df.reindex(columns=columns)
    rows = [[text(fmt(v, tz)) for v in rec] for rec in df.itertuples(index=False, name=None)]
    return {"columns": columns, "rows": rows}


def count(values: Any) -> int:
    """Length of a list-like cell (list or numpy array), 0 when missing."""
    return 0 if values is None or (isinstance(values, float) and pd.isna(values)) else len(values)


def png_bytes(fig: Any, texts: list[str] | None = None) -> bytes:
    """A matplotlib Figure as PNG bytes (the figure is closed); notebooks show it with IPython's Image.

    With ``texts``, every text the figure draws (titles, tick labels, annotations, legend entries),
    as drawn, is appended to it: the report puts them in the image's alternative text, so a screen
    reader (and a redaction test) sees exactly the words the picture shows.
    """
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    if texts is not None:
        seen = dict.fromkeys(t.get_text().strip() for t in fig.findobj(Text) if t.get_visible())
        texts.extend(t for t in seen if t)
    plt.close(fig)
    return buf.getvalue()


def png_uri(fig: Any, texts: list[str] | None = None) -> str:
    """A matplotlib Figure as a base64 PNG data URI (the figure is closed); ``texts`` as for :func:`png_bytes`."""
    return data_uri(png_bytes(fig, texts))


def data_uri(png: bytes) -> str:
    """PNG bytes as a base64 data URI (what the report's ``img`` elements show)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
