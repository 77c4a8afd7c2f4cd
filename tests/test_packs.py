"""Packs as data: a pack includes the files of its family members (ir_toolkit.analysis.detections)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ir_toolkit.analysis.detections import load_pack
from ir_toolkit.errors import UserError

BASE = """
name: t
includes: [family/extra.yaml]
parameters:
  a: {default: 1, description: "a"}
views: [{name: v1, sql: "SELECT 1"}]
detections:
  - {id: one, title: One, description: d, sql: "SELECT 1", member: forged-oauth-token}
"""


def _pack(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "family").mkdir()
    (tmp_path / "family" / "extra.yaml").write_text(extra, encoding="utf-8")
    path = tmp_path / "t.yaml"
    path.write_text(BASE, encoding="utf-8")
    return path


def test_included_file_adds_parameters_views_and_detections_after_the_pack(tmp_path: Path) -> None:
    path = _pack(tmp_path, """
parameters:
  b: {default: 2, description: "b"}
views: [{name: v2, sql: "SELECT * FROM v1"}]
detections:
  - {id: two, title: Two, description: d, sql: "SELECT 2", member: app-abuse}
""")
    pack = load_pack(str(path))
    assert list(pack.detections) == ["one", "two"]
    assert [v["name"] for v in pack.views] == ["v1", "v2"]
    assert pack.resolve({"b": "5"}) == {"a": 1, "b": 5}
    assert pack.detections["two"].member == "app-abuse"


@pytest.mark.parametrize("extra, problem", [
    ("detections:\n  - {id: one, title: O, description: d, sql: 'SELECT 1'}\n", "detection one is defined twice"),
    ("parameters:\n  a: {default: 3, description: a}\n", "parameter a is defined twice"),
    ("- just a list\n", "a pack file is a mapping"),
])
def test_included_file_that_clashes_or_is_not_a_mapping_is_refused(tmp_path: Path, extra: str, problem: str) -> None:
    with pytest.raises(UserError, match=problem):
        load_pack(str(_pack(tmp_path, extra)))


def test_shipped_pack_loads_its_family_members() -> None:
    pack = load_pack("token-forgery")
    assert pack.detections["orphan-token"].member == "forged-oauth-token"
    assert {"orphan-token", "forged-token", "app-baseline"} <= set(pack.detections)
