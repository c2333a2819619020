#!/usr/bin/env bash
# The all-in-one sandbox: a podman container running systemd, on which
# playbooks/site.yml installs the whole Private Trade Hub (inventories/sandbox/).
#
#   scripts/demo.sh up      create or start the sandbox and converge it
#   scripts/demo.sh down    remove the sandbox and its generated secrets
#
# `make demo` and `make demo-destroy` call it after installing the toolchain, the host
# image and the wheelhouse.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
name=tradehub-sandbox
image=${TRADEHUB_HOST_IMAGE:-localhost/tradehub-host:bookworm}
https_port=${TRADEHUB_SANDBOX_HTTPS_PORT:-8443}
inventory="$top/inventories/sandbox"
secrets="$inventory/secrets"

say() { printf 'demo: %s\n' "$*"; }

up() {
  if ! podman image exists "$image"; then
    say "image $image is missing: run 'make setup' first" >&2
    exit 1
  fi
  if ! podman container exists "$name"; then
    say "creating the sandbox host $name (gateway published on 127.0.0.1:$https_port)"
    # SYS_ADMIN and SYS_PTRACE let systemd apply the units' sandboxing as on a real
    # host (molecule/README.md explains why).
    podman run --detach --name "$name" --hostname "$name" \
      --systemd=always --cap-add SYS_ADMIN --cap-add SYS_PTRACE \
      --publish "127.0.0.1:$https_port:443" \
      "$image" /sbin/init >/dev/null
  elif [[ $(podman container inspect --format '{{.State.Running}}' "$name") != true ]]; then
    say "starting the sandbox host $name"
    podman start "$name" >/dev/null
  else
    say "sandbox host $name is running"
  fi
  say "waiting for systemd in $name"
  podman exec "$name" systemctl is-system-running --wait >/dev/null || true

  say "issuing the sandbox license (sandbox vendor key in $secrets/license)"
  "$top/.venv/bin/ansible-playbook" -i "$inventory" "$top/playbooks/sandbox_license.yml"

  say "installing the Private Trade Hub with playbooks/site.yml"
  "$top/.venv/bin/ansible-playbook" -i "$inventory" "$top/playbooks/site.yml"

  cat <<EOT

The sandbox is up. Each hub answers through the gateway over TLS, for example:

  curl --cacert $secrets/ca/ca.crt \\
       --resolve content.sandbox.test:$https_port:127.0.0.1 \\
       https://content.sandbox.test:$https_port/version

'make demo' again converges with no change; 'make demo-destroy' removes the sandbox.
EOT
}

down() {
  if podman container exists "$name"; then
    say "removing the sandbox host $name"
    podman rm --force --time 10 "$name" >/dev/null
  else
    say "no sandbox host $name"
  fi
  if [[ -d $secrets ]]; then
    say "removing the sandbox's generated secrets in $secrets"
    rm -rf "$secrets"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
