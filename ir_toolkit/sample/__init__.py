"""The sample tenant: a generated Microsoft 365 tenant with a forged-token intrusion and its answer key."""
