#!/bin/sh
# Installs Debian's 64-bit wine, which TestAgentUnderWine (guest/wine_test.go) runs the
# real x64 agent under. Only what is missing; measured 47 s on a 2-core machine with
# fresh package lists. wine32 (the i386 architecture) is not installed: it would add a
# foreign architecture and about a minute for the x86 binaries alone.
set -eu

if command -v wine64 >/dev/null 2>&1 || [ -x /usr/lib/wine/wine64 ]; then
	echo "guest/install-wine.sh: wine64 is installed"
	exit 0
fi
exec "$(dirname "$0")/../internal/apt/install.sh" guest/install-wine.sh wine64
