// SPDX-License-Identifier: MIT
/*
 * Task stack allocator (see stack.h for the layout and the guard budget).
 *
 * Divisions: the global guard budget, region carving, the per-size free
 * lists, and giving memory back (madvise) when too many free stacks stay
 * committed.
 */
#include "core/alloc.h"
#include "core/stack.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/compiler.h"
#include "core/sys.h"

#ifdef KNIT_ASAN
#include <sanitizer/asan_interface.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define KNIT_HAVE_VALGRIND 1
#endif
#endif

/* A region is this big (or one slot when a slot is bigger). */
#define REGION_BYTES (16u * 1024u * 1024u)
/* Free stacks kept committed per size; trimming gives back the rest. */
#define WARM_MAX 256

/* ---- guard budget (process-wide: the map count limit is per process) ---- */

static atomic_long guard_budget = -1; /* -1 until first computed */
static atomic_bool canary_warned;

static long initial_guard_budget(void)
{
    long max_maps = 65530;
    const char *env = getenv("KNIT_STACK_GUARDS");
    if (env)
        return atol(env);
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (f) {
        if (fscanf(f, "%ld", &max_maps) != 1)
            max_maps = 65530;
        fclose(f);
    }
    /* A guard page splits a region's mapping in two: a quarter of the
     * limit in guards leaves half of the map count to the application. */
    return max_maps / 4;
}

/* Takes one guard from the budget; false when it is spent. */
static bool take_guard(void)
{
    long b = atomic_load_explicit(&guard_budget, memory_order_relaxed);
    if (b < 0) {
        long init = initial_guard_budget();
        /* Pairs with itself: only the first thread to see -1 sets it. */
        atomic_compare_exchange_strong(&guard_budget, &b, init);
        b = atomic_load_explicit(&guard_budget, memory_order_relaxed);
    }
    while (b > 0) {
        if (atomic_compare_exchange_weak_explicit(&guard_budget, &b, b - 1,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
    if (!atomic_exchange(&canary_warned, true))
        fprintf(stderr, "knit: stack guard budget spent; further stacks are "
                        "checked by their stack pointer and a canary only "
                        "(vm.max_map_count, KNIT_STACK_GUARDS)\n");
    return false;
}

long knit__stack_set_guard_budget(long budget)
{
    long old = atomic_exchange(&guard_budget, budget);
    return old < 0 ? initial_guard_budget() : old;
}

static void give_back_guard(void)
{
    atomic_fetch_add_explicit(&guard_budget, 1, memory_order_relaxed);
}

size_t knit__page_size(void)
{
    static size_t page;
    if (!page)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

void knit__stack_pool_init(struct knit_stack_pool *p)
{
    memset(p, 0, sizeof(*p));
}

void knit__stack_pool_fini(struct knit_stack_pool *p)
{
    for (int i = 0; i < p->nclasses; i++) {
        free(p->classes[i].warm.v);
        free(p->classes[i].cold.v);
    }
    struct knit_stack_region *r = p->regions;
    while (r) {
        struct knit_stack_region *next = r->next;
        knit__sys_munmap(r->base, r->len);
        free(r);
        r = next;
    }
    /* Guards die with their regions: return them to the budget. */
    for (uint64_t i = 0; i < p->guarded; i++)
        give_back_guard();
    memset(p, 0, sizeof(*p));
}

static struct knit_stack_class *class_for(struct knit_stack_pool *p,
                                          size_t size)
{
    for (int i = 0; i < p->nclasses; i++)
        if (p->classes[i].size == size)
            return &p->classes[i];
    if (p->nclasses == KNIT_STACK_CLASSES)
        return NULL;
    struct knit_stack_class *c = &p->classes[p->nclasses++];
    memset(c, 0, sizeof(*c));
    c->size = size;
    return c;
}

/* Maps a new region for @c; returns 0 or -ENOMEM. */
static int new_region(struct knit_stack_pool *p, struct knit_stack_class *c)
{
    size_t slot = knit__page_size() + c->size;
    size_t nslots = REGION_BYTES / slot;
    if (nslots == 0)
        nslots = 1;
    struct knit_stack_region *r = knit__malloc(sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->len = nslots * slot;
    /* MAP_NORESERVE: pages are committed only when a task touches them. */
    r->base = knit__sys_mmap(r->len, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    if (!r->base) {
        free(r);
        return -ENOMEM;
    }
    r->next = p->regions;
    p->regions = r;
    c->carve = r->base;
    c->carve_left = nslots;
    return 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older headers lack it */
#endif

static atomic_bool populate_off; /* the kernel said no once: stop asking */

/*
 * Commits the top page of the fresh stack @s, the one its task's first
 * frames use. One madvise costs a fraction of the fault the first run
 * would take (on this project's VM: 2.5 us against 11.8 us), which is
 * most of the price of a million sleeping tasks. Best effort: a kernel
 * without MADV_POPULATE_WRITE (before 5.14) takes the fault instead.
 */
static void populate_top(const struct knit_stack *s)
{
    if (atomic_load_explicit(&populate_off, memory_order_relaxed))
        return;
    size_t page = knit__page_size();
    if (knit__sys_madvise((char *)s->lo + s->size - page, page,
                          MADV_POPULATE_WRITE) == -EINVAL)
        atomic_store(&populate_off, true);
}

static int carve(struct knit_stack_pool *p, struct knit_stack_class *c,
                 struct knit_stack *out)
{
    if (c->carve_left == 0) {
        int err = new_region(p, c);
        if (err)
            return err;
    }
    size_t page = knit__page_size();
    char *slot = c->carve;
    out->lo = slot + page;
    out->size = c->size;
    out->guarded = false;
    if (take_guard()) {
        if (knit__sys_mprotect(slot, page, PROT_NONE) == 0)
            out->guarded = true;
        else
            give_back_guard(); /* ENOMEM: the map count is full after all */
    }
    populate_top(out);
#ifdef KNIT_HAVE_VALGRIND
    /* Once per slot: a slot stays a stack until its region is unmapped. */
    VALGRIND_STACK_REGISTER(out->lo, (char *)out->lo + out->size);
#endif
    c->carve += page + c->size;
    c->carve_left--;
    p->mapped++;
    if (out->guarded)
        p->guarded++;
    else
        p->canary++;
    return 0;
}

int knit__stack_alloc(struct knit_stack_pool *p, size_t size,
                      struct knit_stack *out)
{
    size_t page = knit__page_size();
    size = (size + page - 1) & ~(page - 1);
    struct knit_stack_class *c = class_for(p, size);
    if (c && c->warm.n > c->warm.start) {
        *out = c->warm.v[--c->warm.n];
    } else if (c && c->cold.n > c->cold.start) {
        *out = c->cold.v[--c->cold.n];
    } else if (c) {
        int err = carve(p, c, out);
        if (err)
            return err;
    } else {
        /* More sizes than classes: fall back to one region per stack,
         * never pooled. Rare (eight distinct stack sizes in one worker). */
        struct knit_stack_class one = {.size = size};
        int err = carve(p, &one, out);
        if (err)
            return err;
    }
#ifdef KNIT_ASAN
    /* A task that ended left the poison of frames that never returned. */
    ASAN_UNPOISON_MEMORY_REGION(out->lo, out->size);
#endif
    p->in_use++;
    return 0;
}

/* Pushes @s on @l; false when the list cannot grow (out of memory). */
/* Pushes @s on @l; false when the list cannot grow (out of memory). */
static bool list_push(struct knit_stack_list *l, const struct knit_stack *s)
{
    if (l->n == l->cap && l->start > 0) {
        /* Reclaim the trimmed front before growing. */
        memmove(l->v, l->v + l->start, (l->n - l->start) * sizeof(*l->v));
        l->n -= l->start;
        l->start = 0;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct knit_stack *v = knit__realloc(l->v, cap * sizeof(*v));
        if (!v)
            return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *s;
    return true;
}

static inline size_t list_len(const struct knit_stack_list *l)
{
    return l->n - l->start;
}

void knit__stack_free(struct knit_stack_pool *p, const struct knit_stack *s)
{
    p->in_use--;
    struct knit_stack_class *c = class_for(p, s->size);
    if (!c)
        return; /* its region is unmapped with the pool */
    if (!list_push(&c->warm, s)) {
        /* No room to remember it warm: give its pages back now. If even
         * the cold list cannot grow, the slot waits for the pool's end. */
        knit__sys_madvise(s->lo, s->size, MADV_DONTNEED);
        list_push(&c->cold, s);
    }
}

int knit__stack_pool_trim(struct knit_stack_pool *p, int max)
{
    int done = 0;
    for (int i = 0; i < p->nclasses && done < max; i++) {
        struct knit_stack_class *c = &p->classes[i];
        while (done < max && list_len(&c->warm) > WARM_MAX) {
            struct knit_stack s = c->warm.v[c->warm.start];
            if (!list_push(&c->cold, &s))
                return done;
            c->warm.start++;
            knit__sys_madvise(s.lo, s.size, MADV_DONTNEED);
            done++;
        }
    }
    return done;
}

/* Not instrumented: the word at lo may lie under the poison of a frame
 * that overflowed (the very thing it looks for). */
KNIT_NO_ASAN bool knit__stack_bottom_ok(const struct knit_stack *s)
{
    if (s->guarded)
        return true;
    /* Nothing wrote a page the kernel never committed: do not read it
     * (the read would map a page, and a fault costs more than asking). */
    static _Thread_local unsigned char resident; /* on a warm page: the
        kernel's write to it must not fault in a fresh stack page */
    resident = 1;
    if (mincore(s->lo, knit__page_size(), &resident) == 0 && !(resident & 1))
        return true;
    return *(const volatile uint64_t *)s->lo == 0;
}

bool knit__stack_is_guard_hit(const struct knit_stack *s, const void *addr)
{
    const char *a = addr;
    const char *lo = s->lo;
    return a < lo + sizeof(uint64_t) && a >= lo - knit__page_size();
}

uint64_t knit__stack_pool_free_count(const struct knit_stack_pool *p)
{
    uint64_t n = 0;
    for (int i = 0; i < p->nclasses; i++)
        n += list_len(&p->classes[i].warm) + list_len(&p->classes[i].cold);
    return n;
}
