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

# shellcheck disable=SC2086 # the package list is meant to split
exec "$(dirname "$0")/../../internal/apt/install.sh" lab/qemu/install-deps.sh $missing
