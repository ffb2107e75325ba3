#!/usr/bin/env bash
# Everything the host tests need outside the venv, installed when missing (idempotent, fast when done):
#   - Krita 5.1.5 from this machine's Debian (bookworm), with Xvfb;
#   - systemd-analyze, to verify the systemd user unit the installer writes;
#   - a cached Debian trixie root (~/.cache/renovate-faces/trixie-root) with GIMP 3.0 and Krita 5.2.
# Needs root (apt, debootstrap, chroot). `make hosts` runs it; so does .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
    echo "tests/hosts/prepare.sh needs root (apt-get, debootstrap, chroot); host tests will be skipped" >&2
    exit 77
fi
start=$(date +%s)
sh tests/krita/install_krita.sh
if ! command -v systemd-analyze >/dev/null; then
    echo "hosts: installing systemd (for systemd-analyze verify)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
bash tests/hosts/trixie_root.sh gimp krita
echo "hosts: ready in $(( $(date +%s) - start )) s"
