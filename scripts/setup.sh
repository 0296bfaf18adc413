#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Installs the Debian packages that building and testing knit needs, and
# nothing when they are all there already (then it takes a few ms: one
# dpkg-query, no apt-get). Safe to run again and again; .ci/run and the
# README's test command start with it.
#
# Add a package by adding it to KNIT_PACKAGES below (libcurl4-openssl-dev,
# libsqlite3-dev, libhiredis-dev, liburing-dev, ... as their issues land).
set -euo pipefail

KNIT_PACKAGES=(
    cmake                 # >= 3.25 (CMakePresets.json version 6, workflows)
    ninja-build           # the presets' generator
    gcc                   # the default compiler; ASan, UBSan, TSan
    clang                 # clang-14: libFuzzer targets, second compiler
    pkg-config            # finds cmocka; tests/install checks knit.pc
    libcmocka-dev         # the unit tests
    valgrind              # valgrind.h: stack registration for valgrind runs
    gcc-aarch64-linux-gnu # scripts/test-aarch64.sh: cross-builds ctx_aarch64.S
    libc6-dev-arm64-cross # ... its AArch64 libc and sysroot
    qemu-user             # ... and runs it (qemu-aarch64)
    liburing-dev          # the io_uring backend (src/io/uring.c)
    libcurl4-openssl-dev  # knit/http.h: libcurl's multi-socket API
    libxml2-dev           # knit-crawl: HTML parsing (libxml2's HTML parser)
    libsqlite3-dev        # knit-crawl: the page store and frontier
    sqlite3               # knit-crawl tests: inspect the database
    libhiredis-dev        # knit/redis.h: hiredis's async API on knit
    redis-server          # Redis for the distributed-crawl tests (started
                          # by the tests on 127.0.0.1, never as a service)
    redis-tools           # redis-cli: tests/crawl/redis_e2e.sh waits for
                          # PING with it (redis-server pulls it in too)
    cppcheck              # static analysis in CI
    spin                  # tests/model: the park/unpark protocol, checked
    clang-tidy            # static analysis in CI
)

# A package counts as present when dpkg says "install ok installed"; one
# dpkg-query call for all of them keeps the no-op case fast. Unknown names
# make dpkg-query complain and exit 1: they are simply missing.
declare -A present=()
while read -r name want ok state; do
    if [ "$want $ok $state" = "install ok installed" ]; then
        present[${name%%:*}]=1 # multi-arch packages print as name:arch
    fi
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${KNIT_PACKAGES[@]}" \
    2>/dev/null || true)
missing=()
for p in "${KNIT_PACKAGES[@]}"; do
    [ -n "${present[$p]:-}" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#KNIT_PACKAGES[@]} packages present"
    exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        as_root=(sudo -n)
    else
        echo "setup: missing ${missing[*]}, and not root without sudo" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    </dev/null >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" </dev/null >&2
echo "setup: installed ${missing[*]}"
