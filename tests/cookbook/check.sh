#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Compiles every C block of the cookbook, so that its code never rots.
#
#   check.sh CC SOURCE_DIR GENERATED_INCLUDE_DIR [EXTRA_CFLAGS...]
#
# CC is the C compiler, SOURCE_DIR the knit checkout (docs/*.md and the
# top-level README.md are read from it, headers from SOURCE_DIR/include)
# and GENERATED_INCLUDE_DIR the build's include directory, where
# knit/version.h is generated.
#
# The convention (docs/README.md): a block fenced exactly as ```c is a
# complete translation unit once this prelude is put before it:
#
#   #include <knit.h>
#   #include <errno.h> <stdbool.h> <stdint.h> <stdio.h> <stdlib.h> <string.h>
#
# so snippets are written as whole functions that declare what they use.
# A block that is only a fragment is fenced as ```c fragment and skipped;
# so are ```rust, ```sh and plain ``` blocks. Each block is compiled to
# an object with the project's language flags (-std=c11 -D_GNU_SOURCE)
# and warnings as errors. Unused static functions are allowed: a page
# shows the functions that matter, not every caller. A #line directive
# maps each block back to its page, so a diagnostic reads
# docs/page.md:LINE, and the script lists every failing block as
# file:line before exiting 1.
set -u

if [ $# -lt 3 ]; then
    echo "usage: $0 CC SOURCE_DIR GENERATED_INCLUDE_DIR [EXTRA_CFLAGS...]" >&2
    exit 2
fi
cc=$1
src=$(cd "$2" && pwd) || exit 2
gen=$3
shift 3

tmp=$(mktemp -d "${TMPDIR:-/tmp}/knit-cookbook.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# Split one page into blocks: $tmp/NNNN.c, each starting with the prelude
# and a #line pointing at the block's first line in the page; the list
# file gets "NNNN.c page:line" per block.
extract() {
    local page=$1 rel=$2
    awk -v rel="$rel" -v dir="$tmp" -v start="$(ls "$tmp" | grep -c '\.c$')" '
        BEGIN { n = start; inblock = 0 }
        {
            if (!inblock && $0 ~ /^```c[ \t]*$/) {
                inblock = 1
                out = sprintf("%s/%04d.c", dir, n++)
                print "#include <knit.h>" > out
                print "#include <errno.h>" > out
                print "#include <stdbool.h>" > out
                print "#include <stdint.h>" > out
                print "#include <stdio.h>" > out
                print "#include <stdlib.h>" > out
                print "#include <string.h>" > out
                printf "#line %d \"%s\"\n", NR + 1, rel > out
                printf "%s %s:%d\n", out, rel, NR + 1 >> (dir "/list")
                next
            }
            if (inblock && $0 ~ /^```[ \t]*$/) {
                inblock = 0
                close(out)
                next
            }
            if (inblock)
                print > out
        }
        END {
            if (inblock)
                printf "%s: unterminated ```c block\n", rel > "/dev/stderr"
        }' "$page"
}

: > "$tmp/list"
pages=("$src/README.md")
for f in "$src"/docs/*.md; do
    pages+=("$f")
done
for page in "${pages[@]}"; do
    extract "$page" "${page#"$src"/}"
done

cflags=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wstrict-prototypes -Wshadow
        -Wno-unused-function -Werror -I "$src/include" -I "$gen" "$@")
total=0
failed=()
while read -r file where; do
    total=$((total + 1))
    if ! "$cc" "${cflags[@]}" -c -o "$tmp/block.o" "$file" \
            2> "$tmp/diag"; then
        failed+=("$where")
        echo "FAIL $where" >&2
        cat "$tmp/diag" >&2
    fi
done < "$tmp/list"

if [ ${#failed[@]} -gt 0 ]; then
    echo >&2
    echo "${#failed[@]} of $total cookbook blocks do not compile:" >&2
    printf '  %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "all $total cookbook blocks compile"
