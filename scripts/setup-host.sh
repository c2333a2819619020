#!/usr/bin/env bash
# Prepare a Debian 12 machine to run the tradehub tests: the apt packages they use,
# podman's engine settings, and the systemd base image that Molecule's test hosts
# start from. Runs as root; every step checks whether it is already done, so running
# the script again changes nothing.
#
# Usage: scripts/setup-host.sh [--packages-only | --image-only]
#   --packages-only  install the apt packages and podman's settings, no image
#   --image-only     build the base image only (the packages must already be there)
#
# Environment:
#   TRADEHUB_HOST_IMAGE  name of the base image (default localhost/tradehub-host:bookworm)
#
# The distribution's own postgresql, redis-server and nginx services are left as the
# packages set them up: the tests start their own instances on free loopback ports and
# never use the system ones, so a running system service does not get in their way.
set -Eeuo pipefail

HOST_IMAGE="${TRADEHUB_HOST_IMAGE:-localhost/tradehub-host:bookworm}"
SUITE="bookworm"
CONTAINERS_CONF="/etc/containers/containers.conf"
LOCAL_CA_DIR="/usr/local/share/ca-certificates"
RECIPE_LABEL="io.tamyla.tradehub.recipe"

# Packages the tests need on this machine. Installed without recommends so that no
# unrelated daemon (prometheus-node-exporter, for one) comes along.
PACKAGES=(
    # Molecule test hosts: podman with runc (crun fails on this kernel's cgroups)
    podman runc conmon catatonit netavark aardvark-dns containernetworking-plugins
    iptables uidmap slirp4netns fuse-overlayfs
    # Base image build
    debootstrap ca-certificates tar
    # Services the tests start on loopback, and promtool for the alert rules
    postgresql redis-server nginx prometheus
    # The toolchain virtualenv
    python3 python3-venv
)

# Packages inside the base image, on top of debootstrap's minbase variant.
IMAGE_PACKAGES=(
    systemd systemd-sysv dbus python3 python3-venv python3-apt sudo ca-certificates
    iproute2 procps curl
)

log() { printf '==> %s\n' "$*"; }
# Only steps that change the machine need root: a developer whose machine is already
# set up can run the tests as any user.
need_root() {
    [[ "$(id -u)" == 0 ]] || die "run as root $1 (sudo $0)"
}
die() {
    printf 'setup-host: error: %s\n' "$*" >&2
    exit 1
}
trap 'die "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

usage() {
    sed -n '7,10p' "$0" | sed 's/^# \{0,1\}//'
}

# --- a. apt packages ---------------------------------------------------------------

package_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

install_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        log "apt packages: all ${#PACKAGES[@]} already installed"
        return
    fi
    log "apt packages: installing ${missing[*]}"
    need_root "to install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || die "apt-get update failed: check the mirrors in /etc/apt/sources.list.d/"
    apt-get install -y -q --no-install-recommends "${missing[@]}" \
        || die "apt-get install failed for: ${missing[*]}"
}

# --- b. podman engine settings -----------------------------------------------------

# Check the needed keys in containers.conf, add the missing ones (next to an existing
# table header, or in a new table), refuse to overwrite a key that has another value.
configure_containers() {
    mkdir -p "$(dirname "$CONTAINERS_CONF")"
    python3 - "$CONTAINERS_CONF" <<'PY' || die "could not configure $CONTAINERS_CONF"
"""Merge the settings the tests need into containers.conf without clobbering it."""
import shutil
import sys
import tomllib
from pathlib import Path

path = Path(sys.argv[1])
needed = {
    ("containers", "default_ulimits"): ["nofile=1024:1024", "nproc=4096:4096"],
    ("engine", "runtime"): "runc",
}


def render(value):
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return f'"{value}"'


text = path.read_text() if path.exists() else ""
try:
    current = tomllib.loads(text)
except tomllib.TOMLDecodeError as exc:
    sys.exit(f"{path} is not valid TOML ({exc}); fix or remove it and run again")

missing = []
for (table, key), value in needed.items():
    have = current.get(table, {}).get(key)
    if have is None:
        missing.append((table, key, value))
    elif have != value:
        sys.exit(
            f"{path}: [{table}] {key} is {have!r}, the tests need {value!r}; "
            "change it by hand (podman fails here with other values) and run again"
        )

if not missing:
    print(f"==> {path}: runtime and default_ulimits already set")
    sys.exit(0)

lines = text.splitlines()
for table, key, value in missing:
    entry = f"{key} = {render(value)}"
    header = next(
        (i for i, line in enumerate(lines) if line.strip() == f"[{table}]"), None
    )
    if header is None:
        lines += ["", f"[{table}]", entry]
    else:
        lines.insert(header + 1, entry)
new_text = "\n".join(lines).lstrip("\n") + "\n"
tomllib.loads(new_text)
if path.exists():
    shutil.copy2(path, f"{path}.orig")
    print(f"==> {path}: kept the previous file as {path}.orig")
path.write_text(new_text)
names = ", ".join(f"[{t}] {k}" for t, k, _ in missing)
print(f"==> {path}: added {names}")
PY
}

# --- c. base image for Molecule hosts ---------------------------------------------

# The repository URI apt uses for a suite, from the machine's own apt sources.
apt_mirror() {
    # shellcheck disable=SC2016 # apt's own $(FIELD) placeholders
    apt-get indextargets --format '$(RELEASE) $(COMPONENT) $(REPO_URI)' \
        'Identifier: Packages' 2>/dev/null |
        awk -v suite="$1" '$1 == suite && $2 == "main" { print $3; exit }'
}

# Prepare the unpacked root file system for use as a container running systemd.
customise_rootfs() {
    local rootfs="$1" mirror="$2" security="$3" updates="$4"
    {
        echo "deb $mirror $SUITE main"
        [[ -z "$updates" ]] || echo "deb $updates $SUITE-updates main"
        [[ -z "$security" ]] || echo "deb $security $SUITE-security main"
    } >"$rootfs/etc/apt/sources.list"
    # This machine's extra CA certificates, so that TLS from the host works here too.
    if compgen -G "$LOCAL_CA_DIR/*.crt" >/dev/null; then
        cp "$LOCAL_CA_DIR"/*.crt "$rootfs/usr/local/share/ca-certificates/"
    fi
    local output
    output="$(chroot "$rootfs" update-ca-certificates 2>&1)" ||
        die "update-ca-certificates failed in the image: $output"
    # Each container gets its own machine id at boot.
    : >"$rootfs/etc/machine-id"
    rm -f "$rootfs/var/lib/dbus/machine-id"
    # Units that only make sense on real hardware or a VM console.
    local unit
    for unit in getty@tty1.service systemd-remount-fs.service \
        systemd-firstboot.service console-getty.service; do
        ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
    done
    # A smaller image: apt fetches fresh lists on the test host. The lists directory
    # is dated 1970 so that "update the cache unless it is recent" does update it.
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
    mkdir -p "$rootfs/var/lib/apt/lists/partial"
    touch --date=@0 "$rootfs/var/lib/apt/lists"
}

# Everything that decides the image's content; its hash is stored as a label.
image_recipe() {
    printf 'suite=%s\npackages=%s\n' "$SUITE" "${IMAGE_PACKAGES[*]}"
    declare -f customise_rootfs build_image
    if compgen -G "$LOCAL_CA_DIR/*.crt" >/dev/null; then
        sha256sum "$LOCAL_CA_DIR"/*.crt
    fi
}

build_image() {
    local recipe_hash current mirror security updates rootfs previous=""
    recipe_hash="$(image_recipe | sha256sum | cut -d' ' -f1)"
    if podman image exists "$HOST_IMAGE"; then
        previous="$(podman image inspect --format '{{.Id}}' "$HOST_IMAGE")"
        current="$(podman image inspect --format "{{ index .Labels \"$RECIPE_LABEL\" }}" \
            "$HOST_IMAGE")"
        if [[ "$current" == "$recipe_hash" ]]; then
            log "image $HOST_IMAGE: already built from the current recipe"
            return
        fi
        log "image $HOST_IMAGE: recipe changed, rebuilding"
    else
        log "image $HOST_IMAGE: building"
    fi
    command -v debootstrap >/dev/null || die "debootstrap is missing: run without --image-only"
    mirror="$(apt_mirror "$SUITE")"
    [[ -n "$mirror" ]] || die "no Debian mirror for '$SUITE main' in /etc/apt/sources.list{,.d}"
    updates="$(apt_mirror "$SUITE-updates")"
    security="$(apt_mirror "$SUITE-security")"
    rootfs="$(mktemp -d /var/tmp/tradehub-rootfs.XXXXXX)"
    # shellcheck disable=SC2064 # expand now: the path is local to this function
    trap "rm -rf '$rootfs'" EXIT
    log "debootstrap $SUITE from $mirror into $rootfs"
    need_root "to build the image $HOST_IMAGE"
    debootstrap --variant=minbase --include="$(IFS=,; echo "${IMAGE_PACKAGES[*]}")" \
        "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
        tail -n 20 "$rootfs.log" >&2
        die "debootstrap failed (log above, full log in $rootfs.log)"
    }
    rm -f "$rootfs.log"
    log "customising the root file system"
    customise_rootfs "$rootfs" "$mirror" "$security" "$updates"
    log "importing the root file system as $HOST_IMAGE"
    tar --numeric-owner -C "$rootfs" -c . |
        podman import --quiet \
            --change 'CMD ["/sbin/init"]' \
            --change 'STOPSIGNAL SIGRTMIN+3' \
            --change "LABEL $RECIPE_LABEL=$recipe_hash" \
            - "$HOST_IMAGE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
    if [[ -n "$previous" ]]; then
        podman image rm "$previous" >/dev/null 2>&1 ||
            log "previous image ${previous:0:12} is still used by a container; left in place"
    fi
    log "image $HOST_IMAGE: built ($(podman image inspect --format '{{.Size}}' "$HOST_IMAGE") bytes)"
}

main() {
    local packages=true image=true
    case "${1:-}" in
    "") ;;
    --packages-only) image=false ;;
    --image-only) packages=false ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        die "unknown argument '$1'"
        ;;
    esac
    if "$packages"; then
        install_packages
        configure_containers
    fi
    if "$image"; then
        command -v podman >/dev/null || die "podman is missing: run without --image-only"
        build_image
    fi
    log "setup-host: done"
}

main "$@"
