"""Neutralise attacker-controlled text before it reaches a spreadsheet or an XML file.

Everything read from logs is attacker-controlled: a user agent of ``=HYPERLINK(...)``
becomes a live formula when a responder opens an exported CSV in Excel, and a
control character in a user agent makes a GraphML/GEXF file unreadable. This is
the bottom layer (like :mod:`ir_toolkit.schema`), so every other layer may use it.
"""

from __future__ import annotations

import re

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def csv_safe(value: object) -> object:
    """Return ``value`` safe for a CSV cell: text starting with = + - @ tab or CR gets a leading apostrophe.

    Non-text values (numbers, None, booleans) are returned unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def xml_safe(value: str) -> str:
    """``value`` with the characters XML 1.0 forbids (control characters, lone surrogates) removed."""
    return _XML_INVALID.sub("", value)


def csv_safe_column(values: pd.Series) -> pd.Series:
    """Vectorised :func:`csv_safe` for a whole column.

    Numeric and boolean columns pass unchanged; in a text (object) column every value is
    checked as text.
    """
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    text = values.astype(object).where(values.notna(), None)
    risky = text.astype("string").str.startswith(FORMULA_PREFIXES).fillna(False).astype(bool)
    if not risky.any():
        return text
    return text.where(~risky, text[risky].map(lambda v: csv_safe(str(v))))


def mathtext_safe(value: object) -> str:
    """``value`` as text matplotlib draws literally: ``$`` escaped so no mathtext is parsed.

    An address, user agent or mailbox name with two dollar signs would otherwise be read as a
    formula (and an invalid one makes the whole figure fail to render).
    """
    return str(value).replace("$", r"\$")
