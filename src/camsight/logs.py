"""Logging: structured ``key=value`` lines on stderr, quiet by default.

Part of the bottom layer, so the CLI, the service and a camera's worker
process set it up the same way.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any


class KeyValueFormatter(logging.Formatter):
    """``level=... logger=... msg=... key=value`` lines: greppable and parseable."""

    _skip = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update({k: v for k, v in record.__dict__.items() if k not in self._skip})
        if record.exc_info and "traceback" not in fields:
            # Kept as one escaped field, so a record stays one line; without it log.exception() lost
            # the very thing it is called for.
            fields["traceback"] = self.formatException(record.exc_info)
        return " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())


def setup_logging(verbose: bool = False) -> None:
    """Quiet by default (warnings only); ``--verbose`` or CAMSIGHT_LOG=debug for more."""
    level = os.environ.get("CAMSIGHT_LOG", "debug" if verbose else "warning").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger("camsight")
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level, logging.WARNING))
    root.propagate = False
