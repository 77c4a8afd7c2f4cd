"""Holes inside a log source, found from the data itself.

A failed export, a missing day or a lost file leaves a period where a source that is normally
busy holds nothing (or almost nothing). Two pure tests over a source's hourly event counts:

* **Rhythm**: each hour is compared with the same hour of the week in the source's other weeks
  (median, so one burst does not raise the bar), falling back to the same hour of other days
  when the source spans less than two weeks. A run of hours far below what the rhythm expects,
  whose shortfall is too large to be chance (Poisson tail below ``p_value``), is a hole.
  Quiet hours (nights, weekends) expect nothing, so they neither make nor break a hole.
* **File split**: when a source comes from several evidence files, the stretch between one
  file's last event and the next file's first is a hole as soon as the rhythm expected a few
  events there: the files themselves say something is missing.

A hole runs from the last event before it to the first event after it: nothing is known to be
missing outside, everything inside is in doubt. Input frames hold the columns ``hour`` (UTC hour
start, tz-aware), ``events`` (count), ``first`` and ``last`` (first and last event time of that hour).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ir_toolkit.timeutil import iso

HOUR = pd.Timedelta(hours=1)
P_VALUE = 1e-3          # chance of such a shortfall in a healthy source
MIN_EXPECTED = 20.0     # events a rhythm hole must have expected at least
LOW_SHARE = 0.25        # an hour is "low" below this share of its expectation
FILE_GAP_EXPECTED = 5.0  # events the rhythm must expect between two files for a file-split hole
FILE_GAP_P_VALUE = 1e-2


def poisson_cdf(k: int, lam: float) -> float:
    """P(X <= k) for X ~ Poisson(lam), summed in log space (fine for the small k used here)."""
    if lam <= 0:
        return 1.0
    k = min(int(k), 10_000)
    total = 0.0
    log_term = -lam
    for i in range(k + 1):
        if i:
            log_term += math.log(lam) - math.log(i)
        total += math.exp(log_term)
    return min(total, 1.0)


def hourly_series(hourly: pd.DataFrame) -> pd.DataFrame:
    """Every hour from the first to the last, zeros filled: columns hour, events, first, last."""
    frame = hourly.sort_values("hour").set_index("hour")
    index = pd.date_range(frame.index.min(), frame.index.max(), freq="h")
    full = frame.reindex(index)
    full["events"] = full["events"].fillna(0).astype("int64")
    return full.rename_axis("hour").reset_index()


def loo_medians(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Leave-one-out medians: for each element, the median of the other values with the same key (0 if none).

    Sorts once by (key, value); the median of a group without the element at rank ``r`` is read off the
    sorted group by shifting the middle positions past ``r``. Equal to ``np.median`` of the others.
    """
    n = len(values)
    out = np.zeros(n)
    if n == 0:
        return out
    order = np.lexsort((values, keys))
    ordered = values[order].astype(float)
    _, start, size = np.unique(keys[order], return_index=True, return_counts=True)
    first = np.repeat(start, size)
    rank = np.arange(n) - first
    others = np.repeat(size, size) - 1
    lo, hi = (others - 1) // 2, others // 2
    lo = np.clip(lo + (lo >= rank), 0, None)
    hi = hi + (hi >= rank)
    pair = ordered[np.minimum(first + lo, n - 1)] + ordered[np.minimum(first + hi, n - 1)]
    out[order] = np.where(others > 0, pair / 2, 0.0)
    return out


def expected_counts(series: pd.DataFrame) -> np.ndarray:
    """What each hour's rhythm expects: the median of the same hour-of-week in the other weeks.

    With fewer than two other weeks, the median of the same hour of the other days of the same kind
    (weekday or weekend); the hour itself is never part of its own expectation. The series is every
    hour of a span (:func:`hourly_series`), so a slot occurs once per week and an hour once per day:
    "the others" are the slot's (or hour's) values without this one, a leave-one-out median
    (:func:`loo_medians`).
    """
    hours = pd.DatetimeIndex(series["hour"])
    counts = series["events"].to_numpy(dtype=float)
    if len(counts) == 0:
        return np.zeros(0)
    offset = (hours - hours[0].normalize()) / pd.Timedelta(hours=1)
    week = np.asarray(offset // (24 * 7), dtype=int)
    day = np.asarray(offset // 24, dtype=int)
    hour = np.asarray(hours.hour)
    dow = np.asarray(hours.day_of_week)
    if len(np.unique(week)) >= 3:
        keys, period = dow * 24 + hour, week
    else:
        keys, period = hour * 2 + (dow >= 5), day
    if len(np.unique(keys * (int(period.max()) + 1) + period)) < len(keys):  # not one value per slot and period
        return _expected_counts_slow(counts, keys, period)
    return loo_medians(keys, counts)


def _expected_counts_slow(counts: np.ndarray, keys: np.ndarray, period: np.ndarray) -> np.ndarray:
    """The same medians for a series with repeated hours: the others of a slot exclude its whole period."""
    out = np.zeros(len(counts))
    for i in range(len(counts)):
        others = counts[(keys == keys[i]) & (period != period[i])]
        out[i] = float(np.median(others)) if len(others) else 0.0
    return out


def dispersion(counts: np.ndarray, expected: np.ndarray) -> float:
    """How much more a source's hourly counts vary than Poisson would (at least 1).

    Log records come in bursts (one session writes several), so a quiet afternoon is likelier than
    Poisson says; the shortfall test divides counts and expectations by this factor (quasi-Poisson).
    """
    mask = expected >= 1
    if mask.sum() < 24:
        return 1.0
    ratio = float(np.mean((counts[mask] - expected[mask]) ** 2 / expected[mask]))
    return max(1.0, ratio)


def shortfall_p(observed: float, expected: float, disp: float) -> float:
    """Quasi-Poisson tail: the chance of ``observed`` or fewer events where ``expected`` were due."""
    return poisson_cdf(int(observed / disp), expected / disp)


def _bounds(series: pd.DataFrame, lo: int, hi: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Last event before hour ``lo`` and first event after hour ``hi`` (the run's own edges if none)."""
    before = series.iloc[:lo]
    before = before[before["events"] > 0]
    after = series.iloc[hi + 1:]
    after = after[after["events"] > 0]
    start = before["last"].iloc[-1] if len(before) else series["hour"].iloc[lo]
    end = after["first"].iloc[0] if len(after) else series["hour"].iloc[hi] + HOUR
    return pd.Timestamp(start), pd.Timestamp(end)


def _hole(start: pd.Timestamp, end: pd.Timestamp, expected: float, observed: int, method: str,
          reason: str) -> dict[str, Any]:
    return {"start": start, "end": end, "hours": round((end - start) / HOUR, 1), "expected": round(expected, 1),
            "observed": int(observed), "method": method, "reason": reason}


def rhythm_holes(hourly: pd.DataFrame, p_value: float = P_VALUE, min_expected: float = MIN_EXPECTED) -> list[dict]:
    """Holes where a source's volume collapses against its own hour-of-week rhythm.

    Args:
        hourly: One source's hourly counts (columns hour, events, first, last; empty hours may be absent).
        p_value: Largest Poisson tail probability of the shortfall that still counts as a hole.
        min_expected: Events the run must have expected at least.

    Returns:
        Holes as dicts: start, end (tz-aware), hours, expected, observed, method ``rhythm``, reason.
    """
    if hourly.empty:
        return []
    series = hourly_series(hourly)
    if len(series) < 48:
        return []
    counts = series["events"].to_numpy()
    expected = expected_counts(series)
    disp = dispersion(counts.astype(float), expected)
    low = (counts < LOW_SHARE * expected) & (expected >= 0.5)
    bridge = counts == 0
    holes: list[dict[str, Any]] = []
    i, n = 0, len(series)
    while i < n:
        if not low[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and (low[j + 1] or bridge[j + 1]):
            j += 1
        while j > i and not low[j]:
            j -= 1
        lam, obs = float(expected[i:j + 1].sum()), int(counts[i:j + 1].sum())
        if lam >= min_expected and obs <= LOW_SHARE * lam and shortfall_p(obs, lam, disp) < p_value:
            start, end = _bounds(series, i, j)
            holes.append(_hole(start, end, lam, obs, "rhythm",
                               f"{obs} event(s) where the source's weekly rhythm expects about {lam:.0f}"))
        i = j + 1
    return holes


def file_split_holes(hourly: pd.DataFrame, files: pd.DataFrame) -> list[dict[str, Any]]:
    """Holes between evidence files of one source that the rhythm says should hold events.

    Args:
        hourly: The source's hourly counts (as for :func:`rhythm_holes`).
        files: One row per evidence file: columns file, first, last (event times).
    """
    if len(files) < 2 or hourly.empty:
        return []
    series = hourly_series(hourly)
    expected = expected_counts(series) if len(series) >= 48 else np.zeros(len(series))
    disp = dispersion(series["events"].to_numpy(dtype=float), expected)
    hours = pd.DatetimeIndex(series["hour"])
    ordered = files.sort_values("first")
    spans = zip(ordered["file"].astype(str), pd.DatetimeIndex(ordered["first"]), pd.DatetimeIndex(ordered["last"]),
                strict=True)
    holes: list[dict[str, Any]] = []
    reach_end: pd.Timestamp | None = None
    reach_file = ""
    for name, first, last in spans:
        if reach_end is not None and first > reach_end:
            inside = (hours >= reach_end.floor("h") + HOUR) & (hours + HOUR <= first.floor("h"))
            lam = float(expected[np.asarray(inside)].sum())
            if lam >= FILE_GAP_EXPECTED and shortfall_p(0, lam, disp) < FILE_GAP_P_VALUE:
                holes.append(_hole(reach_end, first, lam, 0, "file_split",
                                   f"nothing between {reach_file} and {name}, where about {lam:.0f} event(s) "
                                   "were expected"))
        if reach_end is None or last > reach_end:
            reach_end, reach_file = last, name
    return holes


def merge_holes(holes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Overlapping holes merged (methods and reasons joined), sorted by start."""
    out: list[dict[str, Any]] = []
    for h in sorted(holes, key=lambda x: x["start"]):
        if out and h["start"] <= out[-1]["end"]:
            last = out[-1]
            last["end"] = max(last["end"], h["end"])
            last["hours"] = round((last["end"] - last["start"]) / HOUR, 1)
            last["expected"] = max(last["expected"], h["expected"])
            if h["method"] not in last["method"].split("+"):
                last["method"] += "+" + h["method"]
                last["reason"] += "; " + h["reason"]
        else:
            out.append(dict(h))
    return out


def holes_json(holes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Holes with ISO times (for JSON documents)."""
    return [{**h, "start": iso(h["start"]), "end": iso(h["end"])} for h in holes]
