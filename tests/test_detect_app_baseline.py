"""app-baseline: AppId / ClientAppId never seen reading a mailbox (or the tenant) during the baseline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ir_toolkit.analysis.detect import detect
from ir_toolkit.case import Case
from tests.detect_events import at, backup_nights, frame, mail, signed_in_access, tenant_background

REST = "Client=REST;Client=RESTSystem;;"


def baseline(case_dir: Path, rows: list[dict], **params: object) -> pd.DataFrame:
    case = Case.open(case_dir)
    case.write_events(frame(*tenant_background(), *rows))
    found = detect(case, params=params or None)
    return found[found["detection"] == "app-baseline"]


def test_unexplained_new_app_with_other_signals_is_likely(case_dir: Path) -> None:
    rows = [mail(at(9, 1), "user2@contoso.com", "203.0.113.7", app="app-stranger", ua=REST,
                 messages=("<a@c>",))]
    found = baseline(case_dir, rows)
    assert len(found) == 1
    f = found.iloc[0]
    assert f["verdict"] == "likely" and f["app_id"] == "app-stranger" and f["mailbox"] == "user2@contoso.com"
    assert "never seen tenant-wide before" in f["explanation"] and "no sign-in explains it" in f["explanation"]


def test_client_app_id_is_the_application_compared(case_dir: Path) -> None:
    rows = [mail(at(9, 1), "user2@contoso.com", "10.0.0.3", app="app-outlook", client_app_id="App-Hidden")]
    found = baseline(case_dir, rows)
    assert list(found["app_id"]) == ["app-hidden"]


def test_backup_app_explained_by_its_service_principal_signins_is_benign(case_dir: Path) -> None:
    found = baseline(case_dir, backup_nights(range(8, 11)))
    assert len(found) == 4 and set(found["verdict"]) == {"benign"}
    assert "service-principal sign-ins explain it" in found.iloc[0]["explanation"]


def test_new_mail_client_with_issued_tokens_is_only_possible(case_dir: Path) -> None:
    rows = signed_in_access(at(9, 14), "user1@contoso.com", "10.0.0.2", app="app-newclient")
    found = baseline(case_dir, rows)
    assert list(found["verdict"]) == ["possible"]
    assert "mailbox owner" in found.iloc[0]["explanation"]


def test_app_seen_during_the_baseline_is_not_reported(case_dir: Path) -> None:
    rows = [mail(at(1, 1), "user0@contoso.com", "203.0.113.7", app="app-old"),
            mail(at(9, 1), "user0@contoso.com", "203.0.113.7", app="app-old")]
    assert baseline(case_dir, rows).empty


def test_baseline_days_is_a_parameter(case_dir: Path) -> None:
    rows = [mail(at(9, 1), "user2@contoso.com", "203.0.113.7", app="app-stranger", ua=REST)]
    assert baseline(case_dir, rows, baseline_days=30).empty


def test_known_app_on_a_new_mailbox_owner_signed_in_with_is_quiet(case_dir: Path) -> None:
    rows = signed_in_access(at(10, 15), "newhire@contoso.com", "10.0.0.9")
    assert baseline(case_dir, rows).empty
