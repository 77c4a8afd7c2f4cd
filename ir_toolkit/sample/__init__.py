"""The sample tenant: a generated Microsoft 365 tenant with a forged-token intrusion and its answer key.

``make_sample(DIR)`` (CLI ``ir-toolkit sample make DIR``) writes the raw logs in Microsoft's formats
and ``answer_key.json``. Modules: story (the plan), activity / tenant / actor (one day's events),
signins / ual / directory (record shapes), writers (Graph pages, Purview CSV), answer (the key).
"""

from ir_toolkit.sample.make import make_sample

__all__ = ["make_sample"]
