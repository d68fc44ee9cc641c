#!/usr/bin/env bash
# Run the app's tests with one command:
#   app/tests/run.sh [unit|integration|all] [pytest arguments...]      (default: all)
# unit:        pure logic (resize math, EXIF orientation, validation, config parsing)
# integration: the backend and real Celery workers against a real MinIO and a real RabbitMQ, both
#              started on loopback by the fixtures and stopped at the end
# Installs what is missing first: the app's pinned test dependencies into the project venv,
# Debian's rabbitmq-server, the MinIO binary (scripts/build-binaries.sh minio, cached) and the
# three images (scripts/lab-image.sh and scripts/app-images.sh, both rebuild only on change;
# APP_TEST_IMAGES=0 skips them, and test_app_images.py then reports itself skipped).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
LOG_TAG=app-tests
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

stage=all
case ${1:-} in unit|integration|all) stage=$1; shift ;; esac
py=${PYTHON:-$root/.venv/bin/python}
[ -x "$py" ] || die "no project venv at $root/.venv: run 'make venv' first"

with_progress "installing the app's test dependencies (pinned, app/requirements-dev.txt)" \
  "$py" -m pip install -q --disable-pip-version-check -r "$root/app/requirements-dev.txt"

if [ "$stage" != unit ]; then
  ensure_host_packages rabbitmq-server
  if [ -z "${MINIO_BIN:-}" ]; then
    MINIO_BIN=$("$root/scripts/build-binaries.sh" minio | tail -1)
  fi
  export MINIO_BIN
  if [ "${APP_TEST_IMAGES:-1}" != 0 ]; then
    "$root/scripts/lab-image.sh"
    "$root/scripts/app-images.sh" >/dev/null
  fi
fi

cd "$root"
case $stage in
  unit) paths=(app/tests/unit) ;;
  integration) paths=(app/tests/integration) ;;
  all) paths=(app/tests/unit app/tests/integration) ;;
esac
exec "$py" -m pytest -p no:cacheprovider "${paths[@]}" "$@"
