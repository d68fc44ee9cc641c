#!/usr/bin/env bash
# Everything CI runs, stage by stage, with timings and one closing summary line.
#   scripts/test.sh                       all stages
#   scripts/test.sh unit integration      a subset (STAGES in the Makefile)
#   MOLECULE_SCENARIOS="consul cluster"   a subset of scenarios
set -uo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=test
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ALL_STAGES=(prepare lint sanity unit integration molecule)
STAGES=("$@")
[ ${#STAGES[@]} -gt 0 ] || STAGES=("${ALL_STAGES[@]}")
MOLECULE_SCENARIOS=${MOLECULE_SCENARIOS:-docker keepalived haproxy infra consul nomad cluster app}
REPORTS=$PWD/tests/output/junit
rm -rf "$REPORTS"; mkdir -p "$REPORTS"
export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$PWD/.build/collections}
export PATH=$PWD/.venv/bin:$PATH

declare -a RESULTS=()
failed_stages=0

run_stage() { # name
  local name=$1 start=$SECONDS rc
  log "── stage $name"
  "stage_$name"; rc=$?
  RESULTS+=("$(printf '%-12s %-6s %5d s' "$name" "$([ $rc = 0 ] && echo ok || echo FAILED)" $((SECONDS - start)))")
  [ $rc = 0 ] || failed_stages=$((failed_stages + 1))
  return 0
}

stage_prepare() {
  # chromium: the browser test of the app scenario (Playwright drives it; no browser download);
  # rabbitmq-server: the preflight integration tests run a private broker on loopback
  ensure_host_packages docker.io debootstrap openssh-client rsync busybox-static chromium rabbitmq-server
  ensure_docker || return 1
  scripts/lab-image.sh || return 1
  with_progress "obtaining Consul, Nomad and MinIO binaries" scripts/build-binaries.sh consul nomad minio >/dev/null || return 1
  # The upgrade test's "new" Consul and Nomad: the same release relinked with version
  # metadata (seconds, from Go's build cache), so the rolling upgrade swaps real binaries.
  CLOUDVIRT_BIN_METADATA=cloudvirt.1 with_progress "relinking Consul and Nomad as +cloudvirt.1" \
    scripts/build-binaries.sh consul nomad >/dev/null || return 1
}

stage_lint() {
  local rc=0
  yamllint --strict . || rc=1
  ansible-lint --profile production --offline || rc=1
  return $rc
}

stage_sanity() {
  scripts/sanity.sh
}

pytest_run() { # report-name pytest-args...
  local name=$1; shift
  python -m pytest -p no:cacheprovider --junitxml="$REPORTS/$name.xml" "$@"
  local rc=$?
  [ $rc = 5 ] && { log "no tests collected for $name"; return 1; }
  return $rc
}

stage_unit() {
  local rc=0
  pytest_run unit -q tests/unit || rc=1
  app/tests/run.sh unit -q --junitxml="$REPORTS/app-unit.xml" || rc=1
  return $rc
}

stage_integration() {
  local rc=0 d
  for d in tests/integration/*/; do
    [ -d "$d" ] || continue
    pytest_run "integration-$(basename "$d")" -q "$d" || rc=1
  done
  # The app against a real MinIO and RabbitMQ, and its built images.
  app/tests/run.sh integration -q --junitxml="$REPORTS/app-integration.xml" || rc=1
  return $rc
}

stage_molecule() {
  local rc=0 s start
  for s in $MOLECULE_SCENARIOS; do
    [ -f "molecule/$s/molecule.yml" ] || { log "molecule scenario $s does not exist yet; skipped"; continue; }
    start=$SECONDS
    log "molecule test -s $s"
    if MOLECULE_JUNIT="$REPORTS/molecule-$s.xml" molecule test -s "$s"; then
      RESULTS+=("$(printf '  %-10s ok     %5d s' "$s" $((SECONDS - start)))")
    else
      RESULTS+=("$(printf '  %-10s FAILED %5d s' "$s" $((SECONDS - start)))")
      rc=1
    fi
  done
  return $rc
}

for st in "${STAGES[@]}"; do
  declare -F "stage_$st" >/dev/null || die "unknown stage '$st' (stages: ${ALL_STAGES[*]})"
  run_stage "$st"
done

echo
echo "stage        result  time"
printf '%s\n' "${RESULTS[@]}"
python3 scripts/junit_summary.py "$REPORTS" "$failed_stages"
[ "$failed_stages" = 0 ]
