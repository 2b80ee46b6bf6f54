"""The ``camsight`` command."""
