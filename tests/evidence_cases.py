"""Cases built from hand-made events for the evidence profile tests (CLI, report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ir_toolkit.case import Case
from tests import detect_events as ev

DAYS = 28                               # four weeks of background: the rhythm compares hour-of-week slots
HOLE_START, HOLE_END = ev.at(15, 9), ev.at(16, 21)   # 36 hours inside busy hours, punched into non-interactive
BUSY = range(8, 19)
USERS = 6


def refreshes(days: int = DAYS, users: int = USERS) -> list[dict[str, Any]]:
    """Non-interactive sign-ins: every user's client refreshes hourly in office hours, one a night hour."""
    rows: list[dict[str, Any]] = []
    for d in range(days):
        for h in range(24):
            who = range(users) if h in BUSY else range(1)
            rows += [ev.signin(ev.at(d, h + 0.1 + u / 20), f"user{u}@contoso.com", f"10.0.0.{u + 1}",
                               source="signin_noninteractive") for u in who]
    return rows


def holed_case(root: Path) -> Case:
    """Four weeks of tenant activity with a 36-hour hole in the non-interactive sign-ins."""
    case = Case.init(root, tenant="contoso.onmicrosoft.com", case_id="holed")
    frame = ev.frame(*ev.tenant_background(users=4, days=DAYS), *refreshes())
    punched = (frame["source"] == "signin_noninteractive") & (frame["time"] >= HOLE_START) & \
        (frame["time"] < HOLE_END)
    case.write_events(frame[~punched].reset_index(drop=True))
    return case


def interactive_only_case(root: Path, days: int = 8) -> Case:
    """Users sign in interactively and read their own mail; no non-interactive sign-ins were provided."""
    case = Case.init(root, tenant="contoso.onmicrosoft.com", case_id="no-noninteractive")
    case.write_events(ev.frame(*ev.tenant_background(users=4, days=days, noninteractive=False)))
    return case


def hours_between(a: str, b: pd.Timestamp) -> float:
    """Absolute distance in hours between an ISO time and a timestamp."""
    return abs((pd.Timestamp(a) - b) / pd.Timedelta(hours=1))
