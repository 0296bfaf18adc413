/* SPDX-License-Identifier: MIT */
/*
 * Misuse reports for the pattern library. Patterns see only the public
 * API, so they cannot reach the runtime's panic; this prints the same kind
 * of message (naming the current task) and aborts.
 */
#ifndef KNIT_PATTERNS_MISUSE_H
#define KNIT_PATTERNS_MISUSE_H

/* Report misuse that would corrupt memory (a task left waiting on freed
 * memory, a double release) and abort. */
_Noreturn void knit__pattern_misuse(const char *what);

#endif
