"""Search footage by description."""
