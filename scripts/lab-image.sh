#!/usr/bin/env bash
# Build the lab's images without any container registry:
#   cloudvirt/node:bookworm   a systemd "VM" (Debian 12, debootstrap + docker import)
#   cloudvirt/busybox:1       a tiny image (static busybox) for workloads inside the nodes
#                             (also tagged :latest; but Nomad always pulls a :latest image,
#                             and no registry exists here, so jobs use :1)
# Each image carries a label with the hash of its recipe and is rebuilt only when the recipe changes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
LOG_TAG=image
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

NODE_IMAGE=${CLOUDVIRT_NODE_IMAGE:-cloudvirt/node:bookworm}
BUSYBOX_IMAGE=${CLOUDVIRT_BUSYBOX_IMAGE:-cloudvirt/busybox:1}
SUITE=bookworm
MIRROR=${CLOUDVIRT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What a freshly provisioned cloud VM has: systemd, python3 for Ansible, sudo and sshd.
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-apt,iproute2,iputils-ping,procps,sudo,ca-certificates,curl,gnupg,iptables,kmod,openssh-server,less,lsb-release

recipe_hash() { # name -> hash of the inputs of that image (its build function and settings)
  { echo "$1"; [ "$1" = node ] && echo "$SUITE $MIRROR $PACKAGES"; declare -f "build_$1"; } | sha256sum | cut -c1-16
}

image_hash() { docker image inspect -f '{{ index .Config.Labels "cloudvirt.recipe" }}' "$1" 2>/dev/null || true; }

build_node() {
  local hash=$1 root
  root=$(mktemp -d /tmp/cloudvirt-rootfs.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  with_progress "debootstrapping Debian $SUITE (one to three minutes)" \
    sh -c 'debootstrap --variant=minbase --include="$1" "$2" "$3" "$4" >"$3.log" 2>&1' _ "$PACKAGES" "$SUITE" "$root" "$MIRROR" \
    || { tail -20 "$root.log" >&2; die "debootstrap failed (log: $root.log)"; }
  rm -f "$root.log"
  # systemd in a container: no getty, no udev triggers, no time sync fights with the host.
  chroot "$root" systemctl mask getty@tty1.service console-getty.service systemd-udevd.service \
    systemd-udev-trigger.service systemd-timesyncd.service systemd-resolved.service >/dev/null 2>&1 || true
  chroot "$root" systemctl enable ssh >/dev/null 2>&1 || true
  # The apt sources a VM would have, plus security updates.
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" >"$root/etc/apt/sources.list"
  echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/90cloudvirt-norecommends"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  # No package lists, and old enough that `apt: cache_valid_time` refreshes them (as on a VM).
  touch -d 2000-01-01 "$root/var/lib/apt/lists"
  : >"$root/etc/machine-id"
  with_progress "importing $NODE_IMAGE" sh -c \
    "tar -C '$root' -c . | docker import -c 'CMD [\"/lib/systemd/systemd\"]' -c 'LABEL cloudvirt.recipe=$hash' - '$NODE_IMAGE' >/dev/null"
}

build_busybox() {
  local hash=$1 root
  ensure_host_packages busybox-static
  root=$(mktemp -d /tmp/cloudvirt-busybox.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  mkdir -p "$root/bin" "$root/www" "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for app in sh httpd wget cat echo sleep hostname ls env; do ln -s busybox "$root/bin/$app"; done
  echo ok >"$root/www/index.html"
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' -c "LABEL cloudvirt.recipe=$hash" - "$BUSYBOX_IMAGE" >/dev/null
  docker tag "$BUSYBOX_IMAGE" "${BUSYBOX_IMAGE%:*}:latest"
  log "imported $BUSYBOX_IMAGE"
}

ensure_host_packages debootstrap
ensure_docker
for name in node busybox; do
  image=$NODE_IMAGE; [ "$name" = busybox ] && image=$BUSYBOX_IMAGE
  want=$(recipe_hash "$name")
  if [ "$(image_hash "$image")" = "$want" ]; then
    log "$image is up to date (recipe $want)"
  else
    log "building $image (recipe $want)"
    "build_$name" "$want"
  fi
done
