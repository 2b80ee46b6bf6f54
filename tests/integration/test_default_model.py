"""The default detector's weights: installed by ``camsight models pull yolox-nano``, used with no flags.

Served by a real HTTP server on 127.0.0.1 (a registry file named by
``CAMSIGHT_MODEL_REGISTRY`` points the pinned entry at it), copied from a
local folder with ``--from`` as set-up does with ``../shared/models``, and
missing: then every command that needs it says, in one line, which command
fetches it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import assert_clean_failure, cli_env, db_query, run_cli

from camsight.search.model_registry import load_registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(yolox_model: Path) -> Iterator[str]:
    """The shared YOLOX file over HTTP on 127.0.0.1."""
    handler = partial(_Quiet, directory=str(yolox_model.parent))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def _registry(tmp_path: Path, url: str, model: Path, *, sha256: str | None = None) -> Path:
    """The built-in yolox-nano entry, pointed at ``url`` and pinned to ``model``'s bytes."""
    entry = load_registry().get("yolox-nano").model_dump(mode="json", exclude={"name"})
    (remote,) = entry["files"]
    remote.update(
        url=f"{url}/{model.name}",
        size=model.stat().st_size,
        sha256=sha256 or hashlib.sha256(model.read_bytes()).hexdigest(),
        known_copies=[],
    )
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"schema": 1, "models": {"yolox-nano": entry}}))
    return path


def test_pull_downloads_the_pinned_detector_and_index_uses_it_without_flags(
    served, yolox_model, vtest_short, tmp_path
):
    models, data = tmp_path / "models", tmp_path / "data"
    env = cli_env(
        CAMSIGHT_MODEL_REGISTRY=str(_registry(tmp_path, served, yolox_model)), CAMSIGHT_MODELS=str(models)
    )
    proc = run_cli("models", "pull", "yolox-nano", env=env)
    assert proc.returncode == 0, proc.stderr
    installed = models / "yolox-nano" / "yolox_nano.onnx"
    assert installed.read_bytes() == yolox_model.read_bytes()
    assert sorted(p.name for p in models.iterdir()) == ["yolox-nano"], "no staging folder may remain"

    listed = json.loads(run_cli("models", "list", "--json", env=env).stdout)
    (row,) = [m for m in listed["models"] if m["name"] == "yolox-nano"]
    assert (row["kind"], row["state"]) == ("detector", "installed")

    proc = run_cli("index", vtest_short, "--camera", "lobby", "--data", data, "--end", 3, env=env)
    assert proc.returncode == 0, proc.stderr
    (settings,) = db_query(data, "SELECT settings FROM sources")[0]
    assert json.loads(settings)["detector"] == "yolox"
    assert db_query(data, "SELECT count(*) FROM tracks WHERE label = 'person'")[0][0] > 0


def test_a_download_with_the_wrong_checksum_is_discarded(served, yolox_model, tmp_path):
    models = tmp_path / "models"
    registry = _registry(tmp_path, served, yolox_model, sha256="0" * 64)
    proc = run_cli(
        "models",
        "pull",
        "yolox-nano",
        env=cli_env(CAMSIGHT_MODEL_REGISTRY=str(registry), CAMSIGHT_MODELS=str(models)),
    )
    assert_clean_failure(proc, "checksum mismatch")
    assert not (models / "yolox-nano").exists()


def test_install_from_a_local_folder_verifies_the_copy(yolox_model, tmp_path):
    """What set-up does with ../shared/models: no network, the checksum still checked."""
    models = tmp_path / "models"
    env = cli_env(CAMSIGHT_MODELS=str(models))
    proc = run_cli("models", "pull", "yolox-nano", "--from", yolox_model.parent, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "sha256 verified" in proc.stderr
    assert (models / "yolox-nano" / "yolox_nano.onnx").read_bytes() == yolox_model.read_bytes()
    again = run_cli("models", "pull", "yolox-nano", "--from", yolox_model.parent, env=env)
    assert again.returncode == 0 and "already installed" in again.stderr

    tampered = tmp_path / "tampered"
    tampered.mkdir()
    blob = bytearray(yolox_model.read_bytes())
    blob[-1] ^= 0xFF
    (tampered / "yolox_nano.onnx").write_bytes(bytes(blob))
    other = tmp_path / "other-models"
    proc = run_cli(
        "models", "pull", "yolox-nano", "--from", tampered, env=cli_env(CAMSIGHT_MODELS=str(other))
    )
    assert_clean_failure(proc, "checksum mismatch")
    assert not (other / "yolox-nano").exists()

    proc = run_cli("models", "pull", "yolox-nano", "--from", tmp_path / "nowhere", env=env)
    assert_clean_failure(proc, "--from", "not a folder")


def test_without_the_model_every_command_names_the_command_that_fetches_it(vtest_short, tmp_path):
    empty = tmp_path / "models"
    empty.mkdir()
    env = cli_env(CAMSIGHT_MODELS=str(empty))
    proc = run_cli("index", vtest_short, "--data", tmp_path / "data", env=env)
    line = assert_clean_failure(proc, "camsight models pull yolox-nano")
    assert len(line) < 400
    # A missing file is said as such, before any model is looked for.
    proc = run_cli("index", tmp_path / "missing.mp4", "--data", tmp_path / "data", env=env)
    assert "Traceback" not in proc.stderr and proc.returncode != 0
    assert "missing.mp4" in proc.stderr
