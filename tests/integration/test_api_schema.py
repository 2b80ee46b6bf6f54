"""The published OpenAPI schema, fuzzed by schemathesis against the real app.

No server errors, and every answer as documented: its status is declared for the route, its
body matches the declared schema (errors too: the API's one error shape), its content type and
headers are the declared ones, and a 405's ``Allow`` names the methods the path really takes.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from camsight.api.app import create_app
from camsight.auth import tokens, users
from camsight.auth.audit import Actor
from camsight.config import Config
from camsight.store.db import open_store
from camsight.store.repository import get_or_create_camera

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _app():
    root = Path(tempfile.mkdtemp(prefix="camsight-schema-"))
    # Built when the module is imported (schemathesis reads the app while collecting): every
    # worker that collects it makes one, so each removes its own when it exits.
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    store = open_store(root / "data")
    with store.session() as session:
        get_or_create_camera(session, "lobby")
        by = Actor.system()
        users.create_user(session, "root", "correct horse battery", "admin", by=by)
        secret = tokens.create(session, "root", "fuzz", by=by).secret
    return create_app(Config(), store), secret


APP, SECRET = _app()
#: A deeper local hunt: CAMSIGHT_FUZZ_EXAMPLES=200 pytest tests/integration/test_api_schema.py
EXAMPLES = int(os.environ.get("CAMSIGHT_FUZZ_EXAMPLES", "15"))
#: CI explores the same cases every run, so its verdict is reproducible; local runs explore new ones.
IN_CI = os.environ.get("CI", "").lower() == "true"
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.allow_header_conformance,
]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=IN_CI, suppress_health_check=list(HealthCheck))
def test_answers_conform_to_the_schema(case):
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {SECRET}"}
    case.call_and_validate(checks=CHECKS)
