"""Importers (files) and collectors (Graph via MSAL) that turn logs into canonical events."""
