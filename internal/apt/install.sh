#!/bin/sh
# Usage: internal/apt/install.sh CALLER PACKAGE...
# The one place the install-deps scripts call apt-get: as root or through sudo, waiting up
# to 10 minutes for another apt or dpkg to release its lock (parallel jobs on one machine
# install at the same time), and updating the package lists once when the install fails
# on a missing or stale list. CALLER names the script in messages.
set -eu

caller=${1:?usage: install.sh CALLER PACKAGE...}
shift
[ $# -gt 0 ] || exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "$caller: need root to install: $*" >&2
		exit 1
	fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "$caller: no apt-get here; install with your package manager: $*" >&2
	exit 1
fi

apt() {
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@"
}

echo "$caller: installing $*"
if ! apt install -y --no-install-recommends "$@"; then
	apt update
	apt install -y --no-install-recommends "$@"
fi
