"""Collect a live tenant through Microsoft Graph with MSAL (issue 5).

Modules: endpoints (cloud map), auth (MSAL flows, encrypted or memory token cache), client (paging,
throttling, pacing), sources (the registry), slicing (time windows), checkpoint (atomic state),
audit (Purview audit log queries) and collector (the resumable, time-sliced run). Nothing here
imports the case layer.
"""
