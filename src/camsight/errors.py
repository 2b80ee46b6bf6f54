"""Errors a user can act on.

Every failure that a user can cause (a bad file, a missing model, a typo in
config) is raised as a :class:`CamsightError` subclass whose message is one
line that names the problem and, where there is one, the fix. The CLI prints
that line and exits non-zero; it never shows a traceback for these.
"""


class CamsightError(Exception):
    """Base class for errors whose message is meant for the user."""

    exit_code = 2


class SourceError(CamsightError):
    """A video source cannot be opened or decoded."""


class ModelError(CamsightError):
    """A model file is missing or unusable."""


class ConfigError(CamsightError):
    """The configuration is malformed."""


class StoreError(CamsightError):
    """The data directory or database cannot be used."""


class NotFoundError(CamsightError):
    """Something the user named (a camera, a track) does not exist."""
