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
# # 02 Triage: does this tenant show forged-token access?
#
# **Playbook step 2 of 5.** Data sources: sign-in logs, MailItemsAccessed, directory audit.
#
# The detections run as SQL over the canonical events. The two that matter most here:
#
# * **Orphan token**: a MailItemsAccessed record carries the `UniqueTokenId` of the token used.
#   A token Entra issued has a sign-in with the same `uniqueTokenIdentifier`. A token with
#   *no* sign-in, while the sign-in logs cover that time, was not issued by Entra: it was minted
#   elsewhere. This is the strongest single indicator of forgery, and it depends on coverage
#   (notebook 01).
# * **App baseline**: each user reaches their mailbox through a small set of applications
#   (learnt from the first `baseline_days` of mailbox history). Storm-0558 read mail through
#   OWA with tokens for apps the users never used that way. A new app alone is weak; with an
#   orphan token it is strong.
#
# Read every finding's explanation: it states the numbers behind it. A finding is a lead
# until the scope step (05) weighs it together with the others.

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
pack: str = "token-forgery"  # detection pack
token_files: list = []  # files holding tokens to inspect (notebook 02)

# %% [markdown]
# Setup: open the case. Everything below reads from the case folder, so the notebook can be
# rerun at any time and gives the same answer for the same evidence. Every table shows its times
# in the `tz` parameter's zone (the data stays UTC inside).

# %%
import pandas as pd
from IPython.display import Markdown, display

from ir_toolkit.report import casedata
from ir_toolkit.report.notebook import start_notebook

case, tenant = start_notebook(case_path, tenant, tz)

# %% [markdown]
# ## Run the detection pack
# Findings are written to `CASE/findings.parquet` and `findings.json`.

# %%
params = {"baseline_days": baseline_days} if baseline_days else None  # None: the pack's own defaults
findings = casedata.run_detections(case, pack=pack, params=params, engine=engine)
if mailbox:
    findings = findings[(findings["mailbox"] == mailbox.lower()) | (findings["user"] == mailbox.lower())]
if findings.empty:
    display(Markdown(f"**{casedata.NO_FINDINGS}.**"))
else:
    display(findings.groupby(["detection", "verdict"]).size().rename("findings").reset_index())

# %% [markdown]
# ## Orphan tokens: mailbox access with tokens Entra never issued

# %%
orphans = findings[findings["detection"].str.contains("orphan", case=False, na=False)]
display(orphans[["verdict", "first", "last", "mailbox", "ip", "token_id", "events", "explanation"]]
        if len(orphans) else Markdown("No orphan-token finding."))

# %% [markdown]
# ## Application baseline: mail read through apps the user does not normally use

# %%
apps = findings[findings["detection"].str.contains("app", case=False, na=False)]
display(apps[["verdict", "first", "last", "mailbox", "app_id", "events", "explanation"]]
        if len(apps) else Markdown("No application-baseline finding."))

# %% [markdown]
# ## The rest of the token-abuse family
# Storm-0558's forged OAuth tokens are one member of a family: abused applications (Midnight Blizzard,
# 2024), Entra actor tokens (CVE-2025-55241), Golden SAML and Silver SAML. Every finding names the
# member it rules in (`member`). What a member's detections can see depends on what the case holds:
# actor tokens show only as directory writes (their reads leave no record), Golden SAML needs the AD FS
# audit events of the Windows security log. The table lists, per member, its findings and the sources
# it needs that this case lacks; notebook 05 says which members are ruled in, ruled out or not judged.

# %%
from ir_toolkit.analysis.family import members

held = set(case.events.sources())
rows = []
for name, entry in members().items():
    mine = findings[findings["member"] == name] if len(findings) else findings
    needed = [s for need in entry["needs"] for s in need["sources"]]
    rows.append({"member": name, "findings": len(mine),
                 "confirmed or likely": int(mine["verdict"].isin(["confirmed", "likely"]).sum()) if len(mine) else 0,
                 "sources missing": ", ".join(s for s in needed if s not in held) or "none"})
display(pd.DataFrame(rows))
for name in ("actor-token", "app-abuse", "golden-saml", "silver-saml"):
    mine = findings[(findings["member"] == name) & findings["verdict"].isin(["confirmed", "likely"])] \
        if len(findings) else findings
    if len(mine):
        display(Markdown(f"### {name}"))
        display(mine[["verdict", "first", "last", "user", "ip", "app_id", "events", "explanation"]])

# %% [markdown]
# ## All findings, most severe first

# %%
order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "informational": 4}
display(findings.sort_values("severity", key=lambda s: s.map(order).fillna(9))
        [["detection", "severity", "verdict", "mailbox", "ip", "explanation"]] if len(findings) else
        Markdown("Nothing to list."))

# %% [markdown]
# ## Token inspection (when tokens are at hand)
# A token captured from a proxy, a browser profile or a client's log can be judged directly:
# which key signed it (`kid`), whether that key belongs to a consumer (MSA) or enterprise
# issuer, and whether its claims fit each other. The token itself is never printed.

# %%
tokens = casedata.optional("ir_toolkit.tokens")
if not token_files:
    display(Markdown("No token files given (`token_files` is empty)."))
elif tokens is None:
    display(Markdown("Token inspection is not installed in this toolkit version."))
else:
    from ir_toolkit.tokens.casework import record_in_case

    results = tokens.scan_files(token_files)
    display(tokens.results_frame(results) if results else Markdown("No token found in the given files."))
    if results:
        display(pd.Series(record_in_case(case, results, token_files), name="recorded in the case").to_frame())
