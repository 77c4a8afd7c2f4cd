"""Token forensics: JWT parsing, signing-key catalogue, verdicts."""
