"""Collect where the logs are: a Log Analytics (Sentinel) workspace and Defender XDR advanced hunting (issue 18).

Modules: sources (the two registries: tables, time columns, limits, permissions), rows (pure: API
answers to row objects, limit signals) and runner (one slice = one KQL query, run through the
Graph collector's client, slicing, checkpoint and ledger). Nothing here imports the case layer.
"""
