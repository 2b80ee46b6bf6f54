"""The suite's parallel run (pytest-xdist, pyproject.toml's addopts): each worker's own ports, and
tests that share a node id all run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from servers import _ephemeral_start, free_port, port_open


def test_each_worker_picks_ports_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    picked: dict[str, list[int]] = {}
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        picked[worker] = [free_port() for _ in range(40)]
    for ports in picked.values():
        assert len(set(ports)) == len(ports)  # never handed out twice by one worker
        assert not any(port_open(port) for port in ports)
    # Disjoint slices below the kernel's ephemeral ports: a port one worker let go (a server
    # stopped, to be started again) is never the other worker's, nor a client socket's.
    assert max(picked["gw0"]) < min(picked["gw1"])
    assert 20000 <= min(picked["gw0"]) and max(picked["gw1"]) < _ephemeral_start()


def test_a_serial_run_lets_the_kernel_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert not port_open(free_port())


# A plugin that makes items the way schemathesis does on pytest 9.2: one per case, all with the
# function's node id. Each records that it ran.
SAME_ID_CONFTEST = """
import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("camsight_tests_conftest", {conftest!r})
_suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_suite)
pytest_xdist_make_scheduler = _suite.pytest_xdist_make_scheduler


def pytest_pycollect_makeitem(collector, name, obj):
    if name == "test_case":
        return [
            pytest.Function.from_parent(collector, name=f"test_case[{{case}}]", originalname=name)
            for case in ("get", "post", "delete")
        ]
"""

SAME_ID_TESTS = """
from pathlib import Path


def test_case(request):
    (Path(__file__).parent / "ran" / request.node.name).touch()


def test_other():
    pass
"""


def test_tests_sharing_a_node_id_all_run_in_parallel(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the repository's settings
    (tmp_path / "conftest.py").write_text(
        SAME_ID_CONFTEST.format(conftest=str(REPO_ROOT / "tests" / "conftest.py"))
    )
    (tmp_path / "test_same_id.py").write_text(SAME_ID_TESTS)
    (tmp_path / "ran").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    # Its own basetemp: a pytest session with the default one makes /tmp/pytest-of-<user> private
    # (0700), and the suite's PostgreSQL server, running as another user with its data under the
    # suite's basetemp there, then loses its files and stops (CI failed so).
    basetemp = tmp_path / "basetemp"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile"]
    proc = subprocess.run(
        [*command, "-q", f"--basetemp={basetemp}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in (tmp_path / "ran").iterdir()) == [
        "test_case[delete]",
        "test_case[get]",
        "test_case[post]",
    ]
    assert "4 passed" in proc.stdout
