"""Stable identities across frames and per-track records."""
