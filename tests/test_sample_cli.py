"""`ir-toolkit sample make`: determinism, scale, errors, and the committed data/sample-tenant."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import DATA, cli

from ir_toolkit.sample import make_sample
from ir_toolkit.sample.story import build_story


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_tenant(tmp_path: Path) -> None:
    r = cli("sample", "make", tmp_path / "a", "--seed", "11", "--users", "12", "--days", "35", "--gzip", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["tenant"]["records"]["events_total"] > 5000
    make_sample(tmp_path / "b", seed=11, users=12, days=35, gzip=True)
    make_sample(tmp_path / "c", seed=12, users=12, days=35, gzip=True)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b
    assert not set(a.values()) & set(c.values()) - {hashlib.sha256(b"").hexdigest()}
    ka, kc = (json.loads((tmp_path / x / "answer_key.json").read_text()) for x in "ac")
    assert ka["actor_token_ids"] != kc["actor_token_ids"]
    assert {i["ip"] for i in ka["actor_ips"]} != {i["ip"] for i in kc["actor_ips"]}
    sa, sc = build_story(11, 12, 35), build_story(12, 12, 35)
    assert [u.upn for u in sa.users] != [u.upn for u in sc.users]
    assert (sa.throttle_at, sa.spray_at, sa.travel) != (sc.throttle_at, sc.spray_at, sc.travel)


def test_scale_tells_the_same_story_over_more_data(tmp_path: Path) -> None:
    small = make_sample(tmp_path / "s", seed=5, users=12, days=35)
    big = make_sample(tmp_path / "b", seed=5, users=12, days=35, scale=1.6)
    assert big["tenant"]["users"] == 19 and big["tenant"]["days"] == 56
    assert big["tenant"]["records"]["events_total"] > 1.8 * small["tenant"]["records"]["events_total"]
    for k in ("first_malicious", "last_malicious"):
        assert big["window"][k][:10] == small["window"][k][:10]
    assert big["signin_coverage"] == small["signin_coverage"]
    assert big["tenant"]["first_day"] < small["tenant"]["first_day"]


@pytest.mark.parametrize(("args", "words"), [
    (["--users", "3"], "--users must be at least"),
    (["--days", "10"], "--days must be at least"),
    (["--scale", "0"], "--scale must be"),
    (["--scale", "-2"], "--scale must be"),
    (["--scale", "nan"], "--scale must be"),
    (["--users", "many"], "invalid int value"),
    (["--scale", "1e9"], "--scale must be"),
])
def test_bad_numbers_exit_2_with_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    r = cli("sample", "make", tmp_path / "t", *args)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and words in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "t").exists()


def test_bad_directories_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep").write_text("x")
    for target, words in ((f, "not a directory"), (full, "not empty"), (f / "sub", "cannot create")):
        r = cli("sample", "make", target, "--users", "12", "--days", "35")
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and words in r.stderr and "Traceback" not in r.stderr
    assert (full / "keep").read_text() == "x" and sorted(p.name for p in full.iterdir()) == ["keep"]


def test_committed_sample_tenant_is_what_the_documented_command_makes(tmp_path: Path) -> None:
    committed = DATA / "sample-tenant"
    key = json.loads((committed / "answer_key.json").read_text())
    total = sum(p.stat().st_size for p in committed.rglob("*") if p.is_file())
    assert total <= 15 * 1024 * 1024
    assert 10_000 <= key["tenant"]["records"]["events_total"] <= 100_000
    for f in key["files"]:
        assert hashlib.sha256((committed / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    t = key["tenant"]
    make_sample(tmp_path / "again", seed=t["seed"], users=t["users_param"], days=t["days_param"], scale=t["scale"],
                gzip=t["gzip"])
    assert _digest(tmp_path / "again") == _digest(committed)
    makefile = (DATA.parent / "Makefile").read_text()
    assert f"--seed {t['seed']} --users {t['users_param']} --days {t['days_param']}" in makefile
