"""``packaging/camsight.service``: the systemd unit runs ``camsight run`` hardened, and systemd accepts it."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CAMSIGHT, REPO_ROOT, cli_env

UNIT = REPO_ROOT / "packaging" / "camsight.service"
DATA = "/var/lib/camsight"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections and their keys, each key with every value it was given (systemd allows repeats)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"a setting before any section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a Key=value line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return parse_unit(UNIT.read_text())["Service"]


def one(service: dict[str, list[str]], key: str) -> str:
    values = service.get(key)
    assert values, f"{key}= is not set"
    assert len(values) == 1, f"{key}= is set {len(values)} times"
    return values[0]


def test_it_runs_camsight_run_as_its_own_user_and_restarts_on_failure(service: dict) -> None:
    command = shlex.split(one(service, "ExecStart"))
    assert Path(command[0]).name == "camsight" and command[1] == "run"
    assert one(service, "User") == "camsight" and one(service, "Group") == "camsight"
    assert one(service, "Restart") == "on-failure"
    assert f"CAMSIGHT_DATA={DATA}" in service["Environment"]
    # Secrets come from a file systemd reads as root, not from the unit (world-readable).
    assert one(service, "EnvironmentFile").lstrip("-").startswith("/etc/camsight/")
    assert not any("SECRET" in v or "PASSWORD" in v for v in service.get("Environment", []))


def test_hardening(service: dict) -> None:
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "SystemCallFilter": "@system-service",
    }
    for key, value in expected.items():
        assert one(service, key) == value, key
    # Writable: the data folder and nothing else.
    assert one(service, "ReadWritePaths") == DATA
    families = set(one(service, "RestrictAddressFamilies").split())
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= families
    assert not families & {"AF_PACKET", "AF_BLUETOOTH", "AF_CAN"}
    # Left off on purpose (OpenVINO's CPU plugin compiles code at run time), and said why.
    assert "MemoryDenyWriteExecute" not in service
    assert "# MemoryDenyWriteExecute is left off: OpenVINO" in UNIT.read_text()


def test_the_command_line_in_the_unit_is_one_camsight_accepts(service: dict, tmp_path: Path) -> None:
    # Every option in ExecStart must exist: --help after them parses them first.
    args = shlex.split(one(service, "ExecStart"))[1:]
    proc = subprocess.run(
        [str(CAMSIGHT), *args, "--help"],
        capture_output=True,
        text=True,
        env=cli_env(CAMSIGHT_DATA=str(tmp_path)),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def _unit_here(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's camsight (verify checks that it exists)."""
    text = UNIT.read_text()
    installed = shlex.split(parse_unit(text)["Service"]["ExecStart"][0])[0]
    unit = tmp_path / "camsight.service"
    unit.write_text(text.replace(installed, str(CAMSIGHT)))
    return unit


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian package systemd; .ci/run installs it)",
)
def test_systemd_analyze_verify_accepts_it(tmp_path: Path) -> None:
    unit = _unit_here(tmp_path)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.strip() == "", proc.stderr  # no warnings either
    # systemd's own review of the sandbox, where this systemd has it offline (252 does: it judges
    # the file and starts nothing): "1.7 OK" today; above 2 means a hardening key went missing.
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r"Overall exposure level for camsight\.service: (\d+\.\d+)", proc.stdout)
    if found is not None:
        assert float(found.group(1)) <= 2.0, proc.stdout
