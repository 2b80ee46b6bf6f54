#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml: the newest versions its bounds allow today.
#   bash scripts/lock.sh                   # add what pyproject.toml gained, keep the other pins
#   bash scripts/lock.sh --upgrade         # the newest versions the bounds allow, for everything
#   bash scripts/lock.sh --upgrade-package numpy   # move one package, keep the rest
# Then check them: bash scripts/setup.sh --dev && .venv/bin/python -m pytest
set -euo pipefail
cd "$(dirname "$0")/.."
tool=$(mktemp -d)
trap 'rm -rf "$tool"' EXIT
python3 -m venv "$tool" && "$tool/bin/pip" install -q --disable-pip-version-check 'uv>=0.9,<1'
common=(-c requirements/constraints.txt --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes --no-header "$@")
"$tool/bin/uv" pip compile pyproject.toml "${common[@]}" -o requirements/runtime.lock
"$tool/bin/uv" pip compile pyproject.toml --extra dev "${common[@]}" -o requirements/dev.lock
"$tool/bin/uv" pip compile pyproject.toml --extra cluster "${common[@]}" -o requirements/cluster.lock
echo "lock: requirements/runtime.lock, dev.lock and cluster.lock refreshed; review 'git diff requirements/'" >&2
