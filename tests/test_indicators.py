"""Indicator loading: shipped Storm-0558 list, user CSV and STIX bundles, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ir_toolkit.analysis.indicators import indicators, load_iocs, match_addresses, shipped_indicators
from ir_toolkit.errors import InputFormatError


def test_shipped_list_has_the_csv_the_blog_extras_and_the_key() -> None:
    ship = shipped_indicators()
    ips = set(ship.loc[ship["kind"] == "ip", "value"])
    assert {"195.26.87.219", "51.89.156.153", "185.158.248.93", "20.108.240.252", "146.70.135.182"} <= ips
    assert len(ips) == 8 + 27 + 3
    keys = set(ship.loc[ship["kind"] == "token_key", "value"])
    assert {"d4b4cccda9228624656bff33d8110955779632aa", "1LTMzakihiRla_8z2BEJVXeWMqo"} <= keys


def test_csv_kinds_are_inferred_when_no_type_column(tmp_path: Path) -> None:
    path = tmp_path / "iocs.csv"
    path.write_text("value\n198.51.100.1\n198.51.100.0/24\n00000003-0000-0000-C000-000000000000\n", encoding="utf-8")
    got = load_iocs(path)
    assert list(got["kind"]) == ["ip", "cidr", "app_id"]
    assert got["value"].iloc[2] == "00000003-0000-0000-c000-000000000000"


def test_bad_csv_row_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "iocs.csv"
    path.write_text("indicator,type\n198.51.100.1,IPv4\n300.1.1.1,IPv4\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"iocs.csv: line 3: '300.1.1.1' is not an IP"):
        load_iocs(path)


def test_unknown_kind_and_missing_file_are_user_errors(tmp_path: Path) -> None:
    path = tmp_path / "iocs.csv"
    path.write_text("indicator\nnot-an-indicator\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="line 2: cannot tell"):
        load_iocs(path)
    with pytest.raises(InputFormatError, match="not found"):
        load_iocs(tmp_path / "missing.csv")


def test_json_that_is_not_a_stix_bundle_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"type": "report"}), encoding="utf-8")
    with pytest.raises(InputFormatError, match="STIX 2.1 bundles"):
        load_iocs(path)


def test_stix_patterns_of_several_kinds(tmp_path: Path) -> None:
    objects = [
        {"type": "indicator", "name": "net", "pattern": "[ipv4-addr:value ISSUBSET '203.0.113.0/25']"},
        {"type": "indicator", "name": "key", "pattern": "[x509-certificate:hashes.'SHA-1' = 'ABCDEF']"},
        {"type": "indicator", "name": "ua",
         "pattern": "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = 'Evil/1']"},
        {"type": "malware", "name": "ignored"},
    ]
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"type": "bundle", "objects": objects}), encoding="utf-8")
    got = load_iocs(path)
    assert list(zip(got["kind"], got["value"], strict=True)) == [
        ("cidr", "203.0.113.0/25"), ("token_key", "ABCDEF"), ("user_agent", "evil/1")]


def test_address_matching_exact_cidr_and_ipv6() -> None:
    iocs = pd.DataFrame([
        {"kind": "ip", "value": "198.51.100.1", "description": "a", "source": "t"},
        {"kind": "cidr", "value": "2001:db8::/32", "description": "b", "source": "t"},
    ])
    hits = match_addresses(pd.Series(["198.51.100.1", "2001:db8::5", "10.0.0.1", "garbage", None]), iocs)
    assert sorted(hits["ip"]) == ["198.51.100.1", "2001:db8::5"]


def test_indicators_without_shipped_list_is_only_user_files(tmp_path: Path) -> None:
    path = tmp_path / "iocs.csv"
    path.write_text("indicator\n198.51.100.1\n", encoding="utf-8")
    assert list(indicators([str(path)], shipped=False)["value"]) == ["198.51.100.1"]
