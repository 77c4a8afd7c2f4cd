"""Working-hours rhythm: which UTC offset's Monday-Friday office hours best explain activity.

Pure pandas over a small frame of hourly counts (the SQL of the ``working-hours``
detection does the heavy grouping), so it is the same whatever engine produced it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ir_toolkit.analysis.coverup import POSTPROCESSORS as COVER_UP_POSTPROCESSORS

OFFSETS = range(-12, 15)


def working_share(hours: pd.Series, counts: pd.Series, offset: int, start: int = 8, end: int = 18) -> float:
    """Share of ``counts`` that falls Monday-Friday between ``start`` and ``end`` local hours at UTC+offset.

    Args:
        hours: tz-aware UTC hour starts.
        counts: Events per hour.
    """
    total = float(counts.sum())
    if total <= 0:
        return 0.0
    local = hours.dt.tz_convert("UTC").dt.tz_localize(None) + pd.Timedelta(hours=offset)
    inside = (local.dt.day_of_week < 5) & (local.dt.hour >= start) & (local.dt.hour < end)
    return float(counts[inside.to_numpy()].sum()) / total


def best_offset(hours: pd.Series, counts: pd.Series, start: int = 8, end: int = 18) -> tuple[int, float]:
    """The UTC offset (hours) whose working week holds the largest share of ``counts`` (ties: nearest UTC)."""
    scored = [(working_share(hours, counts, o, start, end), -abs(o), o) for o in OFFSETS]
    share, _, offset = max(scored)
    return offset, share


def rhythm_findings(frame: pd.DataFrame, values: dict[str, Any]) -> pd.DataFrame:
    """Post-process the hourly counts of the working-hours detection into at most one finding row.

    Args:
        frame: Columns hour (UTC), strong, weak, tenant (counts), evidence (record ids of strong events).
        values: Pack parameters (work_start_hour, work_end_hour).

    Returns:
        A one-row frame (verdict possible when the best offsets differ by 3 hours or more, else benign),
        or an empty frame when there is no suspicious activity.
    """
    if frame.empty:
        return frame.iloc[0:0]
    start, end = int(values.get("work_start_hour", 8)), int(values.get("work_end_hour", 18))
    hours = frame["hour"].reset_index(drop=True)
    strong = frame["strong"].fillna(0).astype(float).reset_index(drop=True)
    weak = frame["weak"].fillna(0).astype(float).reset_index(drop=True)
    tenant = frame["tenant"].fillna(0).astype(float).reset_index(drop=True)
    suspicious = strong if strong.sum() > 0 else weak
    if suspicious.sum() == 0:
        return frame.iloc[0:0]
    o_s, share_s = best_offset(hours, suspicious, start, end)
    o_t, share_t = best_offset(hours, tenant, start, end) if tenant.sum() > 0 else (0, 0.0)
    active = hours[suspicious > 0]
    evidence = [r for lst in frame["evidence"] for r in (list(lst) if lst is not None else []) if r is not None]
    differs = abs(o_s - o_t) >= 3 and suspicious.sum() >= 5
    return pd.DataFrame([{
        "verdict": "possible" if differs else "benign",
        "severity": "low" if differs else "informational",
        "first": active.min(), "last": active.max(), "events": int(suspicious.sum()),
        "suspicious": int(suspicious.sum()), "tenant": int(tenant.sum()),
        "offset_suspicious": o_s, "share_suspicious": share_s, "offset_tenant": o_t, "share_tenant": share_t,
        "evidence": evidence,
    }])


POSTPROCESSORS = {"rhythm": rhythm_findings, **COVER_UP_POSTPROCESSORS}
