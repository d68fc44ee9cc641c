# shellcheck shell=bash
# Shared helpers for the lab harness scripts. Source it; do not run it.

CLOUDVIRT_CACHE=${CLOUDVIRT_CACHE:-$HOME/.cache/cloudvirt}
export CLOUDVIRT_CACHE

log() { printf '\033[1m[%s %s]\033[0m %s\n' "${LOG_TAG:-lab}" "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '\033[31m[%s] ERROR:\033[0m %s\n' "${LOG_TAG:-lab}" "$*" >&2; exit 1; }

# Run a command, showing a heartbeat every 15 s so long steps never look hung.
with_progress() { # description cmd...
  local what=$1; shift
  local start=$SECONDS last=$SECONDS pid rc
  "$@" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS - last >= 15 )); then
      last=$SECONDS
      log "… still $what ($((SECONDS - start)) s)"
    fi
  done
  wait "$pid"; rc=$?
  (( rc == 0 )) && log "done: $what in $((SECONDS - start)) s"
  return $rc
}

# Debian packages on the host (idempotent: installs only what is missing).
ensure_host_packages() { # pkg...
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  (( ${#missing[@]} == 0 )) && return 0
  command -v apt-get >/dev/null || die "missing host packages: ${missing[*]} (and no apt-get to install them)"
  log "installing host packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A running Docker engine; start dockerd if none answers. Never restarts a running engine.
ensure_docker() {
  ensure_host_packages docker.io
  if docker info >/dev/null 2>&1; then return 0; fi
  log "no Docker engine answers; starting dockerd"
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start docker || true
  fi
  if ! docker info >/dev/null 2>&1; then
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo sh -c 'nohup dockerd >/var/log/cloudvirt-dockerd.log 2>&1 &'
  fi
  local i
  for i in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { log "Docker engine up after ${i} s"; return 0; }
    sleep 1
  done
  die "dockerd did not answer within 60 s; see /var/log/cloudvirt-dockerd.log"
}
