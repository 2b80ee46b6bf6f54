#!/usr/bin/env bash
# Drift check: install the NEWEST versions pyproject.toml's bounds allow (ignoring the lock) into a
# throwaway virtual environment and run the fast tests there. A failure here is the next breaking
# release, seen by us before users see it (they install from the lock and are not affected yet).
#   bash scripts/drift_check.sh            # fast tests (-m "not slow")
#   bash scripts/drift_check.sh -k yolox   # extra pytest arguments
# Prints the packages whose newest allowed version differs from the lock, then the test summary.
# Exit status: pytest's (0 = the newest allowed versions pass the fast tests).
set -euo pipefail
export LC_ALL=C  # one collation for sort and join
cd "$(dirname "$0")/.."
venv=$(mktemp -d /tmp/camsight-drift.XXXXXX)
trap 'rm -rf "$venv"' EXIT
python=${PYTHON:-python3}
"$python" -m venv "$venv"
echo "drift: installing the newest allowed versions into $venv" >&2
"$venv/bin/pip" install -q --disable-pip-version-check --upgrade --upgrade-strategy eager \
  -c requirements/constraints.txt -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
# What moved, against the lock (name==version lines).
"$venv/bin/pip" list --format=freeze --disable-pip-version-check 2>/dev/null | tr '[:upper:]_' '[:lower:]-' \
  | sort >"$venv/now.txt"
grep -E '^[A-Za-z0-9._-]+==' requirements/dev.lock | sed 's/ .*//' | tr '[:upper:]_' '[:lower:]-' \
  | sort >"$venv/locked.txt"
echo "drift: newest allowed versions that differ from requirements/dev.lock:" >&2
join -t= -j1 <(sed 's/==/=/' "$venv/locked.txt") <(sed 's/==/=/' "$venv/now.txt") \
  | awk -F= '$2 != $3 {printf "  %s %s -> %s\n", $1, $2, $3}' >&2 || true
status=0
"$venv/bin/python" -m pytest -m "not slow" -q -p no:cacheprovider "$@" || status=$?
echo "drift: pytest exit status $status" >&2
exit $status
