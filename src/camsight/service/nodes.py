"""This process as one node of several: its heartbeat, and fetching footage from the node that holds it.

:class:`NodeContext` is what the API needs to know: this node's name, the
shared secret and the ``nodes:`` settings. :class:`Heartbeat` registers the node
and keeps its ``last_seen`` fresh from a thread. :func:`fetch` asks another node
for media over HTTP, signed with the shared secret (camsight.auth.node_auth);
a node that is down or does not answer is a :class:`NodeUnavailable`, which the
API turns into a 503 naming the node.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from camsight import __version__
from camsight.auth.node_auth import sign
from camsight.config.nodes import NodesConfig, load_node_secret
from camsight.errors import CamsightError
from camsight.store.db import Store
from camsight.store.nodes import NodeState, heartbeat, mark_stopped, node_states, register_node

log = logging.getLogger(__name__)

#: Path prefix of the routes only other nodes may call (signed requests; see api/routes/nodes.py).
NODE_PREFIX = "/api/v1/node"


class NodeUnavailable(CamsightError):
    """The node holding some footage is down, unknown or did not answer."""


@dataclass
class NodeContext:
    """What a process needs to work beside other nodes: its name (None: not a node), secret, settings."""

    name: str | None
    settings: NodesConfig
    #: The shared secret; None when this process has none (it can then neither serve nor fetch).
    secret: str | None
    #: Base URL the other nodes reach this one at.
    url: str | None = None
    #: This run of the process, to tell it from another started under the same name.
    instance: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def for_process(cls, name: str | None, settings: NodesConfig, url: str | None = None) -> NodeContext:
        """A node's context (the secret is required: a clear ConfigError without it), or a single
        process's (a secret if one is set, so it can still show footage other nodes hold)."""
        if name is not None:
            return cls(name, settings, load_node_secret(settings), url)
        try:
            secret: str | None = load_node_secret(settings)
        except CamsightError:
            secret = None
        return cls(None, settings, secret, url)

    def states(self, store: Store) -> list[NodeState]:
        """Every node on the shared database, judged by ``nodes.down_after_seconds``."""
        return node_states(store, self.settings.down_after_seconds)

    def state_of(self, store: Store, name: str) -> NodeState | None:
        return next((n for n in self.states(store) if n.name == name), None)


class Heartbeat:
    """Registers the node, then writes its heartbeat every ``heartbeat_seconds`` until stopped.

    ``cameras`` says which cameras the node runs now; when that changes (a config edit),
    the node registers again, so the other nodes know where each camera's footage goes.
    """

    def __init__(self, store: Store, context: NodeContext, cameras: Callable[[], list[str]]) -> None:
        assert context.name is not None and context.url is not None
        self.store = store
        self.context = context
        self.cameras = cameras
        self._registered: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="node-heartbeat", daemon=True)

    def register(self) -> None:
        """Record this node and its cameras; NodeConflict when the name is taken by a running node."""
        name, url = self.context.name, self.context.url
        assert name is not None and url is not None
        cameras = sorted(self.cameras())
        register_node(
            self.store,
            name,
            url=url,
            host=socket.gethostname(),
            version=__version__,
            instance=self.context.instance,
            cameras=cameras,
            down_after=self.context.settings.down_after_seconds,
        )
        self._registered = cameras

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        name = self.context.name
        assert name is not None
        failing = False
        while not self._stop.wait(self.context.settings.heartbeat_seconds):
            try:
                if not heartbeat(self.store, name, self.context.instance):
                    log.error("node %s: another process has taken this node name over", name)
                elif sorted(self.cameras()) != self._registered:
                    self.register()  # the config changed which cameras run here
                failing = False
            except Exception as exc:  # the database is away for a moment: keep trying, say it once
                if not failing:
                    log.warning("node %s: cannot write the heartbeat: %s", name, exc)
                failing = True

    def stop(self) -> None:
        """Stop beating and mark the node stopped (it shows as stopped at once, not after a timeout)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        name = self.context.name
        assert name is not None
        try:
            mark_stopped(self.store, name, self.context.instance)
        except Exception as exc:  # shutting down with the database away: it times out as down instead
            log.warning("node %s: cannot record the stop: %s", name, exc)


@contextmanager
def fetch(store: Store, context: NodeContext, node: str, path: str, *, what: str) -> Iterator[httpx.Response]:
    """A streamed response of ``path`` (with its query) from ``node``, signed; raises NodeUnavailable.

    ``what`` names the footage in messages ("track 12's clip"). Answers of the
    other node other than 2xx are handed back as they are (its 404 is a 404 here).
    """
    if context.secret is None:
        raise NodeUnavailable(
            f"{what} is held by node {node!r}, and this process has no node secret to ask it with "
            "(set CAMSIGHT_NODE_SECRET or nodes.secret_file)"
        )
    state = context.state_of(store, node)
    if state is None:
        raise NodeUnavailable(f"node {node!r} that holds {what} is not known on this database")
    if not state.up:
        raise NodeUnavailable(
            f"node {node!r} that holds {what} is {state.state} (last seen {state.age_seconds:.0f} s ago)"
        )
    sender = context.name or "(single)"
    headers = sign(context.secret, sender, "GET", path)
    timeout = httpx.Timeout(context.settings.fetch_timeout_seconds, connect=5.0)
    try:
        with (
            httpx.Client(timeout=timeout) as client,
            client.stream("GET", state.url.rstrip("/") + path, headers=headers) as response,
        ):
            yield response
    except httpx.HTTPError as exc:
        raise NodeUnavailable(
            f"node {node!r} that holds {what} did not answer ({type(exc).__name__})"
        ) from None


def media_path(rel: str) -> str:
    """The node route serving a file under the media folder (thumbnails, event snapshots)."""
    return f"{NODE_PREFIX}/media?path={quote(rel, safe='')}"
