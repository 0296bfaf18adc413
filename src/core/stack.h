// SPDX-License-Identifier: MIT
/*
 * Task stacks: mmap'd, committed lazily by the kernel as they are touched,
 * pooled for reuse, and carved from large regions so that a million stacks
 * cost a few thousand mappings instead of a million.
 *
 * Each slot of a region is [one page][stack]. Up to a guard budget (a
 * quarter of vm.max_map_count) the page is made PROT_NONE, so an overflow
 * faults and the SIGSEGV handler names the task. Past the budget the page
 * stays mapped as a red zone (a one-time warning says so) and two checks
 * stand in for the guard, neither of which touches the stack's bottom
 * page, so that an idle task costs one committed page either way:
 *  - on every switch, the stack pointer must be above lo (plus a margin):
 *    a task parked in an overflow is named at once;
 *  - when the task ends, the word at lo must still be zero (a zero canary:
 *    fresh and trimmed pages read zero, so it is never written), checked
 *    only when that page is resident (mincore): an overflow that came and
 *    went is named when its task ends.
 * A written canary (the previous design) committed a second page per task
 * past the budget: 8 KiB per idle task instead of 4.
 *
 * Each freshly carved stack has its top page committed in one call
 * (MADV_POPULATE_WRITE), which costs a fraction of the page fault its
 * first run would take (see carve()).
 *
 * A pool belongs to one worker; regions are never unmapped before the pool
 * is destroyed, so a stack may be freed into a pool other than the one it
 * came from.
 */
#ifndef KNIT_CORE_STACK_H
#define KNIT_CORE_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KNIT_STACK_DEFAULT (64u * 1024u)
#define KNIT_STACK_MIN (8u * 1024u)
#define KNIT_STACK_MAX (1024u * 1024u * 1024u)
/* Bytes a switch needs below its frame: closer to lo is an overflow. */
#define KNIT_STACK_SP_MARGIN 256u
#define KNIT_STACK_CLASSES 8

struct knit_stack {
    void *lo;     /* lowest usable byte; the zero canary word sits here */
    size_t size;  /* usable bytes above lo */
    bool guarded; /* the page below lo is PROT_NONE */
};

/* A growable array of free stacks: a LIFO at the end, trimmed from the
 * front (the coldest entries). Live entries are v[start..n). */
struct knit_stack_list {
    struct knit_stack *v; /* entries */
    size_t start;         /* first live entry */
    size_t n;             /* end of the live entries */
    size_t cap;           /* entries allocated */
};

/* Free stacks of one size, plus the region being carved for that size. */
struct knit_stack_class {
    size_t size;                 /* usable size of every stack here */
    struct knit_stack_list warm; /* free, pages still committed; LIFO */
    struct knit_stack_list cold; /* free, pages given back to the kernel */
    char *carve;                 /* next unused slot of the current region */
    size_t carve_left;           /* unused slots left in it */
};

struct knit_stack_region {
    struct knit_stack_region *next; /* all regions of the pool */
    void *base;                     /* the mapping */
    size_t len;                     /* its length */
};

struct knit_stack_pool {
    struct knit_stack_class classes[KNIT_STACK_CLASSES];
    int nclasses;                      /* classes[] entries in use */
    struct knit_stack_region *regions; /* unmapped by knit__stack_pool_fini */
    uint64_t mapped;                   /* stacks carved so far */
    uint64_t in_use;                   /* stacks handed out and not freed */
    uint64_t guarded;                  /* stacks carved with a guard page */
    uint64_t canary; /* stacks carved without (past the budget) */
};

void knit__stack_pool_init(struct knit_stack_pool *p);
void knit__stack_pool_fini(struct knit_stack_pool *p);

/*
 * Hands out a stack of at least @size usable bytes (rounded up to pages).
 * Returns 0 or -ENOMEM.
 */
int knit__stack_alloc(struct knit_stack_pool *p, size_t size,
                      struct knit_stack *out);

/*
 * Gives @s back to @p for reuse. Its pages stay committed (a warm stack
 * is reused without page faults); knit__stack_pool_trim gives the pages
 * of spares beyond a reserve back to the kernel, a few at a time.
 */
void knit__stack_free(struct knit_stack_pool *p, const struct knit_stack *s);

/*
 * Hands the pages of at most @max of the oldest warm spares beyond the
 * reserve back to the kernel (madvise, a TLB flush each: costly, so the
 * worker spreads this over time). Returns how many were trimmed.
 */
int knit__stack_pool_trim(struct knit_stack_pool *p, int max);

/* False when @sp, the running task's stack pointer, is at or below the
 * bottom of its stack @s (within the margin a switch needs). */
static inline bool knit__stack_sp_ok(const struct knit_stack *s,
                                     const void *sp)
{
    return (const char *)sp >= (const char *)s->lo + KNIT_STACK_SP_MARGIN;
}

/* False when the zero canary at the bottom of the unguarded stack @s was
 * overwritten. A syscall (mincore) on unguarded stacks: call it once per
 * task, when it ends. True for guarded stacks. */
bool knit__stack_bottom_ok(const struct knit_stack *s);

/* True when @addr lies in the guard page (or red zone) below @s. */
bool knit__stack_is_guard_hit(const struct knit_stack *s, const void *addr);

/* Free stacks held by @p across all sizes. */
uint64_t knit__stack_pool_free_count(const struct knit_stack_pool *p);

/* Sets the process-wide guard budget (tests); returns the previous one. */
long knit__stack_set_guard_budget(long budget);

/* Page size, cached. */
size_t knit__page_size(void);

#endif
