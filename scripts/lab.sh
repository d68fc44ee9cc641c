#!/usr/bin/env bash
# The local lab: N systemd "VMs" (containers) on one docker network, reached over SSH like
# real VMs, converged by playbooks/deploy.yml.
#
#   scripts/lab.sh up        build what is missing, create the nodes, run the playbook
#   scripts/lab.sh destroy   remove the nodes, their volumes and the network
#   scripts/lab.sh status    what runs where
#   LAB_NODES=4 scripts/lab.sh add-node   one more node, joined with playbooks/add_node.yml
#
# Environment: LAB_NODES (default 3), LAB_SUBNET_PREFIX (default 172.30.0), LAB_PLAYBOOK.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=lab
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

NODES=${LAB_NODES:-3}
PREFIX=${LAB_SUBNET_PREFIX:-172.30.0}
NETWORK=${LAB_NETWORK:-cloudvirt-lab}
NAME_PREFIX=${LAB_NAME_PREFIX:-lab-}
VIP=${LAB_VIP:-$PREFIX.100}
IMAGE=${CLOUDVIRT_NODE_IMAGE:-cloudvirt/node:bookworm}
INVENTORY=inventories/lab
KEY_DIR=$CLOUDVIRT_CACHE/lab
PLAYBOOK=${LAB_PLAYBOOK:-playbooks/deploy.yml}

node_ip() { echo "$PREFIX.$((10 + $1))"; }
INFRA_IP=$PREFIX.20
# The infra node's registry, published on the controller's loopback so its Docker pushes to
# it without an insecure-registry setting (loopback registries are trusted as they are).
REGISTRY_PORT=${LAB_REGISTRY_PORT:-15000}

# The flags that let systemd boot as PID 1 without --privileged (which fails on these hosts).
node_run_flags() {
  echo --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW --cap-add NET_BROADCAST \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
    --tmpfs /tmp:exec
}

ensure_network() {
  if ! docker network inspect "$NETWORK" >/dev/null 2>&1; then
    log "creating docker network $NETWORK ($PREFIX.0/24)"
    docker network create --subnet "$PREFIX.0/24" --gateway "$PREFIX.1" "$NETWORK" >/dev/null
  fi
}

# The password of the vaulted token file (Consul and Nomad management and deploy tokens): made
# once, readable by this user only, never in the repository.
ensure_vault_password() {
  mkdir -p "$KEY_DIR" && chmod 700 "$KEY_DIR"
  if [ ! -s "$KEY_DIR/vault-pass" ]; then
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$KEY_DIR/vault-pass")
    log "generated the lab's vault password in $KEY_DIR/vault-pass"
  fi
}

# A token from the vaulted file, printed on stdout (only ever piped, never logged).
lab_token() { # key
  ansible-vault view --vault-password-file "$KEY_DIR/vault-pass" "$KEY_DIR/secrets.vault.yml" 2>/dev/null |
    sed -n "s/^$1: *//p"
}

ensure_ssh_key() {
  mkdir -p "$KEY_DIR"
  [ -f "$KEY_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C cloudvirt-lab -f "$KEY_DIR/id_ed25519"
}

ensure_node() { # index
  local i=$1 name="${NAME_PREFIX}node$1" ip
  ip=$(node_ip "$i")
  if [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ]; then
    log "node $name ($ip) is running"
  else
    docker rm -f "$name" >/dev/null 2>&1 || true
    log "starting node $name at $ip"
    # shellcheck disable=SC2046
    docker run -d --name "$name" --hostname "node$i" --label cloudvirt.lab=1 \
      $(node_run_flags) -v "${name}-docker:/var/lib/docker" \
      --network "$NETWORK" --ip "$ip" "$IMAGE" >/dev/null
  fi
  # SSH like a real VM: the lab key, installed into root's authorized_keys.
  local j
  for j in $(seq 1 30); do
    docker exec "$name" systemctl is-system-running 2>/dev/null | grep -Eq 'running|degraded' && break
    sleep 1
  done
  docker exec -i "$name" sh -c 'mkdir -p /root/.ssh && chmod 700 /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys' \
    <"$KEY_DIR/id_ed25519.pub"
  docker exec "$name" systemctl start ssh
}

# The app's broker (RabbitMQ), object storage (MinIO) and image registry, on a node of their own
# (users may use managed services instead: they leave the broker and storage groups empty).
ensure_infra() {
  local name="${NAME_PREFIX}infra" j
  if [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ]; then
    log "node $name ($INFRA_IP) is running"
  else
    docker rm -f "$name" >/dev/null 2>&1 || true
    log "starting node $name at $INFRA_IP (broker, storage, registry)"
    # shellcheck disable=SC2046
    docker run -d --name "$name" --hostname infra --label cloudvirt.lab=1 \
      $(node_run_flags) -v "${name}-data:/srv" -p "127.0.0.1:$REGISTRY_PORT:5000" \
      --network "$NETWORK" --ip "$INFRA_IP" "$IMAGE" >/dev/null
  fi
  for j in $(seq 1 30); do
    docker exec "$name" systemctl is-system-running 2>/dev/null | grep -Eq 'running|degraded' && break
    sleep 1
  done
  docker exec -i "$name" sh -c 'mkdir -p /root/.ssh && chmod 700 /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys' \
    <"$KEY_DIR/id_ed25519.pub"
  docker exec "$name" systemctl start ssh
}

# The lab's secrets (MinIO root password, broker password), generated once into an Ansible
# Vault file whose password file lives with the lab's SSH key (0600); never in plain text.
ensure_vault() {
  local vault=$INVENTORY/group_vars/all/vault.yml
  VAULT_PASS=$KEY_DIR/vault-pass  # made by ensure_vault_password
  mkdir -p "$(dirname "$vault")"
  if [ ! -s "$vault" ] || ! ansible-vault view --vault-password-file "$VAULT_PASS" "$vault" >/dev/null 2>&1; then
    log "generating the lab's secrets into $vault (Ansible Vault)"
    # The file is written 0600 in a subshell's umask, like ensure_vault_password's: the
    # caller's umask is left alone.
    {
      echo "---"
      echo "vault_minio_root_password: $(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
      echo "vault_broker_password: $(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
    } | (umask 077 && ansible-vault encrypt --vault-password-file "$VAULT_PASS" --output "$vault" - >/dev/null)
  fi
  export ANSIBLE_VAULT_PASSWORD_FILE=$VAULT_PASS
}

write_inventory() {
  local consul_bin=$1 nomad_bin=$2 minio_bin=$3 i
  mkdir -p "$INVENTORY/group_vars/all"
  rm -f "$INVENTORY/group_vars/all.yml"  # older labs: a file would be ignored next to the directory
  {
    echo "---"
    echo "# Written by scripts/lab.sh; do not edit (make lab rewrites it)."
    echo "all:"
    echo "  hosts:"
    for i in $(seq 1 "$NODES"); do
      echo "    node$i:"
      echo "      ansible_host: $(node_ip "$i")"
    done
    echo "    infra:"
    echo "      ansible_host: $INFRA_IP"
    echo "  children:"
    for g in broker storage registry; do
      echo "    $g:"
      echo "      hosts:"
      echo "        infra: {}"
    done
    for g in consul_servers nomad_servers; do
      echo "    $g:"
      echo "      hosts:"
      for i in $(seq 1 $((NODES < 3 ? NODES : 3))); do echo "        node$i: {}"; done
    done
    for g in consul_clients nomad_clients edge; do
      echo "    $g:"
      echo "      hosts:"
      for i in $(seq 1 "$NODES"); do echo "        node$i: {}"; done
    done
  } >"$INVENTORY/hosts.yml"
  cat >"$INVENTORY/group_vars/all/main.yml" <<EOF
---
# Written by scripts/lab.sh; do not edit (make lab rewrites it).
ansible_user: root
ansible_ssh_private_key_file: $KEY_DIR/id_ed25519
ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
ansible_python_interpreter: /usr/bin/python3

# Binaries built by scripts/build-binaries.sh (no HashiCorp site here).
consul_install_method: binary
consul_binary_src: $consul_bin
nomad_install_method: binary
nomad_binary_src: $nomad_bin
# Debian's mirror is reachable from the lab; Docker's repository is not.
docker_package_source: docker.io
# The floating IP (roles keepalived and haproxy).
keepalived_vip: $VIP
# HTTPS on it with a certificate per edge node from the lab's CA (curl --cacert $KEY_DIR/pki/ca.pem
# https://$VIP/); plain HTTP keeps serving, without a redirect: the benchmarks, make e2e and the
# examples use it (docs/edge.md).
cloudvirt_edge_tls_internal: true
haproxy_tls_redirect: false

# The app's infrastructure on the infra node. Secrets come from group_vars/all/vault.yml.
minio_install_method: binary
minio_binary_src: $minio_bin
minio_root_user: imagehost
minio_root_password: "{{ vault_minio_root_password }}"
rabbitmq_vhosts: [imagehost]
rabbitmq_users:
  - name: imagehost
    password: "{{ vault_broker_password }}"
    vhost: imagehost
    configure: ".*"
    write: ".*"
    read: ".*"

# The app: images pushed by the controller to the infra node's registry (through the
# published loopback port), pulled from it by the nodes.
docker_insecure_registries: ["$INFRA_IP:5000"]
app_registry: "$INFRA_IP:5000"
app_push_registry: "127.0.0.1:$REGISTRY_PORT"
app_s3_endpoint: http://$INFRA_IP:9000
app_s3_access_key: imagehost
app_s3_secret_key: "{{ vault_minio_root_password }}"
app_broker_urls: ["amqp://$INFRA_IP:5672/imagehost"]
app_broker_user: imagehost
app_broker_password: "{{ vault_broker_password }}"
app_counts: {backend: 2, worker: 2, frontend: 2}
# Nested containers cannot exec into a task (no CAP_SYS_PTRACE here): no script check.
app_worker_script_check: false

# Secure defaults (docs/security.md): the CA, the node keys and the vaulted token file stay
# on this machine, in $KEY_DIR (mode 0700); the vault password was generated there.
cloudvirt_pki_dir: $KEY_DIR/pki
cloudvirt_secrets_file: $KEY_DIR/secrets.vault.yml
cloudvirt_vault_password: "{{ lookup('ansible.builtin.file', '$KEY_DIR/vault-pass') }}"
EOF
}

load_workload_images() {
  local i name
  for i in $(seq 1 "$NODES"); do
    name="${NAME_PREFIX}node$i"
    if ! docker exec "$name" docker image inspect cloudvirt/busybox:1 >/dev/null 2>&1; then
      docker save cloudvirt/busybox:1 | docker exec -i "$name" docker load -q >/dev/null
      log "loaded cloudvirt/busybox into $name"
    fi
  done
}

up() {
  local start=$SECONDS bins consul_bin nomad_bin i
  ensure_host_packages docker.io debootstrap openssh-client
  ensure_docker
  scripts/lab-image.sh
  bins=$(with_progress "obtaining Consul, Nomad and MinIO binaries" scripts/build-binaries.sh consul nomad minio)
  consul_bin=$(echo "$bins" | grep '/consul-')
  nomad_bin=$(echo "$bins" | grep '/nomad-')
  minio_bin=$(echo "$bins" | grep '/minio-')
  with_progress "building the app's images" scripts/app-images.sh >/dev/null
  ensure_network
  ensure_ssh_key
  ensure_vault_password
  for i in $(seq 1 "$NODES"); do ensure_node "$i"; done
  ensure_infra
  write_inventory "$consul_bin" "$nomad_bin" "$minio_bin"
  ensure_vault
  log "running scripts/lab/registry.yml (the infra node's image registry)"
  ansible-playbook -i "$INVENTORY" scripts/lab/registry.yml ${LAB_ANSIBLE_ARGS:-}
  log "running $PLAYBOOK on $NODES nodes and the infra node"
  ansible-playbook -i "$INVENTORY" "$PLAYBOOK" ${LAB_ANSIBLE_ARGS:-}
  load_workload_images
  log "lab ready in $((SECONDS - start)) s"
  status
}

# One more node in the running lab, through playbooks/add_node.yml (what an operator does):
#   LAB_NODES=4 scripts/lab.sh add-node      node4 joins; keep LAB_NODES=4 for later `make lab`
add_node() {
  local bins new=node$NODES
  [ "$NODES" -gt 3 ] || die "set LAB_NODES to the new node count, e.g. LAB_NODES=4 $0 add-node"
  docker inspect "${NAME_PREFIX}node1" >/dev/null 2>&1 || die "no lab to add to: run make lab first"
  bins=$(scripts/build-binaries.sh consul nomad minio)
  ensure_node "$NODES"
  write_inventory "$(echo "$bins" | grep '/consul-')" "$(echo "$bins" | grep '/nomad-')" "$(echo "$bins" | grep '/minio-')"
  ensure_vault
  log "running playbooks/add_node.yml -l $new"
  ansible-playbook -i "$INVENTORY" playbooks/add_node.yml -l "$new" ${LAB_ANSIBLE_ARGS:-}
  load_workload_images
}

destroy() {
  local c
  for c in $(docker ps -aq --filter label=cloudvirt.lab=1); do
    name=$(docker inspect -f '{{.Name}}' "$c" | tr -d /)
    docker rm -f "$c" >/dev/null && log "removed $name"
    docker volume rm "${name}-docker" "${name}-data" >/dev/null 2>&1 || true
  done
  docker network rm "$NETWORK" >/dev/null 2>&1 && log "removed network $NETWORK" || true
  rm -f "$INVENTORY/hosts.yml" "$INVENTORY/group_vars/all/main.yml" "$INVENTORY/group_vars/all/vault.yml"
  # The CA, node keys and tokens belonged to the removed nodes.
  rm -rf "$KEY_DIR/pki" "$KEY_DIR/secrets.vault.yml"
}

status() {
  local i ip
  echo
  echo "cloudvirt lab ($NETWORK, $PREFIX.0/24)"
  for i in $(seq 1 "$NODES"); do
    ip=$(node_ip "$i")
    printf '  node%-3s %-15s %s\n' "$i" "$ip" "$(docker inspect -f '{{.State.Status}}' "${NAME_PREFIX}node$i" 2>/dev/null || echo absent)"
  done
  ip=$(node_ip 1)
  echo
  echo "  Consul UI/API : https://$ip:8501/ui   (client certificate: $KEY_DIR/pki/cli.pem, cli-key.pem)"
  echo "  Nomad UI/API  : https://$ip:4646/ui   (CA: $KEY_DIR/pki/ca.pem)"
  if docker exec "${NAME_PREFIX}node1" systemctl is-active -q keepalived 2>/dev/null; then
    echo "  Floating IP   : http://$VIP/          (the app; upload: curl -F file=@photo.jpg http://$VIP/api/images)"
    if [ -s "$KEY_DIR/pki/nodes/node1/edge.pem" ]; then
      echo "  HTTPS         : https://$VIP/         (certificate from the lab's CA: curl --cacert $KEY_DIR/pki/ca.pem https://$VIP/)"
    fi
  fi
  if docker inspect "${NAME_PREFIX}infra" >/dev/null 2>&1; then
    echo "  Infra node    : $INFRA_IP  RabbitMQ :5672, MinIO :9000, registry :5000 (127.0.0.1:$REGISTRY_PORT here)"
    echo "  Lab secrets   : $INVENTORY/group_vars/all/vault.yml (ansible-vault view --vault-password-file $KEY_DIR/vault-pass ...)"
  fi
  echo "  SSH           : ssh -i $KEY_DIR/id_ed25519 root@$ip"
  echo "  Inventory     : $INVENTORY/hosts.yml"
  echo "  Tokens        : ansible-vault view --vault-password-file $KEY_DIR/vault-pass $KEY_DIR/secrets.vault.yml"
  if docker exec "${NAME_PREFIX}node1" true 2>/dev/null && [ -s "$KEY_DIR/secrets.vault.yml" ]; then
    echo
    # the management tokens travel on stdin, never on a command line
    lab_token consul_management_token | docker exec -i "${NAME_PREFIX}node1" sh -c \
      'CONSUL_HTTP_TOKEN=$(cat) CONSUL_HTTP_ADDR=https://127.0.0.1:8501 CONSUL_CACERT=/etc/consul.d/tls/ca.pem
       CONSUL_CLIENT_CERT=/etc/consul.d/tls/cert.pem CONSUL_CLIENT_KEY=/etc/consul.d/tls/key.pem
       export CONSUL_HTTP_TOKEN CONSUL_HTTP_ADDR CONSUL_CACERT CONSUL_CLIENT_CERT CONSUL_CLIENT_KEY; consul members' 2>/dev/null | sed 's/^/  /' || true
    echo
    lab_token nomad_management_token | docker exec -i "${NAME_PREFIX}node1" sh -c \
      'NOMAD_TOKEN=$(cat) NOMAD_ADDR=https://127.0.0.1:4646 NOMAD_CACERT=/etc/nomad.d/tls/ca.pem
       NOMAD_CLIENT_CERT=/etc/nomad.d/tls/cert.pem NOMAD_CLIENT_KEY=/etc/nomad.d/tls/key.pem
       export NOMAD_TOKEN NOMAD_ADDR NOMAD_CACERT NOMAD_CLIENT_CERT NOMAD_CLIENT_KEY; nomad node status' 2>/dev/null | sed 's/^/  /' || true
  fi
}

case ${1:-up} in
  up) up ;;
  destroy) destroy ;;
  status) status ;;
  add-node) add_node ;;
  *) die "usage: $0 up|destroy|status|add-node" ;;
esac
