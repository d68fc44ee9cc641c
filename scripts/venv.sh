#!/usr/bin/env bash
# Create or update the project venv (.venv) from the pinned requirements. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=venv
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
py=${PYTHON:-python3}
command -v "$py" >/dev/null || die "python3 is required"
"$py" -c 'import venv' 2>/dev/null || ensure_host_packages python3-venv
[ -x .venv/bin/python ] || { log "creating .venv"; "$py" -m venv .venv; }
with_progress "installing pinned Python packages into .venv" \
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
