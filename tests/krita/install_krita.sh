#!/bin/sh
# Install Krita 5.1.5 (Debian bookworm) and what its headless tests need.
# Idempotent: returns in well under a second when everything is already there,
# so .ci/run can call it on every run.
set -eu
# python3-pyqt5 and python3-sip are only Recommends of krita, but without them Krita has no Python
# plug-ins at all; the other Recommends (G'MIC, QML multimedia) are not needed, so they are skipped.
PACKAGES="krita python3-pyqt5 python3-sip xvfb xauth python3-zmq python3-msgpack"
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "krita: already installed ($(dpkg-query -W -f='${Version}' krita))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "krita: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# apt-get update only when the package lists are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    $SUDO apt-get update -qq
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "krita: installed $(dpkg-query -W -f='${Version}' krita)"
