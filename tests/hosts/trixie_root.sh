#!/usr/bin/env bash
# Build (once) and cache a Debian trixie root where GIMP 3.0 and Krita 5.2 run, for the host tests.
#
#   bash tests/hosts/trixie_root.sh [gimp] [krita]     # prints the root's path on the last line
#
# Why a chroot: GIMP 3.0 needs libc >= 2.38 and the build machines run bookworm (2.36).
# Why outside the clone: CI clones afresh; the root (~0.7-1.6 GB) lives in ~/.cache/renovate-faces/
# (override with RENOVATE_TRIXIE_ROOT) and is reused by every later run.
#
# Idempotent and safe to run from two sessions at once:
#   - a lock (flock) serialises builders; the second waits, then finds the work done;
#   - marker files say what finished: `.renovate-base-ok` after debootstrap, `.renovate-host-NAME-ok`
#     (holding the package list) after a host's packages. A root without the base marker is a half-built one
#     and is rebuilt from scratch; a host whose marker is missing or lists other packages is (re)installed.
# Needs root (debootstrap, chroot, mount). Mounts proc/dev/sys only while apt runs, and always unmounts them.
set -euo pipefail

CACHE_DIR="${RENOVATE_CACHE_DIR:-$HOME/.cache/renovate-faces}"
ROOT="${RENOVATE_TRIXIE_ROOT:-$CACHE_DIR/trixie-root}"
MIRROR="${RENOVATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_MARKER="$ROOT/.renovate-base-ok"

packages_for() {
    case "$1" in
        # xvfb, xauth and xdotool: the GUI test (tests/test_gimp_gui.py) drives the real dialog under Xvfb.
        gimp) echo "gimp python3-gi python3-zmq python3-msgpack xvfb xauth xdotool" ;;
        # python3-pyqt5 is only a Recommends of krita, but without it Krita has no Python (no plug-ins).
        krita) echo "krita python3-pyqt5 xvfb xauth python3-zmq python3-msgpack" ;;
        *) echo "unknown host '$1': expected gimp or krita" >&2; return 2 ;;
    esac
}

log() { printf '[trixie_root %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

for host in "$@"; do packages_for "$host" >/dev/null; done

if [ "$(id -u)" != 0 ]; then
    echo "trixie_root.sh needs root (debootstrap and chroot); run it with sudo or as root in CI" >&2
    exit 77
fi

mkdir -p "$CACHE_DIR" "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
if ! flock -n 9; then
    log "another session is building $ROOT; waiting for it"
    flock 9
fi

# A host's marker holds its package list: when the list changes here, the next run installs the difference.
host_done() { [ "$(cat "$ROOT/.renovate-host-$1-ok" 2>/dev/null)" = "$(packages_for "$1")" ]; }

all_done=1
[ -f "$BASE_MARKER" ] || all_done=0
for host in "$@"; do host_done "$host" || all_done=0; done
if [ "$all_done" = 1 ]; then
    log "cached root is ready: $ROOT"
    echo "$ROOT"
    exit 0
fi

MOUNTED=()
unmount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount -l "${MOUNTED[$i]}" 2>/dev/null || true
    done
    MOUNTED=()
}
trap unmount_all EXIT
trap 'exit 130' INT TERM HUP  # so that the EXIT trap unmounts on a kill too
unmount_stale() {  # left by a run killed with -9
    local what
    for what in dev/pts dev sys proc; do umount -l "$ROOT/$what" 2>/dev/null || true; done
}

mount_for_apt() {
    local what
    for what in proc sys dev dev/pts; do
        mkdir -p "$ROOT/$what"
        mountpoint -q "$ROOT/$what" && continue
        # A container without mount rights still gets through most installs without these: warn, go on.
        if [ "$what" = proc ]; then
            mount -t proc proc "$ROOT/proc" || { log "warning: cannot mount proc in the root"; continue; }
        else
            mount --bind "/$what" "$ROOT/$what" || { log "warning: cannot bind-mount /$what"; continue; }
        fi
        MOUNTED+=("$ROOT/$what")
    done
}

if [ ! -f "$BASE_MARKER" ]; then
    if [ -e "$ROOT" ]; then
        log "found a half-built root (no $(basename "$BASE_MARKER")): removing it"
        unmount_stale
        rm -rf --one-file-system "$ROOT"
    fi
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap on the host"
        # Another apt on the host (a parallel session) holds the dpkg lock: wait for it instead of failing.
        local_apt=(apt-get -o DPkg::Lock::Timeout=600 -y -q)
        DEBIAN_FRONTEND=noninteractive "${local_apt[@]}" install debootstrap >/dev/null ||
            { "${local_apt[@]}" update >/dev/null &&
                DEBIAN_FRONTEND=noninteractive "${local_apt[@]}" install debootstrap >/dev/null; }
    fi
    log "debootstrap trixie into $ROOT (about 1.5 min)"
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 ||
        { tail -n 30 "$ROOT.debootstrap.log" >&2; echo "debootstrap failed; see $ROOT.debootstrap.log" >&2; exit 1; }
    # Faster, quieter installs: no fsync per file, no daemons started, no docs or translations.
    echo force-unsafe-io >"$ROOT/etc/dpkg/dpkg.cfg.d/renovate-unsafe-io"
    cat >"$ROOT/etc/dpkg/dpkg.cfg.d/renovate-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/gimp/3.0/help/*
EOF
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
    chmod +x "$ROOT/usr/sbin/policy-rc.d"
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$ROOT/etc/apt/apt.conf.d/99renovate"
    touch "$BASE_MARKER"
fi

cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
updated=0
for host in "$@"; do
    host_done "$host" && continue
    marker="$ROOT/.renovate-host-$host-ok"
    rm -f "$marker"
    if [ "$updated" = 0 ]; then
        unmount_stale
        mount_for_apt
        log "apt-get update in the root"
        chroot "$ROOT" dpkg --configure -a  # finishes an install that a killed run left half-done
        chroot "$ROOT" apt-get update -q >/dev/null
        updated=1
    fi
    # shellcheck disable=SC2046
    log "installing $host: $(packages_for "$host")"
    DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get install -y -q --no-install-recommends \
        $(packages_for "$host") >"$ROOT.$host.log" 2>&1 ||
        { tail -n 30 "$ROOT.$host.log" >&2; echo "installing $host failed; see $ROOT.$host.log" >&2; exit 1; }
    chroot "$ROOT" apt-get clean
    packages_for "$host" >"$marker"
done
unmount_all
log "root ready: $ROOT ($(du -sh --one-file-system "$ROOT" 2>/dev/null | cut -f1))"
echo "$ROOT"
