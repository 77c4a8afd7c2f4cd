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
# # 01 Set up the case: what evidence do we hold, and what is missing?
#
# **Playbook step 1 of 5.** Data sources: Entra sign-in logs (interactive and non-interactive),
# the Entra directory audit log, and the unified audit log with **MailItemsAccessed**.
#
# A token-forgery breach (Storm-0558, 2023) leaves a particular shape in the logs: the actor signs
# its own access tokens with a stolen key, so Exchange Online records mailbox access made with a
# token **that Entra never issued**. Proving that needs two things side by side: the record of
# every token Entra issued (sign-in logs) and the record of every mailbox access with the token
# that was used (MailItemsAccessed). Before looking for the actor, we establish what we can and
# cannot see. An absence of evidence only means something where the logs were complete.
#
# Two ways to fill a case:
# * **Collect live** through Microsoft Graph (`ir-toolkit collect CASE --tenant ... --device-code
#   --since ... --until ...`). Every source and time slice is recorded in a **ledger** with its
#   page and record counts, so a gap (throttling, a failed page) shows up instead of hiding.
# * **Import files** the client handed over (Purview audit exports, sign-in log downloads, Graph JSON):
#   set `import_paths` below or run `ir-toolkit import CASE FILE...`. Each file is hashed before
#   it is parsed; unreadable records are quarantined with their reason, never dropped.

# %% tags=["parameters"]
case_path: str = "../demo-case"  # the case folder (created with `ir-toolkit case init`)
tenant: str = ""  # tenant domain or id; empty: the case tenant
window_start: str = ""  # ISO start of the investigation window; empty: all data
window_end: str = ""  # ISO end of the investigation window; empty: all data
tz: str = "UTC"  # display time zone for tables and figures (data stays UTC)
baseline_days: int = 0  # days of mailbox history that define the usual apps; 0: the detection pack default
redact: bool = False  # pseudonymise UPNs, names and internal addresses in the report
engine: str = "duckdb"  # engine for heavy scans: duckdb (one machine) or spark (data lake)
import_paths: list = []  # files to import into the case (notebook 01)
progress: bool = True  # progress bars (off under papermill)

# %% [markdown]
# Setup: open the case. Everything below reads from the case folder, so the notebook can be
# rerun at any time and gives the same answer for the same evidence. Every table shows its times
# in the `tz` parameter's zone (the data stays UTC inside).

# %%
import pandas as pd
from IPython.display import Markdown, display

from ir_toolkit.report import casedata
from ir_toolkit.report.notebook import check_paths, start_notebook

case, tenant = start_notebook(case_path, tenant, tz)

# %% [markdown]
# ## Import the files given as parameters
# Files are copied into `CASE/raw/`, hashed (sha256) and recorded in `case.json` before parsing.
# Importing the same file twice adds nothing: the hash and the record ids de-duplicate.

# %%
if import_paths:
    check_paths(import_paths)  # a missing path stops here with one line, before anything is imported
    if hasattr(case, "import_files"):
        results = case.import_files(import_paths, progress=progress)
        display(pd.DataFrame(results))
    else:
        for path in import_paths:
            case.add_evidence(path, source="import")
        display(Markdown("The importer is not installed: the files were hashed as evidence only."))
else:
    display(Markdown("No files to import in this run (`import_paths` is empty)."))

# %% [markdown]
# ## The evidence files and their record counts
# `records == imported + duplicates + quarantined` for every file: nothing disappears silently.

# %%
display(casedata.imports(case))
display(pd.Series(case.summary(), name="case").to_frame())

# %% [markdown]
# ## The evidence profile: what each source holds, its holes, and what the case cannot prove
# Every verdict later in the playbook reads this. A **hole** is a period inside a source where records
# are missing: the source's own hour-of-week rhythm collapses (`rhythm`), two evidence files leave a
# stretch between them the rhythm expected events in (`file_split`), the collection ledger marks a slice
# incomplete (`ledger`), or the mailbox log shows everyday tokens that no sign-in issued (`mailbox_tokens`).
# A token issued inside a sign-in hole is *unverifiable*, never forged; a mailbox is *confirmed* only
# where the sign-in sources that could have issued its token are held and gap-free. Ask the client for
# what is absent or holed before drawing conclusions. The same profile: `ir-toolkit evidence CASE`.

# %%
from ir_toolkit.report import evidence as holdings

profile = holdings.case_profile(case)
if profile is None:
    display(Markdown("The evidence profile is not available in this toolkit version."))
else:
    sources, holes = holdings.profile_frames(profile, tz)
    display(sources)
    display(holes if len(holes) else Markdown("No hole was found inside any source."))
    display(Markdown("**This case cannot prove:**\n\n" + "\n".join(f"* {s}" for s in profile["cannot_prove"])
                     if profile["cannot_prove"] else "Every expected source is held and no hole was found."))

# %% [markdown]
# ## The collection ledger (live collections)
# One row per source and time slice. `complete = False` or a `gap` means the tenant returned
# less than was asked for: conclusions about that slice are weaker, and the report says so.

# %%
ledger = casedata.ledger(case)
display(ledger if len(ledger) else Markdown("No live collection: the case was filled from files."))

# %% [markdown]
# ## Coverage: events per source, first and last
# Sign-in logs in Entra are kept 30 days by default, the unified audit log 180 days (90 before
# late 2023). If sign-in logs start after the mailbox access began, a token used early cannot be
# matched to its sign-in, and "no sign-in found" stops being evidence of forgery.

# %%
display(casedata.coverage(case))

# %% [markdown]
# ## What the data cannot show

# %%
for note in casedata.gaps(case, window_start or None):
    display(Markdown(f"* {note}"))
