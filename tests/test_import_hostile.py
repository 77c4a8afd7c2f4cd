"""Hostile input: one bad record never costs the records around it, in any container.

Every case asserts the exact counts (records == imported + duplicates + quarantined), the
quarantined record's position, and that every other record is stored at its own position.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, cli
from hostile_inputs import (
    CONTAINERS,
    DAMAGE,
    build,
    csv_file,
    deep,
    evidence_file,
    rid,
    signin,
    texts,
    ual,
)

from ir_toolkit.case import Case
from ir_toolkit.case.importing import import_files
from ir_toolkit.sources import jsonstream, limits

N, K = 12, 5
KINDS = {**DAMAGE, "nested 1,100 deep": deep(1100), "nested 100 deep": deep(100), "stray quote": b'a"b'}
ALL = (*CONTAINERS, "json.gz", "pages.gz", "jsonl.gz", "csv.gz")


def _import(tmp: Path, path: Path, **kw: Any) -> tuple[dict[str, Any], Case]:
    case = Case.init(tmp / f"case-{path.name}", tenant="contoso.onmicrosoft.com")
    [res] = import_files(case, [path], **kw)
    assert res["records"] == res["imported"] + res["duplicates"] + res["quarantined"]
    return res, case


def _positions(case: Case) -> dict[str, int]:
    ev = case.read_events(columns=["record_id", "evidence"])
    return {r: int(e.rsplit("#", 1)[1]) for r, e in zip(ev["record_id"], ev["evidence"], strict=True)}


def _stored_ids(case: Case) -> set[str]:
    return set(case.read_events(columns=["record_id"])["record_id"])


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("container", ALL)
def test_one_bad_record_is_quarantined_and_the_rest_imported(tmp_path: Path, container: str, kind: str) -> None:
    path = evidence_file(tmp_path, container, N, K, KINDS[kind])
    res, case = _import(tmp_path, path)
    assert (res["records"], res["imported"], res["duplicates"], res["quarantined"]) == (N, N - 1, 0, 1)
    [q] = case.quarantined().to_dict("records")
    assert q["position"] == K + 1 and q["reason"]
    assert _positions(case) == {rid(i): i + 1 for i in range(N) if i != K}  # each record its own position


@pytest.mark.parametrize("container", ["json", "page", "pages", "jsonl", "csv", "json.gz", "jsonl.gz", "csv.gz"])
def test_oversize_record_is_kept_as_a_reference_not_copied(tmp_path: Path, container: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_RECORD", 20_000)
    path = evidence_file(tmp_path, container, N, K, b"A" * 60_000)
    res, case = _import(tmp_path, path)
    assert (res["records"], res["imported"], res["quarantined"]) == (N, N - 1, 1)
    [q] = case.quarantined().to_dict("records")
    assert q["position"] == K + 1 and "kept as a reference" in q["reason"] and "A" * 100 not in q["record"]
    data = path.read_bytes()
    data = gzip.decompress(data) if container.endswith(".gz") else data
    span = data[q["offset"]:q["offset"] + q["length"]]
    assert hashlib.sha256(span).hexdigest() == q["sha256"] and b"A" * 60_000 in span
    assert rid(K).encode() in span and rid(K + 1).encode() not in span and rid(K - 1).encode() not in span
    assert sum(f.stat().st_size for f in case.quarantine_dir.iterdir()) < 5_000
    assert _positions(case) == {rid(i): i + 1 for i in range(N) if i != K}


def test_oversize_compact_page_line_is_one_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In JSON lines the line is the unit the size bound applies to: a page line over it is one reference."""
    monkeypatch.setattr(limits, "MAX_RECORD", 20_000)
    res, case = _import(tmp_path, evidence_file(tmp_path, "jsonl-pages", N, K, b"A" * 60_000))
    assert (res["records"], res["imported"], res["quarantined"]) == (N - 3, N - 4, 1)  # the page of records 4..7


def _record_ends(plain: bytes, n: int) -> list[int]:
    return [plain.index(rid(i).encode()) for i in range(n)]


@pytest.mark.parametrize("container", ["json", "page", "pages", "jsonl", "jsonl-pages", "csv"])
def test_file_cut_inside_a_record_keeps_every_record_before_it(tmp_path: Path, container: str) -> None:
    full = evidence_file(tmp_path, container, N, None)
    data = full.read_bytes()
    cut = data.index(rid(7).encode()) + 40  # inside record 7
    full.write_bytes(data[:cut])
    res, case = _import(tmp_path, full)
    assert (res["records"], res["imported"], res["quarantined"]) == (8, 7, 1)
    [q] = case.quarantined().to_dict("records")
    assert q["position"] == 8
    assert _positions(case) == {rid(i): i + 1 for i in range(7)}


@pytest.mark.parametrize("fraction", [0.31, 0.5, 0.77, 0.93])
@pytest.mark.parametrize("container", ["json.gz", "pages.gz", "jsonl.gz", "csv.gz"])
def test_cut_gzip_keeps_every_complete_record(tmp_path: Path, container: str, fraction: float) -> None:
    path = evidence_file(tmp_path, container, 60, None)
    packed = path.read_bytes()
    plain = gzip.decompress(packed)
    path.write_bytes(packed[: int(len(packed) * fraction)])
    readable = zlib.decompressobj(31).decompress(packed[: int(len(packed) * fraction)])
    starts = _record_ends(plain, 60)
    # a record is complete when the text after it (up to the next record's id) was decompressed too
    complete = sum(1 for i in range(60) if (starts[i + 1] if i + 1 < 60 else len(plain)) <= len(readable))
    res, case = _import(tmp_path, path)
    assert res["imported"] >= complete - 1 and res["quarantined"] == 1
    assert res["records"] == res["imported"] + 1
    assert _stored_ids(case) >= {rid(i) for i in range(complete - 1)}
    assert "gzip stream cut short" in case.quarantined()["reason"].iloc[0]


@pytest.mark.parametrize("container", ["json.gz", "jsonl.gz", "csv.gz"])
def test_corrupt_gzip_keeps_the_records_before_the_damage(tmp_path: Path, container: str) -> None:
    path = evidence_file(tmp_path, container, 80, None)
    packed = bytearray(path.read_bytes())
    plain = gzip.decompress(bytes(packed))
    packed[len(packed) // 2] ^= 0x55
    path.write_bytes(bytes(packed))
    d = zlib.decompressobj(31)
    out = b""
    try:
        for i in range(0, len(packed), 4096):
            out += d.decompress(bytes(packed[i:i + 4096]))
    except zlib.error:
        pass
    same = next((i for i, (a, b) in enumerate(zip(out, plain, strict=False)) if a != b), min(len(out), len(plain)))
    starts = _record_ends(plain, 80)
    intact = {rid(i) for i in range(79) if starts[i + 1] <= same}
    res, case = _import(tmp_path, path)
    assert _stored_ids(case) >= intact and len(intact) > 10
    assert any("gzip" in r for r in case.quarantined()["reason"])


def test_gzip_beyond_the_inflation_bound_is_cut_with_the_reason(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_INFLATE", 2)
    monkeypatch.setattr(limits, "MIN_INFLATE_CAP", 50_000)
    path = evidence_file(tmp_path, "jsonl.gz", 200, None)
    res, case = _import(tmp_path, path)
    assert 10 < res["imported"] < 200 and res["quarantined"] == 1
    assert "expands beyond 50000 bytes" in case.quarantined()["reason"].iloc[0]


# ----- the reproductions of issue 16 ------------------------------------------------------------
def test_control_byte_in_record_31_of_5000(tmp_path: Path) -> None:
    path = tmp_path / "signins.json"
    path.write_bytes(build("json", texts(5000, 30, DAMAGE["control byte"])))
    for fast in (False, True):
        res, case = _import(tmp_path / str(fast), path, fast=fast)
        assert (res["records"], res["imported"], res["quarantined"]) == (5000, 4999, 1)
        assert case.quarantined()["position"].tolist() == [31]


def test_one_oversize_record_in_a_management_api_array(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_RECORD", 100_000)
    path = tmp_path / "ual.json"
    path.write_bytes(build("json", texts(1000, 10, b"x" * 250_000, make=ual)))
    res, case = _import(tmp_path, path)
    assert (res["format"], res["records"], res["imported"], res["quarantined"]) == ("management-api", 1000, 999, 1)
    assert _stored_ids(case) >= {rid(i) for i in range(11, 1000)}  # the 989 after it


def test_lone_surrogate_costs_one_record_not_a_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK", 1 << 16)  # the document reader reads it at each call
    path = tmp_path / "signins.json"
    path.write_bytes(build("json", texts(400, 200, DAMAGE["lone surrogate"])))
    for fast in (False, True):
        res, _ = _import(tmp_path / str(fast), path, fast=fast)
        assert (res["records"], res["imported"], res["quarantined"]) == (400, 399, 1)


def test_one_bad_byte_early_does_not_turn_a_utf8_file_into_cp1252(tmp_path: Path) -> None:
    path = tmp_path / "signins.jsonl"
    path.write_bytes(build("jsonl", texts(30, 0, DAMAGE["invalid UTF-8"])))  # the bad byte in the first record
    res, case = _import(tmp_path, path)
    assert (res["imported"], res["quarantined"]) == (29, 1)
    assert case.evidence()[0]["encoding"] == "utf-8"
    assert all("Malmö" in r for r in case.read_events(columns=["raw"])["raw"])  # never mojibake


def test_compact_pages_give_each_record_its_own_position(tmp_path: Path) -> None:
    _, case = _import(tmp_path, evidence_file(tmp_path, "jsonl-pages", N))
    assert _positions(case) == {rid(i): i + 1 for i in range(N)}


_PEAK = """import resource, runpy, sys
sys.argv = ["ir-toolkit", "import", sys.argv[1], sys.argv[2], "--json"]
code = 0
try:
    runpy.run_module("ir_toolkit", run_name="__main__")
except SystemExit as exc:
    code = exc.code
sys.stderr.write("PEAK %d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def test_gzip_bomb_line_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    """A 120 MB line (a 0.1 MB gzip) with a 1 MB record bound: the import's peak memory is that of a
    small file, the quarantine holds a reference, not the line (the issue's 800 MB case, scaled)."""
    small = tmp_path / "small.jsonl.gz"
    small.write_bytes(gzip.compress(build("jsonl", texts(3))))
    bomb = tmp_path / "bomb.jsonl.gz"
    lines = [json.dumps(signin(0)), json.dumps(dict(signin(1), userAgent="A" * (120 << 20))), json.dumps(signin(2))]
    bomb.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IR_TOOLKIT_MAX_RECORD": str(1 << 20)}
    peaks = []
    for i, f in enumerate((small, bomb)):
        case = tmp_path / f"c{i}"
        assert cli("case", "init", case, "--tenant", "t").returncode == 0
        p = subprocess.run([sys.executable, "-c", _PEAK, str(case), str(f)], capture_output=True, text=True, env=env,
                           timeout=300)
        assert p.returncode == 0, p.stderr
        peaks.append(int(p.stderr.rsplit("PEAK ", 1)[1].split()[0]) * 1024)
    [res] = json.loads(p.stdout)
    assert (res["records"], res["imported"], res["quarantined"]) == (3, 2, 1)
    [q] = Case.open(tmp_path / "c1").quarantined().to_dict("records")
    assert q["length"] > 120 << 20 and q["sha256"] and "kept as a reference" in q["reason"]
    assert sum(x.stat().st_size for x in (tmp_path / "c1" / "quarantine").iterdir()) < 5_000
    assert peaks[1] - peaks[0] < 60 << 20, peaks  # the 120 MB line never sits in memory


def test_one_file_with_every_kind_of_damage_through_the_cli(tmp_path: Path) -> None:
    recs = texts(40)
    for i, damage in enumerate(KINDS.values()):
        recs[3 + 4 * i] = texts(40, 3 + 4 * i, damage)[3 + 4 * i]
    path = tmp_path / "everything.json"
    path.write_bytes(build("pages", recs))
    case = tmp_path / "case"
    assert cli("case", "init", case, "--tenant", "t").returncode == 0
    p = cli("import", case, path, "--json")
    assert p.returncode == 0 and "Traceback" not in p.stderr
    [res] = json.loads(p.stdout)
    assert (res["records"], res["imported"], res["quarantined"]) == (40, 40 - len(KINDS), len(KINDS))


def test_csv_row_that_swallows_the_next_lines_is_cut_back(tmp_path: Path) -> None:
    data = csv_file(N, None)
    lines = data.split(b"\r\n")
    lines[K + 1] = lines[K + 1].replace(b'}",', b"},", 1)  # row K's AuditData loses its closing quote
    path = tmp_path / "purview.csv"
    path.write_bytes(b"\r\n".join(lines))
    res, case = _import(tmp_path, path)
    assert (res["records"], res["imported"], res["quarantined"]) == (N, N - 1, 1)
    assert _positions(case) == {rid(i): i + 1 for i in range(N) if i != K}


def test_limits_are_documented() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "import.md").read_text(encoding="utf-8")
    for name in ("MAX_RECORD", "MAX_DEPTH", "MAX_INFLATE", "MIN_INFLATE_CAP"):
        assert f"IR_TOOLKIT_{name}" in doc


@pytest.mark.parametrize("kind", ["control byte", "lone surrogate", "invalid UTF-8", "nested 100 deep",
                                  "nested 1,100 deep", "stray quote", "far future", "cut"])
def test_fast_path_gives_the_same_result_on_damaged_files(tmp_path: Path, kind: str) -> None:
    from test_import_fast import same_case

    if kind == "far future":
        recs = texts(300)
        recs[120] = recs[120].replace(b'"2020-03-13T19:15:41.6195833Z"', b'"9999-12-31T23:59:59.9999999Z"')
    else:
        recs = texts(300, 120, KINDS.get(kind, b""))
    data = build("json", recs)
    if kind == "cut":
        data = data[:data.index(rid(200).encode()) + 30]
    path = tmp_path / "signins.json"
    path.write_bytes(data)
    res, events = same_case(tmp_path, path, batch_size=64)
    assert res["quarantined"] == 1 and res["imported"] == (200 if kind == "cut" else 299)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16"])
def test_lone_surrogate_in_a_utf16_file_costs_one_record(tmp_path: Path, encoding: str) -> None:
    text = build("jsonl", texts(N)).decode("utf-8").replace(rid(K), rid(K) + "\ud800")
    path = tmp_path / "signins.jsonl"
    path.write_bytes(text.encode(encoding, "surrogatepass"))
    res, case = _import(tmp_path, path)
    assert (res["records"], res["imported"], res["quarantined"]) == (N, N - 1, 1)
    assert case.quarantined()["position"].tolist() == [K + 1]
    assert _positions(case) == {rid(i): i + 1 for i in range(N) if i != K}


@pytest.mark.parametrize("damage", ["lost closing quote", "stray quote", "control byte", "short row"])
def test_fast_path_gives_the_same_result_on_damaged_purview_csv(tmp_path: Path, damage: str) -> None:
    from test_import_fast import same_case

    data = csv_file(300)
    lines = data.split(b"\r\n")
    row = lines[121]
    lines[121] = {"lost closing quote": row.replace(b'}",', b"},", 1),
                  "stray quote": row.replace(b"Client=REST", b'Cli"ent=REST', 1),
                  "control byte": row.replace(b"Client=REST", b"Cli\x01ent=REST", 1),
                  "short row": row.split(b',"{')[0]}[damage]
    path = tmp_path / "purview.csv"
    path.write_bytes(b"\r\n".join(lines))
    res, _ = same_case(tmp_path, path, batch_size=64)
    assert (res["records"], res["imported"], res["quarantined"]) == (300, 299, 1)


def test_small_cut_gzip_is_read_not_refused(tmp_path: Path) -> None:
    """A gzip file smaller than the sniffing window, cut short: its whole records are imported."""
    path = evidence_file(tmp_path, "jsonl.gz", 6)
    packed = path.read_bytes()
    path.write_bytes(packed[: int(len(packed) * 0.85)])
    readable = zlib.decompressobj(31).decompress(packed[: int(len(packed) * 0.85)])
    complete = readable.count(b"\n")
    assert 1 <= complete < 6
    res, case = _import(tmp_path, path)
    assert (res["records"], res["imported"], res["quarantined"]) == (complete + 1, complete, 1)
