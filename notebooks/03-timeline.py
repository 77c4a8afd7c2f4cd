# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 Timeline: the actor's sessions, rhythm and per-mailbox activity
#
# **Playbook step 3 of 5.** Data sources: MailItemsAccessed, sign-in logs.
#
# With the indicators from triage (addresses, token ids, sessions), we gather every event the
# actor produced and put it in order. Three views answer three questions:
#
# * **Sessions**: how the actor worked: one token per burst, or long-lived sessions? Forged
#   tokens typically appear as short bursts, each with a fresh `UniqueTokenId`, and no sign-in.
# * **Working-hours rhythm** (hour of week): the tenant's own users work office hours in
#   their time zone; an actor working from elsewhere shows a different rhythm. Choose `tz` to
#   read it in the tenant's zone.
# * **Per-mailbox activity**: when each compromised mailbox was read, against its owner's own use.

# %% tags=["parameters"]
case_path: str = "../demo-case"  # the case folder (created with `ir-toolkit case init`)
tenant: str = ""  # tenant domain or id; empty: the case tenant
window_start: str = ""  # ISO start of the investigation window; empty: all data
window_end: str = ""  # ISO end of the investigation window; empty: all data
tz: str = "UTC"  # display time zone for tables and figures (data stays UTC)
baseline_days: int = 0  # days of mailbox history that define the usual apps; 0: the detection pack default
redact: bool = False  # pseudonymise UPNs, names and internal addresses in the report
engine: str = "duckdb"  # engine for heavy scans: duckdb (one machine) or spark (data lake)
mailbox: str = ""  # review a single mailbox; empty: the whole tenant

# %% [markdown]
# Setup: open the case. Everything below reads from the case folder, so the notebook can be
# rerun at any time and gives the same answer for the same evidence. Every table shows its times
# in the `tz` parameter's zone (the data stays UTC inside).

# %%
import pandas as pd
from IPython.display import Markdown, display

from ir_toolkit.report import casedata, casequery
from ir_toolkit.report.notebook import start_notebook

case, tenant = start_notebook(case_path, tenant, tz)

# %%
# The actor's events are read from the case (DuckDB, filtered); the rest of the tenant only as counts.
window = casequery.window_where(window_start, window_end, mailbox)
findings = casedata.load_findings(case)
scope = casedata.load_scope(case)
actor = casequery.actor_events(case, findings, scope, window_start, window_end, mailbox,
                                columns=casequery.WITHOUT_RAW)
display(Markdown(f"{casequery.count_events(case, window)} events in the window, **{len(actor)}** tied to the actor."))
if actor.empty:
    display(Markdown(f"**{casedata.NO_FINDINGS}**: the views below stay empty until there are indicators."))

# %% [markdown]
# ## The actor's events first
# Every event tied to the actor (its addresses, and the tokens and sessions of the findings), in order:
# what it did, in which mailbox, from where, with which application and token.

# %%
ACTOR_COLUMNS = ["time", "source", "operation", "mailbox", "user", "ip", "app_name", "user_agent", "token_id",
                 "mail_access_type", "items"]
display(actor.sort_values("time")[ACTOR_COLUMNS].head(200) if len(actor) else Markdown("No actor event yet."))

# %% [markdown]
# ## The actor's timeline
# Timesketch-ready rows (`datetime`, `timestamp_desc`, `message`); export the whole case with
# `ir-toolkit timeline CASE --out timeline.jsonl`.

# %%
timeline = casedata.optional("ir_toolkit.analysis.timeline")
if timeline is None:
    display(Markdown("The timeline module is not installed in this toolkit version."))
elif len(actor):
    display(timeline.build_timeline(actor, findings).head(50))
    display(timeline.sessions(actor).head(50))

# %% [markdown]
# ## Figures
# The sessions, rhythm and items per day are the report's figures: drawn once from the same counts, kept in the
# case (`ir_toolkit.report.figures`), so the report drawn before or after shows the same picture.

# %%
from IPython.display import Image

from ir_toolkit.report import figures
from ir_toolkit.report.display import png_bytes


def show(fig):
    """Display a figure as PNG (the same rendering as the report), then free it."""
    display(Image(png_bytes(fig)))


plots = casedata.optional("ir_toolkit.report.plots")
if plots is None:
    display(Markdown("Plots are not installed in this toolkit version."))
elif len(actor):
    display(Image(figures.swimlane_png(case, actor, tz)[0]))
    display(Image(figures.rhythm_png(case, casequery.hour_of_week_counts(case, tz=tz, where=window), actor, tz)[0]))
    boxes = casequery.mailbox_counts(case, set(actor["mailbox"].dropna()), window, tz)
    show(plots.mailbox_activity(boxes, tz=tz, actor=actor, freq=boxes.attrs.get("freq")))
    display(Image(figures.items_png(case, actor[actor["source"] == "mail_access"], tz)[0]))
