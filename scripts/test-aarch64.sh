#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Checks the AArch64 context switch without AArch64 hardware: cross-builds
# tests/ctx_smoke.c with src/core/ctx_aarch64.S and runs it under
# qemu-user, then builds and runs the same program natively against the
# host's assembly backend, so both backends pass the same checks. Each is
# built at -O0 and -O2, since the optimizer decides which values live in
# callee-saved registers.
#
# Needs gcc-aarch64-linux-gnu and qemu-user (qemu-aarch64). Exits 0 on
# success, 1 on failure, and 77 (the automake/CTest "skipped" code) when
# the cross tools are missing. Runs from any directory.
#
# Environment: CROSS_CC (default aarch64-linux-gnu-gcc), QEMU (default
# qemu-aarch64), QEMU_LD_PREFIX (default /usr/aarch64-linux-gnu), CC for
# the native build (default cc).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

cross_cc=${CROSS_CC:-aarch64-linux-gnu-gcc}
qemu=${QEMU:-qemu-aarch64}
sysroot=${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}
cc=${CC:-cc}

skip() {
    echo "test-aarch64: skipped: $*"
    exit 77
}

command -v "$cross_cc" >/dev/null 2>&1 ||
    skip "$cross_cc not found (apt-get install gcc-aarch64-linux-gnu)"
command -v "$qemu" >/dev/null 2>&1 ||
    skip "$qemu not found (apt-get install qemu-user)"
[ -d "$sysroot" ] || skip "no AArch64 sysroot at $sysroot"

work=$(mktemp -d "${TMPDIR:-/tmp}/knit-aarch64.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Warnings as in the CMake build, so the smoke test stays clean there too.
cflags=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wstrict-prototypes -Wshadow
        -Wmissing-prototypes -Werror -fvisibility=hidden -I src)

# build CC ASM_FILE OUT OPT: compile the smoke test against one backend.
build() {
    "$1" "${cflags[@]}" "$4" -o "$3" tests/ctx_smoke.c "$2" -lm
}

for opt in -O0 -O2; do
    echo "test-aarch64: aarch64 $opt (qemu)"
    build "$cross_cc" src/core/ctx_aarch64.S "$work/smoke-aarch64$opt" "$opt"
    "$qemu" -L "$sysroot" "$work/smoke-aarch64$opt"
done

case $(uname -m) in
x86_64) native_asm=src/core/ctx_x86_64.S ;;
aarch64 | arm64) native_asm=src/core/ctx_aarch64.S ;;
*) native_asm= ;;
esac
if [ -n "$native_asm" ]; then
    for opt in -O0 -O2; do
        echo "test-aarch64: native $(uname -m) $opt"
        build "$cc" "$native_asm" "$work/smoke-native$opt" "$opt"
        "$work/smoke-native$opt"
    done
else
    echo "test-aarch64: no native assembly backend for $(uname -m)"
fi
echo "test-aarch64: ok"
