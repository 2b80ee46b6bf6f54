"""Which database holds the store: the embedded SQLite file (default) or a PostgreSQL server.

The config names the server (``store.url``) but never its password: the file can be
read and edited over the API, so the password comes from an environment variable
(``store.password_env``), or the whole URL from ``CAMSIGHT_DATABASE_URL``, which
wins over the file (one setting for every command and process on a node).

>>> normalise_url("postgresql://cam@db.example:5432/camsight")
'postgresql+psycopg://cam@db.example:5432/camsight'
>>> redact_url("postgresql+psycopg://cam:hunter2@db/camsight")
'postgresql+psycopg://cam:***@db/camsight'
"""

from __future__ import annotations

import os
import re

from pydantic import field_validator

from camsight.config.base import StrictModel
from camsight.config.secrets import SecretEnv

#: The environment variable holding the whole database URL; it wins over ``store.url``.
DATABASE_ENV = "CAMSIGHT_DATABASE_URL"

# The schemes camsight speaks, and the SQLAlchemy driver each one means: libpq URLs
# (``postgresql://``, ``postgres://``) get psycopg 3, the driver camsight ships.
_SCHEMES = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "sqlite": "sqlite",
}


# scheme://user:password@ — greedy to the last "@", so nothing of the password is left over.
_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):.*@")


class StoreConfig(StrictModel):
    """The database of tracks, events, accounts and audit (media stays in the data folder)."""

    url: str | None = None
    """Database URL, e.g. ``postgresql://camsight@db.example:5432/camsight`` (psycopg 3); default:
    the SQLite file ``camsight.db`` in the data folder. No password here: name its variable in
    ``password_env``, or set the whole URL in ``CAMSIGHT_DATABASE_URL`` (which wins)."""
    password_env: SecretEnv | None = None
    """Name of the environment variable holding the database password (it must start with
    ``CAMSIGHT_SECRET_``)."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = normalise_url(value)  # ValueError with the reason for a malformed one
        from sqlalchemy.engine import make_url

        if make_url(url).password is not None:
            raise ValueError(
                "do not write the database password in the config: name the environment variable "
                "holding it in store.password_env, or set CAMSIGHT_DATABASE_URL"
            )
        return value


def normalise_url(url: str) -> str:
    """``url`` as a SQLAlchemy URL with camsight's driver; ValueError saying why it cannot be used."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in _SCHEMES:
        known = "postgresql://USER@HOST:PORT/DATABASE or sqlite:///PATH"
        shown = redact_url(url)
        raise ValueError(f"{shown!r} is not a database URL camsight can use (use {known})")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"{redact_url(url)!r} is not a valid database URL") from None
    parsed = parsed.set(drivername=_SCHEMES[scheme])
    if parsed.drivername != "sqlite" and not parsed.database:
        raise ValueError(f"{redact_url(url)!r} names no database (add /DATABASE at the end)")
    return parsed.render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs).

    Up to the last ``@``: a password typed raw may itself hold ``/`` or ``@``.

    >>> redact_url("postgresql://cam:pa/ss@w@db:5432/camsight")
    'postgresql://cam:***@db:5432/camsight'
    """
    return _CREDENTIALS.sub(r"\1:***@", url, count=1)


def database_url(store: StoreConfig | None = None) -> str | None:
    """The database URL to use (driver normalised), or None for the SQLite file in the data folder.

    ``CAMSIGHT_DATABASE_URL`` wins over ``store.url``; ``store.password_env`` adds the password.
    ValueError (one sentence, no password) when the URL cannot be used or the password is missing.
    """
    from_env = os.environ.get(DATABASE_ENV, "").strip()
    if from_env:
        try:
            return normalise_url(from_env)
        except ValueError as exc:
            raise ValueError(f"{DATABASE_ENV}: {exc}") from None
    if store is None or store.url is None:
        return None
    url = normalise_url(store.url)
    if store.password_env:
        password = os.environ.get(store.password_env)
        if not password:
            raise ValueError(
                f"store.password_env names {store.password_env}, which is not set in the environment"
            )
        from sqlalchemy.engine import make_url

        url = make_url(url).set(password=password).render_as_string(hide_password=False)
    return url
