"""holes.expected_counts (vectorised leave-one-out medians) equals the straightforward per-hour loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ir_toolkit.analysis.holes import expected_counts, hourly_series, loo_medians


def _reference(series: pd.DataFrame) -> np.ndarray:
    """The definition, one hour at a time: median of the same slot in the other weeks (or days)."""
    hours = pd.DatetimeIndex(series["hour"])
    counts = series["events"].to_numpy(dtype=float)
    offset = (hours - hours[0].normalize()) / pd.Timedelta(hours=1)
    week = np.asarray(offset // (24 * 7), dtype=int)
    day = np.asarray(offset // 24, dtype=int)
    hour = np.asarray(hours.hour)
    slot = np.asarray(hours.day_of_week) * 24 + hour
    weekend = np.asarray(hours.day_of_week) >= 5
    out = np.zeros(len(counts))
    weeks = len(np.unique(week))
    for i in range(len(counts)):
        if weeks >= 3:
            mask = (slot == slot[i]) & (week != week[i])
        else:
            mask = (hour == hour[i]) & (weekend == weekend[i]) & (day != day[i])
        others = counts[mask]
        out[i] = float(np.median(others)) if len(others) else 0.0
    return out


def _series(rng: np.random.Generator, hours: int) -> pd.DataFrame:
    start = pd.Timestamp("2023-05-01", tz="UTC") + pd.Timedelta(hours=int(rng.integers(0, 24 * 14)))
    index = pd.date_range(start, periods=hours, freq="h")
    kind = rng.integers(0, 3)
    if kind == 0:  # few distinct values: many ties
        counts = rng.integers(0, 4, size=hours)
    elif kind == 1:  # a weekly rhythm with noise and dropped hours
        base = 50 * (np.asarray(index.hour) >= 8) * (np.asarray(index.day_of_week) < 5)
        counts = rng.poisson(base + 2) * (rng.random(hours) > 0.05)
    else:
        counts = rng.integers(0, 10_000, size=hours)
    return pd.DataFrame({"hour": index, "events": counts.astype("int64")})


@pytest.mark.parametrize("seed", range(40))
def test_expected_counts_equals_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    hours = int(rng.choice([1, 2, 24, 47, 48, 100, 24 * 13, 24 * 14 + 5, 24 * 21, 24 * 30 + 7, 24 * 61]))
    series = _series(rng, hours)
    assert np.array_equal(expected_counts(series), _reference(series))


def test_expected_counts_through_hourly_series() -> None:
    rng = np.random.default_rng(7)
    hours = pd.date_range("2023-05-03T05:00Z", periods=24 * 40, freq="h")
    keep = rng.random(len(hours)) > 0.3  # absent hours become zeros in hourly_series
    sparse = pd.DataFrame({"hour": hours[keep], "events": rng.integers(1, 30, size=int(keep.sum())),
                           "first": hours[keep], "last": hours[keep]})
    series = hourly_series(sparse)
    assert np.array_equal(expected_counts(series), _reference(series))


def test_expected_counts_repeated_hours_fall_back() -> None:
    """Not one value per slot and week (repeated hours): the whole week is left out, as defined."""
    hours = pd.date_range("2023-05-01", periods=24 * 28, freq="h", tz="UTC")
    series = pd.DataFrame({"hour": hours.append(hours[:30]), "events": np.arange(len(hours) + 30) % 17})
    assert np.array_equal(expected_counts(series), _reference(series))


def test_loo_medians_small() -> None:
    keys = np.array([0, 0, 0, 1, 1, 2])
    values = np.array([5.0, 1.0, 3.0, 2.0, 8.0, 4.0])
    # group 0: others of 5 -> median(1, 3) = 2; of 1 -> median(5, 3) = 4; of 3 -> median(5, 1) = 3
    assert loo_medians(keys, values).tolist() == [2.0, 4.0, 3.0, 8.0, 2.0, 0.0]
    assert loo_medians(np.array([], dtype=int), np.array([])).tolist() == []
