"""`python -m bench sample`: the sample tenant at 10 million events (see bench/sample_scale.py)."""

from __future__ import annotations

from bench.sample_scale import main

__all__ = ["main"]
