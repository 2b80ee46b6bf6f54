"""Per-track appearance attributes computed at index time."""
