"""Random damage to real-shape files: every record outside the damaged span is still imported.

Hypothesis flips a bit, inserts a few bytes or cuts the file at a random place inside the
records of a Graph sign-in array, a Graph page, a JSON lines file and a Purview CSV. A record is
damaged when the change touches its bytes or the separator next to it (a cut damages every
record from there on); every other record must be in the case, the counts must add up and the
import must never fail.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest
from hostile_inputs import build, csv_file, rid, texts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ir_toolkit.case import Case
from ir_toolkit.errors import InputFormatError

N = 10


def _file(container: str) -> tuple[bytes, list[tuple[int, int]]]:
    """The file's bytes and each record's [start, end) byte span."""
    if container == "csv":
        data = csv_file(N)
        rows = data.split(b"\r\n")[1:-1]
        first = data.index(b"\r\n") + 2
        spans, at = [], first
        for row in rows:
            spans.append((at, at + len(row)))
            at += len(row) + 2
        return data, spans
    recs = texts(N)
    data = build(container, recs)
    spans, at = [], 0
    for r in recs:
        start = data.index(r, at)
        spans.append((start, start + len(r)))
        at = start + len(r)
    return data, spans


FILES = {c: _file(c) for c in ("json", "page", "pages", "jsonl", "jsonl-pages", "csv")}


@st.composite
def damage(draw: st.DrawFn, container: str) -> tuple[bytes, set[int]]:
    data, spans = FILES[container]
    p = draw(st.integers(spans[0][0], spans[-1][1] - 1))
    kind = draw(st.sampled_from(["flip", "insert", "cut"]))
    if kind == "flip":
        bit = draw(st.integers(0, 7))
        changed = data[:p] + bytes([data[p] ^ (1 << bit)]) + data[p + 1:]
    elif kind == "insert":
        changed = data[:p] + draw(st.binary(min_size=1, max_size=4)) + data[p:]
    else:
        changed = data[:p]
    damaged = {i for i, (a, b) in enumerate(spans) if a - 2 <= p <= b + 1}
    if kind == "cut":
        damaged |= {i for i, (_, b) in enumerate(spans) if b >= p - 1}
    return changed, damaged


@pytest.mark.parametrize("container", list(FILES))
def test_damage_costs_only_the_damaged_records(container: str) -> None:
    suffix = {"csv": ".csv", "jsonl": ".jsonl", "jsonl-pages": ".jsonl"}.get(container, ".json")

    @settings(max_examples=25, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(damage(container))
    def check(case: tuple[bytes, set[int]]) -> None:
        changed, damaged = case
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"evidence{suffix}"
            path.write_bytes(changed)
            c = Case.init(Path(tmp) / "case", tenant="contoso.onmicrosoft.com")
            try:
                [res] = c.import_files([path])
            except InputFormatError:  # refused (one line, exit 2) only when no record is left whole
                assert damaged == set(range(N))
                return
            assert res["records"] == res["imported"] + res["duplicates"] + res["quarantined"]
            stored = set(c.read_events(columns=["record_id"])["record_id"])
            missing = {rid(i) for i in range(N) if i not in damaged} - stored
            assert not missing, (sorted(missing), sorted(damaged), c.quarantined()["reason"].tolist())

    logging.disable(logging.WARNING)
    try:
        check()
    finally:
        logging.disable(logging.NOTSET)
