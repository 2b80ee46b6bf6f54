"""The browser UI's files as the server hands them out: security headers, versions, no escapes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from camsight.api.app import create_app
from camsight.config import Config
from camsight.store.db import open_store
from camsight.web.site import STATIC, asset_version

OPEN = {("GET", "/api/v1/health"), ("POST", "/api/v1/auth/login")}
#: Opened by a signed link from an alert instead of a sign-in: without a valid link, 403.
SIGNED = {
    ("GET", "/api/v1/links/events/{event_id}/snapshot"),
    ("GET", "/api/v1/links/events/{event_id}/clip"),
    ("HEAD", "/api/v1/links/events/{event_id}/clip"),
}


@pytest.fixture
def client(tmp_path: Path):
    store = open_store(tmp_path / "data")
    yield TestClient(create_app(Config(), store))
    store.close()


def test_home_is_the_ui_shell_with_a_strict_policy(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    # Assets carry the version so an upgrade is never served from a stale cache.
    assert f"/static/app.js?v={asset_version()}" in r.text
    assert "{{v}}" not in r.text
    # Nothing inline: the policy forbids inline scripts and styles.
    assert not re.search(r"<script(?![^>]*\bsrc=)", r.text)
    assert "style=" not in r.text


def test_every_static_file_is_served_with_the_right_type(client):
    types = {".js": "javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}
    names = [p.name for p in STATIC.iterdir() if p.is_file()]
    assert {"app.js", "api.js", "app.css", "index.html"} <= set(names)
    for name in names:
        r = client.get(f"/static/{name}?v={asset_version()}")
        assert r.status_code == 200, name
        assert types[Path(name).suffix] in r.headers["content-type"], name
        assert "immutable" in r.headers["cache-control"]
        assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "no-cache" in client.get("/static/app.js").headers["cache-control"]


@pytest.mark.parametrize(
    "path",
    [
        "/static/../pyproject.toml",
        "/static/%2e%2e/%2e%2e/site.py",
        "/static/..%2fsite.py",
        "/static/nothing.js",
        "/static/",
        "/static/%00.js",
    ],
)
def test_static_files_cannot_escape_their_folder(client, path):
    r = client.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert "import" not in r.text and "def " not in r.text


def test_every_api_endpoint_needs_credentials(client):
    """Walks the published schema, so an endpoint added later is covered without listing it here."""
    schema = client.get("/api/v1/openapi.json").json()
    checked = 0
    for path, methods in schema["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method in methods:
            if (method.upper(), path) in OPEN:
                continue
            if (method.upper(), path) in SIGNED:
                assert client.request(method.upper(), concrete).status_code == 403, (method, path)
                continue
            r = client.request(method.upper(), concrete, json={})
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            if method != "head":  # a HEAD answer has no body
                assert r.json()["error"]["code"] == "unauthorized"
            checked += 1
    assert checked >= 25


def test_api_documentation_needs_nothing_from_the_internet(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assert not re.search(r"(src|href)=['\"](https?:)?//", page.text)
    assets = re.findall(r"(?:src|href)=['\"](/api/v1/docs-static/[^'\"]+)['\"]", page.text)
    assert len(assets) >= 2
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
