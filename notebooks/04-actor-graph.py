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
# # 04 Actor graph: from the first indicator to the whole infrastructure
#
# **Playbook step 4 of 5.** Data sources: every event source in the case.
#
# One indicator (an address, a token id) rarely tells the whole story. The actor graph links
# addresses, tokens, sessions, user agents, applications and mailboxes that appeared together
# in one event. Starting from the first indicator and expanding a couple of hops finds the rest
# of the infrastructure: other addresses that used the same tokens, other mailboxes the same
# addresses read. Check each new node before trusting it: a shared proxy or a popular app links
# unrelated activity, which is why expansion is limited in hops and can be filtered.

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
seed: str = ""  # where to start: an address, token id, mailbox UPN or node id; empty: the strongest finding's
hops: int = 2  # how many edges away from the seed to expand
exclude: list = []  # nodes never entered (values or node ids): shared proxies, the tenant's own gateways

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
from IPython.display import Image

from ir_toolkit.report.display import png_bytes


def show(fig):
    """Display a figure as PNG (the same rendering as the report), then free it."""
    display(Image(png_bytes(fig)))


findings = casedata.load_findings(case)
scope = casedata.load_scope(case)
actor = casequery.actor_events(case, findings, scope, window_start, window_end, mailbox,
                                columns=casequery.WITHOUT_RAW)
# Start from `seed`, else from the strongest lead: confirmed before likely before possible, earliest first.
rank = findings["verdict"].map({"confirmed": 0, "likely": 1, "possible": 2}).fillna(9)
first = findings[rank < 9].assign(_rank=rank).sort_values(["_rank", "first"]).head(1)
seeds = [seed] if seed else [v for v in first[["ip", "token_id", "session_id"]].stack().tolist() if v] \
    if len(first) else []
display(Markdown(f"Seed(s): {', '.join(f'`{s}`' for s in seeds) or 'none yet'}; {hops} hop(s); "
                 f"excluded: {', '.join(f'`{x}`' for x in exclude) or 'nothing'}."))

# %% [markdown]
# ## Build the graph and expand from the first indicator

# %%
graph_mod = casedata.optional("ir_toolkit.analysis.graph")
if graph_mod is None:
    display(Markdown("The actor graph is not installed in this toolkit version."))
elif not seeds:
    display(Markdown(f"**{casedata.NO_FINDINGS}**: there is no indicator to start from."))
else:
    # The graph holds the actor's events, the events of the mailboxes it reached and every event naming a seed
    # (read filtered from the case, never the whole tenant): to pivot beyond, set `seed` to a node found here.
    reached = [f"mailbox:{m}" for m in actor["mailbox"].dropna().unique()]
    near = casequery.near_seeds(case, [*seeds, *reached], window_start, window_end, mailbox,
                                columns=casequery.WITHOUT_RAW)
    events = pd.concat([actor, near], ignore_index=True).drop_duplicates("record_id") if len(near) else actor
    graph = graph_mod.build_graph(casequery.with_token_raw(case, events), findings)  # raw: token keys only
    start = graph_mod.resolve(graph, seeds)
    skip = graph_mod.resolve(graph, exclude) if exclude else []
    reach = graph_mod.expand(graph, start, hops=hops, filters={"exclude": skip} if skip else None)
    nodes = pd.DataFrame([{"node": str(n), **{k: v for k, v in d.items() if not isinstance(v, dict | list)}}
                          for n, d in reach.nodes(data=True)])
    display(Markdown(f"From {len(start)} seed node(s), {reach.number_of_nodes()} nodes within {hops} hop(s)"
                     + (f", {len(skip)} node(s) excluded." if skip else ".")))
    kind = next((c for c in ("kind", "type") if c in nodes.columns), None)
    display(nodes.groupby(kind).size().rename("nodes").to_frame() if kind else nodes.head(100))

# %% [markdown]
# ## What else the actor touched
# Groups of infrastructure that never share a node are separate clusters: either separate
# actors, or the same actor keeping its tools apart. Compare their time ranges and apps.

# %%
if graph_mod is not None and seeds:
    groups = graph_mod.actor_groups(graph)
    display(pd.DataFrame(groups) if not isinstance(groups, pd.DataFrame) else groups)
    plots = casedata.optional("ir_toolkit.report.plots")
    if plots is not None:
        show(plots.draw_graph(reach))
