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
# # 05 Scope and report
#
# **Playbook step 5 of 5.** Data sources: everything above.
#
# Scoping turns findings into a statement a client can act on: **which mailboxes** (confirmed,
# likely, possible, each with its reasons), **which messages** (distinct InternetMessageIds the
# actor's MailItemsAccessed *Bind* records name), **which infrastructure** and **from when to
# when**. "Confirmed" needs direct evidence (an orphan token on that mailbox); "likely" needs
# several independent indicators. Mailboxes seen only through weak signals stay out of the
# statement but remain in the findings.

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
findings = casedata.load_findings(case)
scope = casedata.run_scope(case, engine=engine)  # scopes CASE/findings.parquet (or detects first)
if not scope:
    display(Markdown("**The breach has not been scoped**: scoping is not installed, or there are no findings yet."))
    scope = {}

# %% [markdown]
# ## The scope statement

# %%
window = scope.get("window") or {}
boxes = pd.DataFrame(scope.get("compromised_mailboxes", []))
if mailbox and len(boxes):
    boxes = boxes[boxes["upn"] == mailbox.lower()]
display(Markdown(
    f"* Malicious activity from **{window.get('first_malicious') or 'unknown'}** "
    f"to **{window.get('last_malicious') or 'unknown'}**\n"
    f"* **{len(boxes)}** compromised mailbox(es); "
    f"{len(scope.get('actor_ips', []))} actor address(es); {len(scope.get('actor_apps', []))} actor app(s)"))
display(boxes if len(boxes) else Markdown("No compromised mailbox concluded."))
display(pd.DataFrame(scope.get("actor_ips", [])))

# %% [markdown]
# ## The token-abuse family: ruled in, ruled out, or not judged
# A member is **ruled in** by a confirmed or likely finding of its detections, **ruled out** only when
# every source it needs is held without holes and none of its detections left any result, and **not
# judged** otherwise: the reason says which evidence is missing. Actor tokens (and Silver SAML) can never
# be ruled out from these logs: their reads leave no record. `members` on each mailbox and address says
# which member carries that conclusion.

# %%
family = pd.DataFrame(scope.get("family", []))
if len(family):
    from ir_toolkit.analysis.family import family_sentence

    display(Markdown(family_sentence(scope["family"])))
    display(family[["member", "status", "reason", "missing"]])
else:
    display(Markdown("The family was not judged (no scope)."))

# %% [markdown]
# ## Messages accessed per mailbox
# Bind records name each message opened; Sync records (a folder synchronised) do not, so a
# mailbox synced by the actor may have lost more than is listed here. Throttled Bind logging
# (more than 1,000 records in 24 hours) also hides items: check the `throttled` column.

# %%
upns = boxes["upn"].tolist() if len(boxes) else []
actor = casequery.actor_events(case, findings, scope, window_start, window_end, mailbox,
                                columns=casequery.WITHOUT_RAW)  # filtered in DuckDB
messages = casedata.messages_accessed(actor, upns)
display(messages.groupby("mailbox").size().rename("messages").to_frame() if len(messages) else
        Markdown("No message list (no actor Bind records)."))
display(messages.head(200))

# %% [markdown]
# ## Recommended next steps
# 1. **Revoke sessions and refresh tokens** of every compromised mailbox owner
#    (`Revoke-MgUserSignInSession`), and block the actor's addresses at the edge.
# 2. **Rotate credentials and keys**: the users' passwords and any application secret or
#    certificate the actor could have reached; for a forged token, the signing key must be
#    revoked by its owner (Microsoft, for the 2023 case) and your own apps must validate issuers.
# 3. **Preserve the logs before retention ends**: export the sign-in logs (30 days by default)
#    and the unified audit log (180 days) now; the table below shows when the first malicious
#    activity ages out.
# 4. **Notify** the owners of the mailboxes and messages listed above, per your obligations.

# %%
display(casedata.retention_deadlines(window.get("first_malicious")))

# %% [markdown]
# ## The report
# One self-contained HTML file: no code, no external requests, figures embedded. With
# `redact = True` people, the tenant and every address but the actor's are pseudonymised for sharing
# outside the organisation (docs/redaction.md). With `mailbox` set, the report is about that mailbox
# only (the rest of the tenant as counts) and keeps its address readable: it is the subject.

# %%
from ir_toolkit.report.html import render_report

report = render_report(case, redact=redact, tz=tz, mailbox=mailbox)
display(Markdown(f"Report written: `{report}`"))
