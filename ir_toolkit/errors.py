"""The toolkit's exception tree.

* IrToolkitError
  x UserError            - bad input from the user: one clear line, exit code 2
    + CaseError          - CASE path is not a usable case folder
    + InputFormatError   - an evidence file cannot be read or its format is unknown
    + NotImplementedYet  - a CLI verb whose issue is not done yet
  x EvidenceChanged      - verify found modified, missing or unexpected evidence (exit 1)
"""

from __future__ import annotations


class IrToolkitError(Exception):
    """Base of every error the toolkit raises on purpose."""


class UserError(IrToolkitError):
    """A problem with what the user gave us; the CLI prints it as one line and exits 2."""

    exit_code = 2

    def _render_traceback_(self) -> list[str]:
        """How IPython shows it in a notebook: its one line, no traceback."""
        return [f"{self.__class__.__name__}: {self}"]


class CaseError(UserError):
    """The case folder is missing, not a case, corrupt, or not writable."""


class InputFormatError(UserError):
    """An input file is unreadable, empty, or of no known format."""


class NotImplementedYet(UserError):
    """A verb of the CLI contract whose capability has not landed yet."""


class EvidenceChanged(IrToolkitError):
    """Evidence files differ from what case.json recorded."""

    exit_code = 1
