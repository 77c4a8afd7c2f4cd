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


def add_sign_in(parser: argparse.ArgumentParser) -> None:
    """The tenant, app and sign-in options every verb that talks to the tenant shares."""
    parser.add_argument("--tenant", help="tenant id or domain (default: the case's tenant)")
    parser.add_argument("--client-id", required=True, help="the app registration's client id")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--device-code", action="store_true", help="sign in as a responder (device code flow)")
    how.add_argument("--certificate", metavar="PEM_OR_PFX", help="app-only sign-in with a certificate")
    how.add_argument("--client-secret-env", metavar="VAR", help="app-only sign-in; the secret is in env var VAR")


def sign_in_mode(args: argparse.Namespace) -> str:
    """device_code, certificate or client_secret, from the options of :func:`add_sign_in`."""
    return "device_code" if args.device_code else "certificate" if args.certificate else "client_secret"


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
