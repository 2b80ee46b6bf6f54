#!/usr/bin/env bash
# Drift check: install the NEWEST versions pyproject.toml's bounds allow (ignoring the lock) into a
# throwaway virtual environment and run the fast tests there. A failure here is the next breaking
# release, seen by us before users see it (they install from the lock and are not affected yet).
#   bash scripts/drift_check.sh            # fast tests (-m "not slow")
#   bash scripts/drift_check.sh -k yolox   # extra pytest arguments
# Prints the packages whose newest allowed version differs from the lock, then the test summary.
# Exit status: pytest's (0 = the newest allowed versions pass the fast tests).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(mktemp -d /tmp/camsight-drift.XXXXXX)
trap 'rm -rf "$venv"' EXIT
python=${PYTHON:-python3}
"$python" -m venv "$venv"
echo "drift: installing the newest allowed versions into $venv" >&2
"$venv/bin/pip" install -q --disable-pip-version-check --upgrade --upgrade-strategy eager \
  -c requirements/constraints.txt -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
# What moved, against the lock (name==version lines).
"$venv/bin/python" - requirements/dev.lock <<'PY' >&2
import re, sys
from importlib import metadata

norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
locked = dict(
    (norm(m.group(1)), m.group(2))
    for m in re.finditer(r"^([A-Za-z0-9._-]+)==([^ \\\n]+)", open(sys.argv[1]).read(), re.M)
)
now = {norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
moved = sorted((n, v, now[n]) for n, v in locked.items() if n in now and now[n] != v)
print("drift: newest allowed versions that differ from requirements/dev.lock:" + ("" if moved else " none"))
for name, old, new in moved:
    print(f"  {name} {old} -> {new}")
PY
status=0
"$venv/bin/python" -m pytest -m "not slow" -q -p no:cacheprovider "$@" || status=$?
echo "drift: pytest exit status $status" >&2
exit $status
