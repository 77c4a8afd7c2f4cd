"""The case folder: manifest, evidence hashes, custody log, event store."""

from ir_toolkit.case.case import Case
from ir_toolkit.case.store import EventStore

__all__ = ["Case", "EventStore"]
