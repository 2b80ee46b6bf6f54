"""Configuration: a YAML file validated by pydantic, unknown keys rejected.

Errors name the file, the line and the key, e.g.
``camsight.yaml:4: detector.backnd: unknown key``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from camsight.config.alerts import AlertsConfig
from camsight.config.base import StrictModel
from camsight.config.camera import CameraConfig
from camsight.config.metrics import MetricsConfig
from camsight.config.nodes import NodesConfig
from camsight.config.rules import DEFAULT_SEVERITY
from camsight.config.schedules import ScheduleConfig
from camsight.config.settings import (
    ApiConfig,
    AttributesConfig,
    DetectorConfig,
    EmbeddingsConfig,
    IndexConfig,
    MotionConfig,
    StorageConfig,
    TrackingConfig,
    UploadsConfig,
)
from camsight.config.store import StoreConfig
from camsight.errors import ConfigError
from camsight.paths import CONFIG_ENV, CONFIG_NAME, default_data_dir

_INNER_KEY = re.compile(r"^([A-Za-z_][\w.-]*): (.+)$", re.S)


class Config(StrictModel):
    data_dir: Path | None = None
    detector: DetectorConfig = DetectorConfig()
    motion: MotionConfig = MotionConfig()
    tracking: TrackingConfig = TrackingConfig()
    index: IndexConfig = IndexConfig()
    attributes: AttributesConfig = AttributesConfig()
    embeddings: EmbeddingsConfig = EmbeddingsConfig()
    timezone: str | None = None
    """IANA time zone that schedules are read in (default: this machine's)."""
    schedules: dict[str, ScheduleConfig] = Field(default_factory=dict)
    cameras: dict[str, CameraConfig] = Field(default_factory=dict)
    alerts: AlertsConfig = AlertsConfig()
    storage: StorageConfig = StorageConfig()
    store: StoreConfig = StoreConfig()
    """The database: the SQLite file in the data folder (default) or a PostgreSQL server's URL."""
    uploads: UploadsConfig = UploadsConfig()
    api: ApiConfig = ApiConfig()
    """The HTTP API: allowed host names and trusted reverse proxies (read when it starts)."""
    metrics: MetricsConfig = MetricsConfig()
    """The Prometheus endpoint: on or off, token or no auth, on the API server or its own address."""
    nodes: NodesConfig = NodesConfig()
    """Several nodes on one shared database: heartbeats, when a node counts as down, their secret."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str | None) -> str | None:
        if name is None:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{name}' (use a name like Europe/Berlin)") from None
        return name

    @model_validator(mode="after")
    def _references(self) -> Config:
        for cam_name, cam in self.cameras.items():
            for i, rule in enumerate(cam.rules):
                if isinstance(rule.schedule, str) and rule.schedule not in self.schedules:
                    known = ", ".join(sorted(self.schedules)) or "none defined"
                    raise ValueError(
                        f"cameras.{cam_name}.rules.{i}: unknown schedule '{rule.schedule}' "
                        f"(schedules: {known})"
                    )
        sinks = [(f"alerts.webhooks.{i}", hook) for i, hook in enumerate(self.alerts.webhooks)]
        if self.alerts.mqtt:
            sinks.append(("alerts.mqtt", self.alerts.mqtt))
        sinks.extend((f"alerts.notify.{i}", notifier) for i, notifier in enumerate(self.alerts.notify))
        # A rule routed by name must exist, else a typo silently routes nothing.
        configured = sorted({r.display_name() for cam in self.cameras.values() for r in cam.rules})
        rule_names = set(configured) | set(DEFAULT_SEVERITY)
        for where, sink in sinks:
            for cam_name in sink.cameras or []:
                if cam_name not in self.cameras:
                    known = ", ".join(sorted(self.cameras)) or "none defined"
                    raise ValueError(f"{where}.cameras: unknown camera '{cam_name}' (cameras: {known})")
            for rule_name in sink.rules or []:
                if rule_name not in rule_names:
                    names = ", ".join(configured[:10]) or "none configured"
                    raise ValueError(
                        f"{where}.rules: no rule named '{rule_name}' (give a rule type such as fall, or "
                        f"a configured rule's name: {names})"
                    )
        return self

    def camera(self, name: str) -> CameraConfig | None:
        """The named camera's block, if the config has one."""
        return self.cameras.get(name)

    def node_of(self, name: str) -> str | None:
        """The node that runs camera ``name``: its ``node:``, else ``nodes.default``; None: a process
        started without ``--node`` runs it (one box)."""
        cam = self.cameras.get(name)
        if cam is None:
            return None
        return cam.node or self.nodes.default

    def uses_nodes(self) -> bool:
        """Whether cameras are shared out among nodes: some camera names a node, or a default is set."""
        return self.nodes.default is not None or any(c.node for c in self.cameras.values())

    def unassigned_cameras(self) -> list[str]:
        """With nodes in use, the cameras (enabled, with a URL) that no node runs, in name order.

        They have no ``node:`` and ``nodes.default`` is unset, so every ``camsight run --node``
        leaves them out: said by the nodes at start, by ``camsight doctor`` and ``config check``.
        """
        if not self.uses_nodes():
            return []
        return sorted(n for n, c in self.cameras.items() if c.url and c.enabled and self.node_of(n) is None)


def _key_lines(node: yaml.Node, prefix: tuple = (), origin: str = "<config>") -> dict[tuple, int]:
    """Map each key path in a YAML document to its 1-based line; a repeated key is an error."""
    lines: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, key.value)
            if path in lines:
                dotted = ".".join(str(p) for p in path)
                raise ConfigError(
                    f"{origin}:{key.start_mark.line + 1}: {dotted}: given twice "
                    f"(first on line {lines[path]}); keep one"
                )
            lines[path] = key.start_mark.line + 1
            lines.update(_key_lines(value, path, origin))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*prefix, i)] = item.start_mark.line + 1
            lines.update(_key_lines(item, (*prefix, i), origin))
    return lines


def parse_config(text: str, origin: str = "<config>") -> Config:
    """Validate config text; raise :class:`ConfigError` naming file, line and key."""
    try:
        node = yaml.compose(text)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}" if mark else origin
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({problem})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}:1: the config must be a mapping of keys to values")
    lines = _key_lines(node, origin=origin) if node is not None else {}
    return validate_config(data, origin, lines)


def validate_config(data: Any, origin: str = "<config>", lines: dict[tuple, int] | None = None) -> Config:
    """Validate a config mapping; errors name ``origin``, the line (when known) and the key."""
    lines = lines or {}
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems: dict[str, list[str]] = {}
        for err in exc.errors():
            # Union members add their own tags (``constrained-float``,
            # ``literal['native']``) to the location; drop them so the
            # message names the user's key, and merge the alternatives.
            loc = tuple(p for p in err["loc"] if isinstance(p, int) or str(p).isidentifier())
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            if err["type"] == "value_error":
                msg = msg.removeprefix("Value error, ")
                # Cross-reference checks name the key below the model they
                # run on ("rules.0: unknown zone"); point at that key's line.
                inner = _INNER_KEY.match(msg)
                if inner:
                    loc += tuple(int(p) if p.isdigit() else p for p in inner.group(1).split("."))
                    msg = inner.group(2)
            doc_loc = loc
            while doc_loc and doc_loc not in lines:
                doc_loc = doc_loc[:-1]
            at = f"{origin}:{lines.get(doc_loc, 1)}" if lines else origin
            where = f"{at}: {'.'.join(str(p) for p in loc)}"
            problems.setdefault(where, []).append(msg)
        raise ConfigError(
            "; ".join(f"{where}: {' or '.join(msgs)}" for where, msgs in problems.items())
        ) from None


def load_config(path: Path | None = None) -> Config:
    """Load ``path``, else ``CAMSIGHT_CONFIG``, else the defaults."""
    if path is None:
        env = os.environ.get(CONFIG_ENV)
        if not env:
            return Config()
        path = Path(env)
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    return parse_config(text, str(path))


@dataclass(frozen=True)
class ConfigChoice:
    """The config every command uses, where it came from, and the data folder it puts the store in."""

    config: Config
    path: Path
    """The file the config was read from and edits are saved to (it may not exist yet)."""
    found: bool
    """Whether ``path`` exists: False means the built-in defaults are in force."""
    data_dir: Path


def choose_config(config: Path | None = None, data: Path | None = None) -> ConfigChoice:
    """The one rule every command follows: ``config``, else ``CAMSIGHT_CONFIG``, else ``<data>/config.yaml``.

    ``data`` (``--data``) else ``CAMSIGHT_DATA`` else the per-user folder is the
    data folder. A config named explicitly may move the store with its
    ``data_dir`` (``--data`` still wins); the data folder's own ``config.yaml``
    cannot, since it was found through that folder. Without any file the
    built-in defaults apply, and ``path`` is where the web app would create one.

    >>> choose_config(data=Path("/nowhere")).found
    False
    """
    given = config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if given is not None:
        path = given.expanduser()
        cfg = load_config(path)
        folder = data or cfg.data_dir or default_data_dir()
        return ConfigChoice(cfg, path, True, folder.expanduser())
    folder = (data or default_data_dir()).expanduser()
    path = folder / CONFIG_NAME
    if path.is_file():
        return ConfigChoice(load_config(path), path, True, folder)
    return ConfigChoice(Config(), path, False, folder)
