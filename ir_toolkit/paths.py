"""Where the toolkit's shipped data lives (reference data, the sample tenant, playbooks)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent


def data_dir() -> Path:
    """The ``data/`` folder: ``$IR_TOOLKIT_DATA`` if set, else the project's own."""
    return Path(os.environ.get("IR_TOOLKIT_DATA", PROJECT_DIR / "data"))


def reference_file(name: str) -> Path:
    """A file of ``data/reference/`` (see data/SOURCES.md for each file's origin)."""
    return data_dir() / "reference" / name


def sample_tenant_dir() -> Path:
    """The committed sample tenant (``data/sample-tenant``)."""
    return data_dir() / "sample-tenant"


def playbooks_dir() -> Path:
    """The shipped playbook templates."""
    return PROJECT_DIR / "playbooks"


def notebooks_dir() -> Path:
    """The shipped notebooks."""
    return PROJECT_DIR / "notebooks"
