"""Which environment variables a config may name as a secret (``password_env``, ``secret_env``).

The config can be edited over the API (``PATCH /cameras/NAME``), and camsight
sends a camera's password to whatever URL the camera has and signs webhooks
with their secret. If any variable could be named, an API token could have
``CAMSIGHT_ADMIN_PASSWORD`` (or a cloud key) sent to a listener of its own.
So only variables whose names start with :data:`SECRET_ENV_PREFIX` may be
named: they are set aside for camera and notifier secrets and hold nothing
else of the server's.

>>> check_secret_env("CAMSIGHT_SECRET_GATE")
'CAMSIGHT_SECRET_GATE'
>>> check_secret_env("CAMSIGHT_ADMIN_PASSWORD")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: 'CAMSIGHT_ADMIN_PASSWORD' may not be named here: only environment variables starting ...
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

#: The prefix of every environment variable a config may name as a secret.
SECRET_ENV_PREFIX = "CAMSIGHT_SECRET_"
_NAME = re.compile(r"^[A-Z0-9_]{1,128}$")


def check_secret_env(name: str) -> str:
    """``name`` if it is a secrets variable (``CAMSIGHT_SECRET_...``), else ValueError saying what to use."""
    suggestion = SECRET_ENV_PREFIX + re.sub(r"[^A-Z0-9_]", "_", name.upper()).removeprefix("CAMSIGHT_")[:64]
    if not name.startswith(SECRET_ENV_PREFIX) or len(name) == len(SECRET_ENV_PREFIX):
        raise ValueError(
            f"{name!r} may not be named here: only environment variables starting with "
            f"{SECRET_ENV_PREFIX} hold camera and notifier secrets (e.g. {suggestion})"
        )
    if not _NAME.match(name):
        raise ValueError(
            f"{name!r} is not an environment variable name: use capital letters, digits and '_' "
            f"(e.g. {suggestion})"
        )
    return name


#: A config field naming the environment variable that holds a secret.
SecretEnv = Annotated[str, AfterValidator(check_secret_env)]
