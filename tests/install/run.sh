#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Install test: configures a fresh release build of this source tree (tests,
# examples and benchmarks off), installs it into a temporary prefix with
# `cmake --install`, checks the installed layout, then builds consumer.c
# against the installed copy four ways and runs each:
#   a) CMake find_package(knit) + knit::knit         (shared)
#   b) CMake find_package(knit) + knit::knit_static  (static)
#   c) cc $(pkg-config --cflags --libs knit)         (shared)
#   d) cc $(pkg-config --static --cflags --libs knit), libknit.a
# Prints "install test: ok" and exits 0 when all of it worked. Runs from any
# directory; the CTest entry "install" runs it. Temporary files go under
# $TMPDIR (default /tmp) and are removed on exit. CC picks the compiler for
# c) and d) (default cc).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cc=${CC:-cc}

work=$(mktemp -d "${TMPDIR:-/tmp}/knit-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
logs=$work/logs
mkdir -p "$logs"

say() { echo "install test: $*"; }
fail() {
    echo "install test: FAILED: $*" >&2
    exit 1
}

# run_logged NAME CMD...: run CMD with its output in a log, shown on failure.
run_logged() {
    local name=$1
    shift
    if ! "$@" >"$logs/$name.log" 2>&1; then
        echo "install test: '$*' failed; last lines of its output:" >&2
        tail -n 60 "$logs/$name.log" >&2
        fail "$name"
    fi
}

# The version the build must report: the one in project(knit VERSION ...).
version=$(sed -n 's/^project(knit VERSION \([0-9][0-9.]*\).*/\1/p' \
    "$root/CMakeLists.txt")
[ -n "$version" ] || fail "no project(knit VERSION ...) in CMakeLists.txt"
soversion=${version%%.*}

gen=()
if command -v ninja >/dev/null 2>&1; then
    gen=(-G Ninja)
fi

# ---- build and install -----------------------------------------------------
say "building knit $version (release) and installing it into a temp prefix"
# CMAKE_INSTALL_LIBDIR is pinned so the layout checked below is the same on
# every distribution (GNUInstallDirs would pick lib64 or lib/<multiarch>).
run_logged configure cmake -S "$root" -B "$work/build" "${gen[@]}" \
    -DCMAKE_BUILD_TYPE=Release \
    -DKNIT_BUILD_TESTS=OFF -DKNIT_BUILD_EXAMPLES=OFF -DKNIT_BUILD_BENCH=OFF \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib
run_logged build cmake --build "$work/build"
run_logged install cmake --install "$work/build"

# ---- the installed layout --------------------------------------------------
lib=$prefix/lib
for f in \
    "lib/libknit.so.$version" "lib/libknit.so.$soversion" lib/libknit.so \
    lib/libknit.a include/knit.h include/knit/version.h \
    lib/pkgconfig/knit.pc lib/cmake/knit/knitConfig.cmake \
    lib/cmake/knit/knitConfigVersion.cmake lib/cmake/knit/knitTargets.cmake; do
    [ -e "$prefix/$f" ] || fail "$f is not installed"
done
[ -L "$lib/libknit.so.$soversion" ] ||
    fail "lib/libknit.so.$soversion is not a symlink (SOVERSION)"
[ -L "$lib/libknit.so" ] || fail "lib/libknit.so is not a symlink"
soname=$(readelf -d "$lib/libknit.so.$version" |
    sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libknit.so.$soversion" ] ||
    fail "SONAME is '$soname', expected libknit.so.$soversion"
for h in "$root"/include/knit/*.h; do
    [ -e "$prefix/include/knit/$(basename "$h")" ] ||
        fail "include/knit/$(basename "$h") is not installed"
done
[ ! -e "$prefix/include/knit/version.h.in" ] ||
    fail "include/knit/version.h.in was installed"
grep -q "^#define KNIT_VERSION_STRING \"$version\"\$" \
    "$prefix/include/knit/version.h" ||
    fail "include/knit/version.h does not say $version"
# Only the API leaves the shared library (STYLE.md section 8).
leaked=$(nm -D --defined-only "$lib/libknit.so.$version" | awk '
    $3 !~ /^knit_/ && $3 !~ /^(_init|_fini|__bss_start|_edata|_end)$/ {
        print $3 }')
[ -z "$leaked" ] ||
    fail "libknit.so exports non-knit_ symbols: $(tr "\n" " " <<<"$leaked")"

# ---- the consumers -----------------------------------------------------------
expected=$(printf 'knit %s\nresult 42' "$version")

# check_run NAME BINARY [ENV...]: run it and compare what it prints.
check_run() {
    local name=$1 bin=$2 out rc=0
    shift 2
    out=$(env "$@" "$bin" 2>"$logs/$name.stderr") || rc=$?
    if [ "$rc" -ne 0 ] || [ "$out" != "$expected" ]; then
        echo "install test: $name printed (exit $rc):" >&2
        printf '%s\n' "$out" >&2
        cat "$logs/$name.stderr" >&2
        fail "$name: expected exit 0 and output '$expected'"
    fi
}

# check_linkage NAME BINARY shared|static: is libknit.so a dependency?
check_linkage() {
    local needed
    needed=$(readelf -d "$2" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    if [ "$3" = shared ]; then
        grep -qx "libknit.so.$soversion" <<<"$needed" ||
            fail "$1: does not need libknit.so.$soversion:" \
                "$(tr "\n" " " <<<"$needed")"
    elif grep -q '^libknit' <<<"$needed"; then
        fail "$1: linked statically, yet needs $(tr "\n" " " <<<"$needed")"
    fi
}

for kind in shared static; do
    if [ "$kind" = shared ]; then target=knit::knit; else target=knit::knit_static; fi
    name="cmake-$kind"
    say "$name: find_package(knit) + $target"
    run_logged "$name-configure" cmake -S "$here" -B "$work/$name" "${gen[@]}" \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
        -DKNIT_TARGET="$target" -DKNIT_EXPECT_VERSION="$version"
    grep -qx "knit_DIR:PATH=$lib/cmake/knit" "$work/$name/CMakeCache.txt" ||
        fail "$name: find_package found knit outside the temp prefix:" \
            "$(grep '^knit_DIR' "$work/$name/CMakeCache.txt")"
    run_logged "$name-build" cmake --build "$work/$name"
    check_linkage "$name" "$work/$name/app" "$kind"
    # CMake gives the shared build an RPATH to the prefix: no LD_LIBRARY_PATH.
    check_run "$name" "$work/$name/app"
done

export PKG_CONFIG_PATH=$lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
pcver=$(pkg-config --modversion knit) || fail "pkg-config does not find knit"
[ "$pcver" = "$version" ] || fail "knit.pc says version $pcver, not $version"
cflags=(-std=c11 -O2 -Wall -Wextra -Wstrict-prototypes -Wpedantic -Werror)

say "pkg-config-shared: cc \$(pkg-config --cflags --libs knit)"
# Word splitting of pkg-config's output is intended, as in a Makefile.
# shellcheck disable=SC2046
run_logged pkg-config-shared "$cc" "${cflags[@]}" -o "$work/pc-shared" \
    "$here/consumer.c" $(pkg-config --cflags --libs knit)
check_linkage pkg-config-shared "$work/pc-shared" shared
check_run pkg-config-shared "$work/pc-shared" \
    LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

say "pkg-config-static: cc \$(pkg-config --static --cflags --libs knit)"
read -r -a static_libs <<<"$(pkg-config --static --libs knit)"
grep -qx -- -lknit < <(printf '%s\n' "${static_libs[@]}") ||
    fail "pkg-config --static --libs knit has no -lknit: ${static_libs[*]}"
link=()
for w in "${static_libs[@]}"; do
    if [ "$w" = -lknit ]; then
        # shellcheck disable=SC2054 # the commas belong to the -Wl options
        link+=(-Wl,-Bstatic -lknit -Wl,-Bdynamic)
    else
        link+=("$w")
    fi
done
# shellcheck disable=SC2046
run_logged pkg-config-static "$cc" "${cflags[@]}" -o "$work/pc-static" \
    "$here/consumer.c" $(pkg-config --static --cflags knit) "${link[@]}"
check_linkage pkg-config-static "$work/pc-static" static
check_run pkg-config-static "$work/pc-static"

say "ok"
