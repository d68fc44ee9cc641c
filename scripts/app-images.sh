#!/usr/bin/env bash
# Build the reference workload's images locally, offline of any registry:
#   cloudvirt/app-backend:<version>   cloudvirt/app-worker:<version>   cloudvirt/app-frontend:<version>
#
#   scripts/app-images.sh [--version V] [--base-image IMAGE] [--prefix NAME]
#
#   --version     image tag (default: APP_VERSION, else the content of app/VERSION)
#   --base-image  base of all three images (default: APP_BASE_IMAGE, else the lab's
#                 cloudvirt/node:bookworm from scripts/lab-image.sh); "default" keeps each
#                 Dockerfile's public default (python:3.11-slim-bookworm, debian:bookworm-slim)
#   --prefix      image name prefix (default: APP_IMAGE_PREFIX, else cloudvirt/app-)
#
# Python packages come from a wheelhouse downloaded once from PyPI on this controller
# (${CLOUDVIRT_CACHE:-~/.cache/cloudvirt}/wheelhouse/<hash>, keyed by app/requirements.txt) and
# copied into the build context, so image builds need no network for Python. The frontend
# installs nginx with apt from the base image's Debian mirror.
# An image whose recipe (base image, Dockerfile, context, version) is unchanged is not rebuilt.
# Prints the image references, one per line, on stdout; progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
LOG_TAG=app-images
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

app=$root/app
version=${APP_VERSION:-}
base=${APP_BASE_IMAGE:-cloudvirt/node:bookworm}
prefix=${APP_IMAGE_PREFIX:-cloudvirt/app-}
# Interpreter of the images: the wheels must match it (Debian 12's python3 and python:3.11-slim).
py_version=${APP_PYTHON_VERSION:-3.11}
pip_version=26.3

while (( $# )); do
  case $1 in
    --version) version=$2; shift 2 ;;
    --base-image) base=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[ -n "$version" ] || version=$(tr -d ' \n' <"$app/VERSION")
[[ $version =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "invalid image tag: $version"
[ "$base" = default ] && base=""

ensure_docker
if [ -n "$base" ] && ! docker image inspect "$base" >/dev/null 2>&1; then
  if [[ $base == cloudvirt/* ]]; then
    die "base image $base is missing; build it with scripts/lab-image.sh"
  fi
  log "base image $base is not local; docker build will pull it"
fi

# --- wheelhouse ----------------------------------------------------------------------------------
arch=$(docker info -f '{{.Architecture}}')
case $arch in x86_64|amd64) arch=x86_64 ;; aarch64|arm64) arch=aarch64 ;; *) die "unsupported architecture $arch" ;; esac
py=${PYTHON:-}
[ -n "$py" ] || { [ -x "$root/.venv/bin/python" ] && py=$root/.venv/bin/python || py=python3; }
wheel_key=$( { cat "$app/requirements.txt"; echo "$arch $py_version pip==$pip_version"; } | sha256sum | cut -c1-16)
wheelhouse=$CLOUDVIRT_CACHE/wheelhouse/$wheel_key
if [ -f "$wheelhouse/.complete" ]; then
  log "wheelhouse $wheel_key is cached ($(find "$wheelhouse" -name '*.whl' | wc -l) wheels)"
else
  log "downloading the wheelhouse for Python $py_version on $arch (once per requirements change)"
  tmp=$(mktemp -d "$CLOUDVIRT_CACHE/wheelhouse.XXXXXX" 2>/dev/null || { mkdir -p "$CLOUDVIRT_CACHE"; mktemp -d "$CLOUDVIRT_CACHE/wheelhouse.XXXXXX"; })
  trap 'rm -rf "$tmp"' EXIT
  platforms=()
  for tag in manylinux_2_36 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 \
             manylinux_2_17 manylinux2014 manylinux_2_12 manylinux2010 manylinux_2_5 manylinux1; do
    platforms+=(--platform "${tag}_$arch")
  done
  with_progress "pip download of $(grep -c '^[a-zA-Z]' "$app/requirements.txt") pinned packages" \
    "$py" -m pip download --quiet --disable-pip-version-check --dest "$tmp" --only-binary=:all: \
      "${platforms[@]}" --python-version "$py_version" --implementation cp \
      -r "$app/requirements.txt" "pip==$pip_version" \
    || die "pip download failed (is PyPI reachable?)"
  touch "$tmp/.complete"
  mkdir -p "$(dirname "$wheelhouse")"
  rm -rf "$wheelhouse"
  mv "$tmp" "$wheelhouse"
  trap - EXIT
fi
# The build context needs the wheels inside app/; hard links when possible, copies otherwise.
rm -rf "$app/.wheelhouse"
mkdir -p "$app/.wheelhouse"
cp -l "$wheelhouse"/*.whl "$app/.wheelhouse/" 2>/dev/null || cp "$wheelhouse"/*.whl "$app/.wheelhouse/"

# --- images --------------------------------------------------------------------------------------
base_id() { [ -n "$base" ] && docker image inspect -f '{{.Id}}' "$base" 2>/dev/null || echo "${base:-dockerfile-default}"; }

recipe_hash() { # dockerfile context -> hash of everything the build reads
  local dockerfile=$1 context=$2
  {
    echo "$version $(base_id)"
    sha256sum "$dockerfile"
    (cd "$context" && find . -type f -not -path '*/__pycache__/*' -not -name '*.pyc' \( -path './imagehost/*' \
      -o -path './.wheelhouse/*' -o -name requirements.txt -o -path './static/*' -o -name nginx.conf.in \
      -o -name entrypoint.sh \) | LC_ALL=C sort | xargs sha256sum)
  } | sha256sum | cut -c1-16
}

build() { # name dockerfile context
  local name=$1 dockerfile=$2 context=$3 image want have start
  image=$prefix$name:$version
  want=$(recipe_hash "$dockerfile" "$context")
  have=$(docker image inspect -f '{{ index .Config.Labels "cloudvirt.recipe" }}' "$image" 2>/dev/null || true)
  if [ "$have" = "$want" ]; then
    log "$image is up to date (recipe $want)"
  else
    log "building $image (recipe $want)"
    local log_file
    log_file=$(mktemp --suffix=.log "/tmp/app-image-$name.XXXXXX")
    start=$SECONDS
    local args=(build -f "$dockerfile" -t "$image" --label "cloudvirt.recipe=$want" --build-arg "APP_VERSION=$version")
    if [ -n "$base" ]; then args+=(--build-arg "BASE_IMAGE=$base"); fi
    # Show each Dockerfile step as it starts; keep the full output for failures.
    docker "${args[@]}" "$context" >"$log_file" 2>&1 &
    local pid=$! rc=0
    tail -n +1 -f --pid="$pid" "$log_file" | grep --line-buffered -E '^Step [0-9]+/[0-9]+ : |^#[0-9]+ \['  \
      | while IFS= read -r line; do log "  $name: ${line:0:100}"; done || true
    wait "$pid" || rc=$?
    if (( rc != 0 )); then
      tail -25 "$log_file" >&2
      die "docker build of $image failed (log: $log_file)"
    fi
    rm -f "$log_file"
    log "built $image in $((SECONDS - start)) s"
  fi
  log "  $image: $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"
  echo "$image"
}

build backend "$app/backend/Dockerfile" "$app"
build worker "$app/worker/Dockerfile" "$app"
build frontend "$app/frontend/Dockerfile" "$app/frontend"
