"""``python -m ir_toolkit`` runs the CLI."""

from ir_toolkit.cli import main

raise SystemExit(main())
