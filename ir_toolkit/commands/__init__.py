"""The larger verbs of ``ir-toolkit``, one module each; ``ir_toolkit.cli`` assembles the parser."""
