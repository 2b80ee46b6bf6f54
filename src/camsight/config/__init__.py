"""camsight's configuration: one YAML file, validated by pydantic, unknown keys rejected.

Part of the bottom layer: it imports nothing of camsight's but the other bottom
modules (``paths``, ``errors``, ``urls``), so every layer may use it. One module
per part of the file:

- :mod:`~camsight.config.base`: the one strict base model;
- :mod:`~camsight.config.settings`: detector, motion, tracking, attributes,
  embeddings, index, storage, uploads, the API's hosts and proxies;
- :mod:`~camsight.config.secrets`: which environment variables may hold secrets
  (``CAMSIGHT_SECRET_...``);
- :mod:`~camsight.config.camera`: a camera's block, with :mod:`~camsight.config.zones`
  (zones and lines), :mod:`~camsight.config.rules` (behaviour rules) and
  :mod:`~camsight.config.schedules`;
- :mod:`~camsight.config.alerts`: webhooks, MQTT, apprise notifiers, retries and signed links;
- :mod:`~camsight.config.metrics`: the Prometheus endpoint;
- :mod:`~camsight.config.loader`: the root model, loading with file:line errors, and
  :func:`choose_config`, the rule every command follows to find the file;
- :mod:`~camsight.config.edit`: the round-trip editor the web app saves through
  (comments and key order kept); import it from there.

Errors name the file, the line and the key, e.g.
``camsight.yaml:4: detector.backnd: unknown key``.
"""

from __future__ import annotations

from camsight.config.alerts import (
    SECRET_PLACEHOLDER,
    AlertsConfig,
    LinksConfig,
    MqttConfig,
    NotifyConfig,
    RetryConfig,
    SinkFilter,
    WebhookConfig,
)
from camsight.config.base import (
    StrictModel,
)
from camsight.config.camera import (
    CameraConfig,
    MovingObjectsConfig,
    RecordConfig,
)
from camsight.config.loader import (
    Config,
    ConfigChoice,
    choose_config,
    load_config,
    parse_config,
    validate_config,
)
from camsight.config.metrics import (
    MetricsConfig,
)
from camsight.config.rules import (
    DEFAULT_CLASSES,
    DEFAULT_SEVERITY,
    CrowdRule,
    DwellRule,
    ErraticDrivingRule,
    FallRule,
    GrowthConfig,
    LineCrossingRule,
    RuleConfig,
    RunningRule,
    StoppedVehicleRule,
    TamperingRule,
    UnusualActivityRule,
    WrongWayRule,
    ZoneIntrusionRule,
    rule_classes,
    rule_severity,
)
from camsight.config.schedules import (
    DAYS,
    ScheduleConfig,
)
from camsight.config.secrets import (
    SECRET_ENV_PREFIX,
    SecretEnv,
    check_secret_env,
)
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
from camsight.config.store import (
    DATABASE_ENV,
    StoreConfig,
    database_url,
)
from camsight.config.zones import (
    COMPASS,
    PEOPLE,
    SEVERITIES,
    TRACKED_CLASSES,
    VEHICLES,
    Direction,
    LineConfig,
    Point,
    Severity,
    Units,
    ZoneConfig,
    direction_degrees,
)
from camsight.paths import CONFIG_ENV

__all__ = [
    "COMPASS",
    "CONFIG_ENV",
    "DATABASE_ENV",
    "DAYS",
    "DEFAULT_CLASSES",
    "DEFAULT_SEVERITY",
    "PEOPLE",
    "SECRET_ENV_PREFIX",
    "SECRET_PLACEHOLDER",
    "SEVERITIES",
    "TRACKED_CLASSES",
    "VEHICLES",
    "AlertsConfig",
    "ApiConfig",
    "AttributesConfig",
    "CameraConfig",
    "Config",
    "ConfigChoice",
    "CrowdRule",
    "DetectorConfig",
    "Direction",
    "DwellRule",
    "EmbeddingsConfig",
    "ErraticDrivingRule",
    "FallRule",
    "GrowthConfig",
    "IndexConfig",
    "LineConfig",
    "LineCrossingRule",
    "LinksConfig",
    "MetricsConfig",
    "MotionConfig",
    "MovingObjectsConfig",
    "MqttConfig",
    "NotifyConfig",
    "Point",
    "RecordConfig",
    "RetryConfig",
    "RuleConfig",
    "RunningRule",
    "ScheduleConfig",
    "SecretEnv",
    "Severity",
    "SinkFilter",
    "StoppedVehicleRule",
    "StorageConfig",
    "StoreConfig",
    "StrictModel",
    "TamperingRule",
    "TrackingConfig",
    "Units",
    "UnusualActivityRule",
    "UploadsConfig",
    "WebhookConfig",
    "WrongWayRule",
    "ZoneConfig",
    "ZoneIntrusionRule",
    "check_secret_env",
    "choose_config",
    "database_url",
    "direction_degrees",
    "load_config",
    "parse_config",
    "rule_classes",
    "rule_severity",
    "validate_config",
]
