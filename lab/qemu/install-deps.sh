#!/bin/sh
# Installs what the qemu provider and its tests need on Debian/Ubuntu: QEMU (x86 system
# emulator) and qemu-img. Installs only what is missing, so running it again does nothing;
# needs root (or sudo). Debian's kernel for appliances is fetched by wfplab itself
# (apt-get download, into the user's cache) when it first builds one.
set -eu

missing=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
command -v qemu-img >/dev/null 2>&1 || missing="$missing qemu-utils"
if [ -z "$missing" ]; then
	echo "lab/qemu/install-deps.sh: everything is installed"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "lab/qemu/install-deps.sh: need root to install:$missing" >&2
		exit 1
	fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "lab/qemu/install-deps.sh: no apt-get here; install$missing with your package manager" >&2
	exit 1
fi
echo "lab/qemu/install-deps.sh: installing$missing"
# An old package list may not have them: update once, then install.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing ||
	{ $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; }
