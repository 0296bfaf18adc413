#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Static analysis of knit's C code, run by .ci/run:
#   scripts/lint.sh [BUILD_DIR]     (default build/debug, for its
#                                    compile_commands.json)
# Both tools must report nothing. Inline suppressions in the code
# (// NOLINT(check) for clang-tidy, // cppcheck-suppress id for cppcheck)
# each carry their reason next to them; the checks left out are listed
# below with theirs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build/debug}

# The C files of the library, its companions and the crawler (the
# ucontext switch is only built with -DKNIT_CTX_UCONTEXT).
mapfile -t files < <(ls src/*/*.c apps/crawl/*.c | grep -v ctx_ucontext.c)

echo "== cppcheck (${#files[@]} files)"
# cppcheck: warning, performance and portability classes.
#  - autoVariables: knit parks a task with its waiter record on its own
#    stack and links it into a wait queue; waitq.h's invariant (unlinked
#    before knit__wait returns) is what makes it safe, not visible here.
#  - missingIncludeSystem: system headers are not cppcheck's business.
#  - nullPointerRedundantCheck, ctunullpointer: the pattern "if (!t)
#    knit__panic(...); t->..." reads to cppcheck 2.10 as a possible NULL
#    dereference: it does not carry _Noreturn from a header declaration
#    into other files' analysis.
cppcheck --quiet --std=c11 --enable=warning,performance,portability \
--inline-suppr --error-exitcode=1 \
    -D_GNU_SOURCE -D__x86_64__ -DKNIT_HAVE_URING \
    -I include -I src -I apps/crawl -I "$build/include" \
    --suppress=autoVariables --suppress=missingIncludeSystem \
    --suppress=nullPointerRedundantCheck --suppress=ctunullpointer \
    "${files[@]}"

echo "== clang-tidy (${#files[@]} files)"
# clang-tidy: every clang-analyzer check and bugprone, except:
#  - bugprone-easily-swappable-parameters: the API has many (int, int).
#  - bugprone-reserved-identifier: knit__ internal names are the libuv
#    convention (STYLE.md 2), not reserved leading underscores.
#  - bugprone-narrowing-conversions, -implicit-widening-of-multiplication-
#    result: sizes here are bounded far below their types' ranges, and
#    -Wall -Wextra already catch sign mistakes.
#  - bugprone-assignment-in-if-condition: `if ((err = f()))` is the idiom.
#  - bugprone-macro-parentheses: KNIT_OPAQUE pastes a type name.
#  - bugprone-sizeof-expression: flags sizeof(*v) for arrays of pointers.
#  - bugprone-branch-clone: error branches with the same status stay
#    apart for clarity.
#  - clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling:
#    wants memcpy_s and friends (Annex K), which glibc does not have.
#  - clang-analyzer-valist.Uninitialized: reports every vsnprintf after
#    va_start in clang 14 (a known false positive).
#  - clang-analyzer-core.DivideZero: the demo site's modulo by a count
#    that site_new checks is >= 1.
checks='-*,clang-analyzer-*,bugprone-*'
checks+=',-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier'
checks+=',-bugprone-narrowing-conversions'
checks+=',-bugprone-implicit-widening-of-multiplication-result'
checks+=',-bugprone-assignment-in-if-condition,-bugprone-macro-parentheses'
checks+=',-bugprone-sizeof-expression,-bugprone-branch-clone'
checks+=',-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling'
checks+=',-clang-analyzer-valist.Uninitialized,-clang-analyzer-core.DivideZero'
out=$(clang-tidy -p "$build" --quiet --checks="$checks" "${files[@]}" 2>&1 |
    grep -E 'warning:|error:' || true)
if [ -n "$out" ]; then
    echo "$out"
    exit 1
fi
echo "lint: clean"
