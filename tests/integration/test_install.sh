#!/bin/sh
#  `make install` puts binaries, libzube, public headers, the pkg-config
#  files and the man pages in place, and a plugin author can build against
#  the installed SDK with pkg-config alone. TAP output.
set -u
BUILD=${ZUBE_BUILDDIR:-.}
DEST=$(mktemp -d /tmp/zube-test-install-XXXXXX)
trap 'rm -rf "$DEST"' EXIT
PREFIX=$(sed -n 's/^prefix = //p' "$BUILD/Makefile")
#  An ASan build of libzube needs the sanitizer runtime in whatever links it.
SANITIZE=$(sed -n 's/^ZUBE_LDFLAGS = //p' "$BUILD/Makefile")
n=0
failed=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "# $2"; }
check () { if eval "$2" >/dev/null 2>&1; then ok "$1"; else not_ok "$1" "$2"; fi; }

if make -C "$BUILD" -s install DESTDIR="$DEST" >"$DEST.log" 2>&1; then
    ok "make install DESTDIR"
else
    not_ok "make install DESTDIR" "$(tail -5 "$DEST.log")"
fi
rm -f "$DEST.log"
ROOT="$DEST$PREFIX"
for program in zube-broker zubectl zube zube-bench; do
    check "installs $program" "test -x '$ROOT/bin/$program'"
done
check "installs libzube" "ls '$ROOT'/lib/libzube.so.*"
check "installs public headers" "test -f '$ROOT/include/zube/bus.h' && test -f '$ROOT/include/zube/zube.h'"
check "installs generated schema headers" "test -f '$ROOT/include/zube/schemas/bus.pb-c.h' && test -f '$ROOT/include/zube/schemas/core.pb-c.h'"
check "installs zube-plugin.pc" "test -f '$ROOT/lib/pkgconfig/zube-plugin.pc'"
check "installs libzube.pc" "test -f '$ROOT/lib/pkgconfig/libzube.pc'"
for page in man1/zube-broker.1 man1/zubectl.1 man7/zube.7; do
    check "installs $page" "test -f '$ROOT/share/man/$page'"
done

#  A program built only from what pkg-config says about the installed tree.
cat >"$DEST/client.c" <<'PROG'
#include <zube/zube.h>
#include <zube/bus.h>
#include <stdio.h>
int main (void) {
    printf ("%s %s\n", ZUBE_VERSION_STRING, zube_status_reason (ZUBE_NOT_FOUND));
    return 0;
}
PROG
export PKG_CONFIG_PATH="$ROOT/lib/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$DEST"
if cc -o "$DEST/client" "$DEST/client.c" $(pkg-config --cflags --libs libzube) $SANITIZE \
        -Wl,-rpath,"$ROOT/lib" >"$DEST/cc.log" 2>&1 \
    && LD_LIBRARY_PATH="$ROOT/lib" "$DEST/client" | grep -q NotFound; then
    ok "builds and runs a client against the installed libzube.pc"
else
    not_ok "builds and runs a client against the installed libzube.pc" "$(head -5 "$DEST/cc.log")"
fi
check "zube-plugin.pc names the plugin ABI" "pkg-config --variable=abi_version zube-plugin | grep -qx '[0-9][0-9]*'"
if command -v man >/dev/null; then
    for page in "$ROOT"/share/man/man*/*; do
        check "man -l renders $(basename "$page") without warnings" \
            "test -z \"\$(MANWIDTH=80 man --warnings -l '$page' 2>&1 >/dev/null)\""
    done
fi
echo "1..$n"
[ "$failed" -eq 0 ]
