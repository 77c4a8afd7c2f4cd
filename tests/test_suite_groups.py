"""The suite's own distribution on several cores (``make test``: ``-n auto --dist loadgroup``) really groups.

tests/conftest.py gives every test a group (its module, a tenant, or one Spark comparison) so that a module's
fixtures are built once, on one worker. pytest-xdist applies a group by appending ``@GROUP`` to the test's id; a
pytest that keeps the id elsewhere (9.2 with xdist 3.8) loses it silently and every module's fixtures are built
on every worker (the suite took twice as long). On a plain run there is nothing to check.
"""

from __future__ import annotations

import os

import pytest


@pytest.mark.parametrize("n", [1, 2])
def test_this_module_is_one_group_on_an_xdist_worker(request: pytest.FixtureRequest, n: int) -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ or not getattr(request.config.option, "loadgroup", False):
        assert not request.node.nodeid.endswith("@test_suite_groups.py")
        return
    assert request.node.nodeid.endswith(f"[{n}]@test_suite_groups.py"), request.node.nodeid
