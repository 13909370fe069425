#!/bin/sh
# Installs what `make -C guest` needs on Debian/Ubuntu: the mingw-w64 cross
# compilers (x86 and x64), osslsigncode, openssl and make. Installs only what
# is missing, so running it again does nothing; needs root (or sudo).
# Wine is installed by install-wine.sh (the tests that run the binaries).
set -eu

missing=""
need() { # need COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}
need i686-w64-mingw32-gcc gcc-mingw-w64-i686
need x86_64-w64-mingw32-gcc gcc-mingw-w64-x86-64
need i686-w64-mingw32-dlltool binutils-mingw-w64-i686
need x86_64-w64-mingw32-dlltool binutils-mingw-w64-x86-64
need osslsigncode osslsigncode
need openssl openssl
need make make
# The kernel headers (ntddk.h) come with the mingw-w64 runtime headers.
[ -f /usr/share/mingw-w64/include/ddk/ntddk.h ] || missing="$missing mingw-w64-common"
# Import libraries for ntoskrnl.exe, kernel32.dll and friends.
[ -f /usr/i686-w64-mingw32/lib/libntoskrnl.a ] || missing="$missing mingw-w64-i686-dev"
[ -f /usr/x86_64-w64-mingw32/lib/libntoskrnl.a ] || missing="$missing mingw-w64-x86-64-dev"

if [ -z "$missing" ]; then
	echo "guest/install-deps.sh: everything is installed"
	exit 0
fi

# shellcheck disable=SC2086 # the package list is meant to split
exec "$(dirname "$0")/../internal/apt/install.sh" guest/install-deps.sh $missing
