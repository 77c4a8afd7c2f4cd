"""After a crash: event parts that no custody line records are removed before the next write.

An events part is renamed into place and then recorded, both under the custody lock; a process
killed between the two leaves a part the chain cannot vouch for (``verify`` calls it
``unrecorded``). Its events are written again from the evidence by the import that follows (an
evidence entry is marked imported only after every batch is recorded), so the part is removed,
and the removal logged, before the store is written again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ir_toolkit.case.custody import CustodyWriter
from ir_toolkit.case.verify import interrupted_parts

log = logging.getLogger(__name__)


def remove_interrupted_parts(root: Path, writer: CustodyWriter) -> list[str]:
    """Remove the unrecorded event parts of the case at ``root`` (the caller holds ``writer``, the lock).

    Returns:
        The removed case-relative paths (logged as one ``events.recover`` custody line).
    """
    orphans = interrupted_parts(root)
    for rel in orphans:
        (root / rel).unlink(missing_ok=True)
    if orphans:
        log.warning("removed %d event part(s) an interrupted step left unrecorded: %s", len(orphans),
                    ", ".join(orphans))
        writer.append("events.recover", removed=orphans,
                      reason="written by an interrupted step and never recorded; written again from the evidence")
    return orphans
