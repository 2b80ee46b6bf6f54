"""``camsight models pull/list`` against a real HTTP server on 127.0.0.1.

The tiny model of tests/tiny_vlm.py is served by ``http.server``
in a thread; a registry file named by ``CAMSIGHT_MODEL_REGISTRY`` points at
it; the installed ``camsight`` command runs as a subprocess, as a user
would run it. Every failure must be one clear ``error:`` line and leave
nothing behind in the models folder.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest
import tiny_vlm as tiny
from conftest import assert_clean_failure, cli_env, run_cli

from camsight.search.embeddings import load_encoder
from camsight.search.model_registry import load_registry
from camsight.search.model_registry import pull as pull_model

pytestmark = pytest.mark.slow

FILES = ("image.onnx", "text.onnx", "tokenizer.json")


class _Handler(BaseHTTPRequestHandler):
    """``/ok/NAME``: the file; ``/half/NAME``: announces it all, sends half, hangs up; else 404."""

    files: ClassVar[dict[str, bytes]] = {}
    hits: ClassVar[Counter] = Counter()

    def do_GET(self) -> None:
        mode, _, name = self.path.lstrip("/").partition("/")
        type(self).hits[self.path] += 1
        body = self.files.get(name)
        if body is None or mode not in ("ok", "half"):
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "ok":
            self.wfile.write(body)
        else:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> SimpleNamespace:
    """The tiny model's files (no manifest: the registry carries it) and their checksums."""
    folder = tiny.build_tiny_model(tmp_path_factory.mktemp("source") / "tiny", manifest=False)
    blobs = {name: (folder / name).read_bytes() for name in FILES}
    return SimpleNamespace(
        folder=folder,
        blobs=blobs,
        sha256={name: hashlib.sha256(data).hexdigest() for name, data in blobs.items()},
    )


@pytest.fixture(scope="module")
def server(source) -> Iterator[SimpleNamespace]:
    handler = type("Handler", (_Handler,), {"files": source.blobs, "hits": Counter()})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{httpd.server_address[1]}", hits=handler.hits)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture
def registry(tmp_path, source, server):
    """Write a registry for ``tiny``; keyword overrides change one file's entry."""

    def write(url: str | None = None, **per_file: dict) -> Path:
        files = []
        for name in FILES:
            entry = {
                "name": name,
                "url": f"{url or server.url}/ok/{name}",
                "size": len(source.blobs[name]),
                "sha256": source.sha256[name],
            }
            entry.update(per_file.get(name.replace(".", "_"), {}))
            files.append(entry)
        data = {
            "schema": 1,
            "models": {
                "tiny": {
                    "description": "tiny colour model for tests",
                    "files": files,
                    "manifest": tiny.tiny_manifest(),
                }
            },
        }
        path = tmp_path / "registry.json"
        path.write_text(json.dumps(data, indent=2))
        return path

    return write


def pull(registry_path: Path, models: Path, *extra: str, name: str = "tiny"):
    return run_cli(
        "models",
        "pull",
        name,
        "--dir",
        models,
        *extra,
        timeout=120,
        env=cli_env(CAMSIGHT_MODEL_REGISTRY=str(registry_path)),
    )


def listing(registry_path: Path, models: Path) -> dict:
    proc = run_cli(
        "models",
        "list",
        "--json",
        env=cli_env(CAMSIGHT_MODEL_REGISTRY=str(registry_path), CAMSIGHT_MODELS=str(models)),
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_nothing_left(models: Path) -> None:
    left = sorted(p.name for p in models.iterdir()) if models.exists() else []
    assert left == [], f"the failed pull left {left} in {models}"


# --------------------------------------------------------------------------- success


def test_pull_installs_a_verified_model_that_loads(registry, source, tmp_path):
    models = tmp_path / "models"
    proc = pull(registry(), models)
    assert proc.returncode == 0, proc.stderr
    assert "installed" in proc.stderr and "sha256 verified" in proc.stderr
    folder = models / "tiny"
    assert sorted(p.name for p in models.iterdir()) == ["tiny"], "no staging folder may remain"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, "manifest.json"])
    for name in FILES:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == source.sha256[name]
    assert json.loads((folder / "manifest.json").read_text())["name"] == "tiny"

    encoder = load_encoder(folder)
    sims = (
        encoder.embed_images([tiny.colour_image("red"), tiny.colour_image("blue")])
        @ encoder.embed_texts(["red", "blue"]).T
    )
    assert np.argmax(sims[0]) == 0 and np.argmax(sims[1]) == 1


def test_pull_again_is_a_verified_no_op_and_force_downloads_again(registry, server, tmp_path):
    models = tmp_path / "models"
    path = registry()
    assert pull(path, models).returncode == 0
    before = server.hits["/ok/image.onnx"]

    again = pull(path, models)
    assert again.returncode == 0, again.stderr
    assert "already installed" in again.stderr
    assert server.hits["/ok/image.onnx"] == before

    forced = pull(path, models, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "replaced" in forced.stderr
    assert server.hits["/ok/image.onnx"] == before + 1
    assert sorted(p.name for p in models.iterdir()) == ["tiny"]


def test_list_shows_known_and_installed_models(registry, tmp_path):
    models = tmp_path / "models"
    path = registry()
    before = listing(path, models)
    assert [(m["name"], m["state"]) for m in before["models"]] == [("tiny", "missing")]
    assert pull(path, models).returncode == 0
    after = listing(path, models)
    assert [(m["name"], m["state"], m["dim"]) for m in after["models"]] == [("tiny", "installed", 8)]

    table = run_cli("models", "list", "--dir", models, env=cli_env(CAMSIGHT_MODEL_REGISTRY=str(path)))
    assert table.returncode == 0, table.stderr
    assert "tiny" in table.stdout and "installed" in table.stdout


def test_library_pull_reports_progress_and_clears_stale_staging(registry, tmp_path):
    models = tmp_path / "models"
    stale = models / ".tiny.partial-4194399-abc"  # above Linux's pid_max: its process is gone
    stale.mkdir(parents=True)
    (stale / "image.onnx").write_bytes(b"half")
    entry = load_registry(registry()).get("tiny")
    seen: Counter = Counter()
    result = pull_model(entry, models, progress=lambda name, n: seen.update({name: n}))
    assert result.status == "installed" and result.folder == models / "tiny"
    assert dict(seen) == {f.name: f.size for f in entry.files}
    assert sorted(p.name for p in models.iterdir()) == ["tiny"]
    assert pull_model(entry, models).status == "present"


def test_a_pull_killed_between_the_renames_gets_the_old_model_back(registry, tmp_path):
    models = tmp_path / "models"
    entry = load_registry(registry()).get("tiny")
    pull_model(entry, models)
    (models / "tiny").rename(models / ".tiny.old-4194399")  # killed right after moving it aside
    assert pull_model(entry, models).status == "present"
    assert sorted(p.name for p in models.iterdir()) == ["tiny"]


def test_pull_refuses_a_folder_that_differs_without_force(registry, tmp_path):
    models = tmp_path / "models"
    path = registry()
    assert pull(path, models).returncode == 0
    (models / "tiny" / "text.onnx").write_bytes(b"edited by hand")
    proc = pull(path, models)
    assert_clean_failure(proc, "exists but differs", "text.onnx", "--force")
    assert (models / "tiny" / "text.onnx").read_bytes() == b"edited by hand"
    assert listing(path, models)["models"][0]["state"] == "damaged"
    assert pull(path, models, "--force").returncode == 0
    assert load_encoder(models / "tiny").dim == 8


# --------------------------------------------------------------------------- failures


def test_wrong_checksum_fails_and_keeps_nothing(registry, tmp_path):
    models = tmp_path / "models"
    proc = pull(registry(text_onnx={"sha256": "0" * 64}), models)
    assert_clean_failure(proc, "checksum mismatch", "tiny/text.onnx", "0" * 64)
    assert_nothing_left(models)


def test_failed_force_pull_keeps_the_installed_model(registry, source, tmp_path):
    models = tmp_path / "models"
    assert pull(registry(), models).returncode == 0
    proc = pull(registry(tokenizer_json={"sha256": "f" * 64}), models, "--force")
    assert_clean_failure(proc, "checksum mismatch", "installed copy", "is unchanged")
    assert sorted(p.name for p in models.iterdir()) == ["tiny"]
    for name in FILES:
        assert (models / "tiny" / name).read_bytes() == source.blobs[name]
    assert load_encoder(models / "tiny").dim == 8


def test_wrong_size_is_refused_before_downloading(registry, source, tmp_path):
    models = tmp_path / "models"
    size = len(source.blobs["image.onnx"])
    proc = pull(registry(image_onnx={"size": size + 10}), models)
    assert_clean_failure(proc, "tiny/image.onnx", f"offers {size} bytes", f"pins {size + 10}")
    assert_nothing_left(models)


def test_http_404_is_a_clear_error(registry, server, tmp_path):
    models = tmp_path / "models"
    proc = pull(registry(tokenizer_json={"url": f"{server.url}/gone/tokenizer.json"}), models)
    assert_clean_failure(proc, "tiny/tokenizer.json", "HTTP 404", "/gone/tokenizer.json")
    assert_nothing_left(models)


def test_server_dying_mid_download_keeps_nothing(registry, server, source, tmp_path):
    models = tmp_path / "models"
    proc = pull(registry(text_onnx={"url": f"{server.url}/half/text.onnx"}), models)
    size = len(source.blobs["text.onnx"])
    line = assert_clean_failure(proc, "tiny/text.onnx", "broke off", f"of {size} bytes")
    assert "run the command again" in line
    assert_nothing_left(models)


def test_unreachable_server(registry, tmp_path):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    models = tmp_path / "models"
    proc = pull(registry(url=f"http://127.0.0.1:{port}"), models)
    assert_clean_failure(proc, "cannot reach", f"127.0.0.1:{port}")
    assert_nothing_left(models)


def test_unknown_model_lists_the_known_ones(registry, tmp_path):
    models = tmp_path / "models"
    proc = pull(registry(), models, name="clip-vit-b99")
    assert_clean_failure(proc, "unknown model 'clip-vit-b99'", "known models", "tiny")
    assert_nothing_left(models)


def test_broken_registry_file_is_named(tmp_path):
    path = tmp_path / "registry.json"
    path.write_text('{"schema": 1, "models": {"tiny": {"files": []}}}')
    proc = pull(path, tmp_path / "models")
    assert_clean_failure(proc, str(path), "models.tiny.files")
