"""The HTML report, plots and redaction."""
