#!/usr/bin/env bash
# Obtain the Consul, Nomad and MinIO binaries into a cache, once.
#
#   scripts/build-binaries.sh [consul|nomad|minio ...]     (default: consul nomad)
#
# Methods (CLOUDVIRT_BIN_METHOD):
#   build     compile from the Go module proxy (default; works offline of HashiCorp's site)
#   download  fetch the official release zip and verify it against SHA256SUMS (needs
#             releases.hashicorp.com; never used by CI or tests here)
#
# CLOUDVIRT_BIN_METADATA=cloudvirt.1 builds Consul and Nomad with that version metadata
# (`nomad version` says v1.11.3+cloudvirt.1): a second, different binary of the same release,
# which the upgrade test rolls out (a relink; the compiled packages come from Go's cache).
#
# Result: ${CLOUDVIRT_CACHE:-~/.cache/cloudvirt}/bin/<name>-<version>[+<metadata>], printed one
# per line on stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/versions.env
. "$here/versions.env"
cache=${CLOUDVIRT_CACHE:-$HOME/.cache/cloudvirt}
bindir=$cache/bin
method=${CLOUDVIRT_BIN_METHOD:-build}
metadata=${CLOUDVIRT_BIN_METADATA:-}
suffix=${metadata:++$metadata}
mkdir -p "$bindir"
tmproot=$(mktemp -d)
trap 'rm -rf "$tmproot"' EXIT

log() { printf '[build-binaries %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# go mod download a module and copy its (read-only) tree into a writable directory.
fetch_module() { # module@version dest
  local json dir
  json=$(GOFLAGS=-mod=mod go mod download -json "$1") || die "go mod download $1 failed: $json"
  dir=$(printf '%s' "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or ""); sys.exit(1 if d.get("Error") else 0)') \
    || die "go mod download $1: $(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("Error"))')"
  mkdir -p "$2"
  cp -a "$dir/." "$2/"
  chmod -R u+w "$2"
}

go_build() { # srcdir out ldflags
  log "compiling $(basename "$2") (CGO_ENABLED=0, -trimpath; several minutes on 2 cores)"
  local start=$SECONDS
  (cd "$1" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w $3" -o "$2.tmp" .) \
    || die "go build failed in $1"
  mv "$2.tmp" "$2"
  log "built $(basename "$2") in $((SECONDS - start)) s"
}

build_consul() {
  local out=$bindir/consul-$CONSUL_VERSION$suffix work
  work=$(mktemp -d "$tmproot/XXXXXX")
  log "fetching github.com/hashicorp/consul@v$CONSUL_VERSION"
  fetch_module "github.com/hashicorp/consul@v$CONSUL_VERSION" "$work/src"
  # Nested modules are absent from the module zip; add each at the version go.mod requires.
  local mod ver
  for mod in api sdk proto-public envoyextensions troubleshoot; do
    ver=$(printf '%s\n' ${CONSUL_NESTED_VERSIONS:-} | awk -F= -v m="$mod" '$1==m {print $2}')
    [ -n "$ver" ] || ver=$(awk -v m="github.com/hashicorp/consul/$mod" '$1==m && $2 ~ /^v/ {print $2; exit}' "$work/src/go.mod")
    [ -n "$ver" ] || die "cannot find the version of consul/$mod in go.mod"
    log "  nested module consul/$mod@$ver"
    rm -rf "${work:?}/src/$mod"
    fetch_module "github.com/hashicorp/consul/$mod@$ver" "$work/src/$mod"
  done
  go_build "$work/src" "$out" "-X github.com/hashicorp/consul/version.GitCommit=v$CONSUL_VERSION${metadata:+ -X github.com/hashicorp/consul/version.VersionMetadata=$metadata}"
}

build_nomad() {
  local out=$bindir/nomad-$NOMAD_VERSION$suffix work
  work=$(mktemp -d "$tmproot/XXXXXX")
  log "fetching github.com/hashicorp/nomad@v$NOMAD_VERSION"
  fetch_module "github.com/hashicorp/nomad@v$NOMAD_VERSION" "$work/src"
  log "  nested module nomad/api@$NOMAD_API_VERSION"
  rm -rf "${work:?}/src/api"
  fetch_module "github.com/hashicorp/nomad/api@$NOMAD_API_VERSION" "$work/src/api"
  go_build "$work/src" "$out" "-X github.com/hashicorp/nomad/version.GitCommit=v$NOMAD_VERSION${metadata:+ -X github.com/hashicorp/nomad/version.VersionMetadata=$metadata}"
}

build_minio() {
  local out=$bindir/minio-$MINIO_VERSION work
  work=$(mktemp -d "$tmproot/XXXXXX")
  log "fetching github.com/minio/minio@$MINIO_VERSION"
  fetch_module "github.com/minio/minio@$MINIO_VERSION" "$work/src"
  go_build "$work/src" "$out" ""
}

download_hashicorp() { # name version
  local name=$1 ver=$2 arch work base url
  arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
  work=$(mktemp -d "$tmproot/XXXXXX")
  base="https://releases.hashicorp.com/$name/$ver"
  url="$base/${name}_${ver}_linux_${arch}.zip"
  log "downloading $url"
  curl -fsSL --retry 3 -o "$work/$name.zip" "$url" || die "download of $url failed (no internet? use CLOUDVIRT_BIN_METHOD=build)"
  curl -fsSL --retry 3 -o "$work/SHA256SUMS" "$base/${name}_${ver}_SHA256SUMS" || die "download of SHA256SUMS failed"
  (cd "$work" && grep "_linux_${arch}.zip" SHA256SUMS | sed "s/ .*_linux_${arch}.zip/  $name.zip/" | sha256sum -c -) \
    || die "checksum mismatch for $url"
  python3 -c 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' "$work/$name.zip" "$name" "$work"
  install -m 0755 "$work/$name" "$bindir/$name-$ver"
}

obtain() { # name
  local name=$1 ver out
  case $name in
    consul) ver=$CONSUL_VERSION$suffix ;;
    nomad) ver=$NOMAD_VERSION$suffix ;;
    minio) [ -z "$metadata" ] || die "CLOUDVIRT_BIN_METADATA applies to consul and nomad only"; ver=$MINIO_VERSION ;;
    *) die "unknown binary '$name' (expected consul, nomad or minio)" ;;
  esac
  out=$bindir/$name-$ver
  if [ -x "$out" ]; then
    log "$name $ver: cached at $out"
  else
    command -v go >/dev/null || [ "$method" = download ] || die "Go is required to build $name (or set CLOUDVIRT_BIN_METHOD=download)"
    if [ "$method" = download ] && [ "$name" != minio ]; then
      [ -z "$metadata" ] || die "CLOUDVIRT_BIN_METADATA needs CLOUDVIRT_BIN_METHOD=build"
      download_hashicorp "$name" "$ver"
    else
      "build_$name"
    fi
  fi
  echo "$out"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(consul nomad)
for t in "${targets[@]}"; do obtain "$t"; done
