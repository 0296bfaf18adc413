// SPDX-License-Identifier: MIT
/*
 * Portable context switch on <ucontext.h>, the fallback behind ctx.h for
 * architectures without an assembly backend (and for -DKNIT_CTX_UCONTEXT
 * builds that want to rule the assembly out).
 *
 * It is much slower than the assembly: glibc's swapcontext() also saves
 * and restores the signal mask, which costs a system call per switch.
 *
 * makecontext() passes only int arguments, so entry and arg cannot be
 * handed to the new context directly on 64-bit systems. They are stored
 * in a small record at the top of the new stack instead, and only that
 * record's address is passed, split into two 32-bit halves. A record on
 * the stack (rather than a static or thread-local handoff) stays correct
 * however many contexts are made before any of them first runs.
 */
#include "core/ctx.h"

#include <stdint.h>
#include <stdlib.h>

#if !defined(KNIT_CTX_UCONTEXT)
#error "ctx_ucontext.c must be built with -DKNIT_CTX_UCONTEXT"
#endif

/* What the new context runs first; lives at the top of its own stack. */
struct ctx_start {
    void (*entry)(void *); /* the function given to knit__ctx_make() */
    void *arg;             /* its argument */
};

/* Round the record up so the stack below it keeps max alignment. */
#define START_SIZE ((sizeof(struct ctx_start) + 15) & ~(size_t)15)

static void ctx_trampoline(unsigned int hi, unsigned int lo)
{
    uint64_t addr = ((uint64_t)hi << 32) | lo;
    struct ctx_start *s = (struct ctx_start *)(uintptr_t)addr;

    s->entry(s->arg);
    /*
     * entry must switch away for the last time instead of returning;
     * uc_link is NULL, so returning would silently end the thread.
     */
    abort();
}

void knit__ctx_make(struct knit_ctx *c, void *stack_lo, size_t size,
                    void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
    struct ctx_start *s = (struct ctx_start *)(top - START_SIZE);
    uint64_t addr = (uintptr_t)s;

    s->entry = entry;
    s->arg = arg;

    /*
     * getcontext() only fills in the parts makecontext() does not set:
     * the signal mask and the FP environment, which the new context thus
     * inherits from its creator. It cannot fail on Linux.
     */
    if (getcontext(&c->uc) != 0)
        abort();
    c->uc.uc_stack.ss_sp = stack_lo;
    c->uc.uc_stack.ss_size = (size_t)((uintptr_t)s - (uintptr_t)stack_lo);
    c->uc.uc_stack.ss_flags = 0;
    c->uc.uc_link = NULL;
    makecontext(&c->uc, (void (*)(void))ctx_trampoline, 2,
                (unsigned int)(addr >> 32), (unsigned int)addr);
}

void knit__ctx_switch(struct knit_ctx *from, struct knit_ctx *to)
{
    /* Fails only for a context not made by getcontext()/makecontext(). */
    if (swapcontext(&from->uc, &to->uc) != 0)
        abort();
}
