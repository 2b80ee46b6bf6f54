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


#: Longest reason kept in a camera's health or a job (a full message stays in the log).
MAX_REASON = 500


def failure_reason(exc: BaseException) -> str:
    """One line saying why something failed, for a camera's health, a job and the first line of a log.

    A :class:`CamsightError` says it in its own words (the problem and its
    fix). Anything else is a bug or a broken install: its type is named so the
    line can be looked up and reported, e.g. ``internal error: AttributeError:
    module 'cv2.dnn' has no attribute 'readNetFromTensorflow'``.

    >>> failure_reason(ModelError("no YOLOX model found: run `camsight models pull yolox-nano`"))
    'no YOLOX model found: run `camsight models pull yolox-nano`'
    >>> failure_reason(KeyError("frames"))
    "internal error: KeyError: 'frames'"
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if isinstance(exc, CamsightError):
        text = first or type(exc).__name__
    else:
        text = f"internal error: {type(exc).__name__}" + (f": {first}" if first else "")
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"
