"""Pieces every verb shares: the one-line-error parser and the --json/text output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from ir_toolkit.textsafe import scrub_text


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def emit(args: argparse.Namespace, document: Any, text: str, scrub: bool = True) -> None:
    """Print ``document`` as JSON with --json, else the human ``text``.

    Token-shaped strings are scrubbed unless ``scrub`` is False (only where the responder asked to
    see a token, ``token inspect --show-token``).
    """
    clean = scrub_text if scrub else str
    if getattr(args, "json", False):
        sys.stdout.write(clean(json.dumps(document, indent=2, default=str)) + "\n")
    else:
        sys.stdout.write(clean(text.rstrip("\n")) + "\n")
