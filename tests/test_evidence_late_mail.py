"""A mailbox audit log that begins after the other logs (session 10): the evidence says the window may be short.

A generated tenant (seed 7) whose MailItemsAccessed records were cut before the third day of the intrusion scoped
the window from the first access left, three days late, and named no limit: the profile now says
``mail_after_others`` when the mailbox audit log begins more than a day after the user sign-ins or the directory
audit log.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ir_toolkit.analysis.prepare import prepare
from ir_toolkit.case import Case
from tests.detect_events import T0, frame, tenant_background


def test_a_mail_log_beginning_days_after_the_sign_ins_is_a_limit(case_dir: Path) -> None:
    rows = [r for r in tenant_background(days=8)
            if r["source"] != "mail_access" or r["time"] >= T0 + pd.Timedelta(days=3)]
    case = Case.open(case_dir)
    case.write_events(frame(*rows))
    evidence = prepare(case).evidence
    assert "mail_after_others" in evidence["limits"]
    assert any("before the window" in s for s in evidence["cannot_prove"])


def test_a_mail_log_as_long_as_the_sign_ins_is_no_limit(case_dir: Path) -> None:
    case = Case.open(case_dir)
    case.write_events(frame(*tenant_background(days=8)))
    assert "mail_after_others" not in prepare(case).evidence["limits"]
