"""The ``nodes:`` section: several ``camsight run --node NAME`` processes sharing one database.

Each camera names the node that analyses and records it (``node:`` in its block, else
``nodes.default``); see docs/scaling.md. Every node heartbeats into the shared database, and one not
seen for ``down_after_seconds`` shows as down everywhere.

>>> NodesConfig().down_after_seconds
6.0
>>> check_node_name("gate-1")
'gate-1'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from camsight.config.base import StrictModel

#: Environment variable holding the secret the nodes share (``nodes.secret_file`` is the other way).
NODE_SECRET_ENV = "CAMSIGHT_NODE_SECRET"
#: A node name: short, and safe in a URL path, a file name and a log line.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Shortest secret accepted: an HMAC key guessable by brute force protects nothing.
MIN_SECRET_CHARS = 16


def check_node_name(name: str) -> str:
    """``name`` when it is a valid node name, else ValueError with what is allowed."""
    if not _NAME.match(name):
        raise ValueError(
            f"{name!r} is not a node name (letters, digits, '.', '_' and '-', at most 64, "
            "starting with a letter or digit)"
        )
    return name


NodeName = Annotated[str, AfterValidator(check_node_name)]


class NodesConfig(StrictModel):
    """Several camsight nodes on one shared database (PostgreSQL): heartbeats and the secret the
    nodes sign their requests to each other with (footage is fetched from the node that holds it)."""

    heartbeat_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0
    """How often a node writes its heartbeat into the database."""
    down_after_seconds: Annotated[float, Field(gt=0, le=3600)] = 6.0
    """A node not seen for this long shows as down (the default shows a killed node down within
    10 s: at most 6 s of silence plus the 2 s between heartbeats of a node that was just seen)."""
    secret_file: Path | None = None
    """File holding the secret every node shares (at least 16 characters; used as an HMAC key to
    sign requests between nodes, never sent). ``CAMSIGHT_NODE_SECRET`` takes precedence."""
    fetch_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 60.0
    """How long a node waits for another node's footage (a clip is made there first)."""
    default: NodeName | None = None
    """The node that runs the cameras without a ``node:`` of their own. Unset: such a camera runs
    on no node, only on a process started without ``--node`` (nodes and ``camsight doctor`` warn,
    naming it, and the cameras list shows it ``not-assigned``)."""

    @model_validator(mode="after")
    def _timing(self) -> NodesConfig:
        if self.down_after_seconds <= self.heartbeat_seconds:
            raise ValueError(
                "down_after_seconds must be longer than heartbeat_seconds, else a running node "
                "would flicker down between its heartbeats"
            )
        return self


def unassigned_warning(cameras: list[str]) -> str:
    """The one line said about cameras that no node runs (see ``Config.unassigned_cameras``).

    >>> unassigned_warning(["yard", "gate"]).split(":")[0]
    "no node runs cameras 'yard', 'gate'"
    """
    named = ", ".join(repr(c) for c in cameras)
    if len(cameras) == 1:
        return (
            f"no node runs camera {named}: it has no `node:` and nodes.default is unset "
            "(give it a `node:`, or set nodes.default)"
        )
    return (
        f"no node runs cameras {named}: they have no `node:` and nodes.default is unset "
        "(give each a `node:`, or set nodes.default)"
    )


def load_node_secret(config: NodesConfig, environ: dict[str, str] | None = None) -> str:
    """The secret the nodes share: ``CAMSIGHT_NODE_SECRET``, else ``nodes.secret_file``.

    A missing or short secret is a :class:`~camsight.errors.ConfigError` naming both ways to
    give one, so a node refuses to start rather than serve or fetch footage unauthenticated.
    """
    import os

    from camsight.errors import ConfigError

    env = os.environ if environ is None else environ
    secret = env.get(NODE_SECRET_ENV, "").strip()
    where = NODE_SECRET_ENV
    if not secret and config.secret_file is not None:
        where = str(config.secret_file)
        try:
            secret = config.secret_file.expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"nodes.secret_file: cannot read {config.secret_file}: {exc.strerror}"
            ) from None
    if not secret:
        raise ConfigError(
            f"a node needs the secret the nodes share: set {NODE_SECRET_ENV} or nodes.secret_file "
            "(the same value on every node, e.g. from `openssl rand -hex 32`)"
        )
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(f"the node secret in {where} is too short (at least {MIN_SECRET_CHARS} characters)")
    return secret
