#!/usr/bin/env bash
# Benchmarks (`make bench`): scripts, not timed tests. Each prints its figures side by side
# from one run (ratios where two things are compared), because the machine is noisy.
#   scripts/bench.sh [nomad_job] [app] [failover] [uploads] [lifecycle]   default: every benchmark present
set -uo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=bench
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
export PATH=$PWD/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$PWD/.build/collections

benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(nomad_job app failover uploads lifecycle)
rc=0
for b in "${benches[@]}"; do
  script=scripts/bench_$b.py
  if [ ! -f "$script" ]; then
    log "no benchmark '$b' yet ($script); skipped"
    continue
  fi
  case $b in
    failover|lifecycle) scripts/lab.sh up >&2 ;;  # the lab cluster (idempotent, minutes when it is up already)
    uploads) scripts/lab.sh up >&2 && app/tests/run.sh unit -q >/dev/null ;;  # lab, and Pillow
    nomad_job) scripts/build-binaries.sh nomad >/dev/null && ensure_docker && scripts/lab-image.sh ;;
    app) app/tests/run.sh unit -q >/dev/null ;;  # installs the app's pinned dependencies
  esac
  log "── $b"
  python "$script" || { log "benchmark $b failed"; rc=1; }
done
exit $rc
