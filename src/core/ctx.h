// SPDX-License-Identifier: MIT
/*
 * Machine context switch: the only place where knit changes stacks.
 *
 * Two implementations are chosen at configure time (KNIT_CTX_BACKEND):
 *  - assembly (ctx_x86_64.S, ctx_aarch64.S): saves the callee-saved
 *    registers and the FP control words on the old stack and stores the
 *    stack pointer in knit_ctx.sp;
 *  - ucontext (ctx_ucontext.c): portable fallback, much slower.
 *
 * Sanitizer and Valgrind annotations are not done here but by the
 * scheduler, which knows both stacks (src/core/task.c).
 */
#ifndef KNIT_CORE_CTX_H
#define KNIT_CORE_CTX_H

#include <stddef.h>

#if defined(KNIT_CTX_UCONTEXT)
#include <ucontext.h>
struct knit_ctx {
    ucontext_t uc; /* the whole saved machine state */
};
#else
struct knit_ctx {
    void *sp; /* saved stack pointer; registers live on that stack */
};
#endif

/*
 * knit__ctx_make() - prepare @c so that the first switch to it runs
 * entry(arg) on the stack [stack_lo, stack_lo + size). entry must never
 * return (it switches away for the last time instead).
 */
void knit__ctx_make(struct knit_ctx *c, void *stack_lo, size_t size,
                    void (*entry)(void *), void *arg);

/*
 * knit__ctx_switch() - save the running context in @from and resume @to.
 * Returns when something switches back to @from.
 */
void knit__ctx_switch(struct knit_ctx *from, struct knit_ctx *to);

#endif
