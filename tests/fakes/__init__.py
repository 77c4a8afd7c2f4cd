"""Loopback test doubles (real HTTP servers) shared by tests/ and bench/."""
