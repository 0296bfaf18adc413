// SPDX-License-Identifier: MIT
/*
 * Rate limiters (knit/patterns.h): the token bucket (knit_ratelimit_*),
 * then the keyed limiter, a chained hash map of token buckets with lazy
 * eviction (knit_keyed_ratelimit_*).
 *
 * The bucket is kept as one number, the time at which it was (or would
 * have been) empty: it holds (now - empty) / period tokens, capped at the
 * burst. Taking n tokens moves that time n periods later. Time is in
 * nanoseconds so that rates such as 3/s keep their fractions and rates
 * that divide a second (10/s, 4/s, 0.5/s) are exact on the manual clock.
 *
 * Waiting is built on knit_mutex, whose queue is already FIFO and already
 * leaves no trace when a waiter is cancelled: the task holding the mutex
 * is the head of the queue and is the only one that waits for tokens (in
 * a select on its deadline and on a notify that set_rate pokes); the
 * others wait for the mutex. So a cancelled head simply unlocks, having
 * taken nothing, and the next waiter recomputes from the same bucket.
 *
 * Several workers. The bucket's numbers (period, empty time, burst) are
 * read and written under the limiter's spin lock `lk`, never held across
 * a park; the mutex still orders the acquirers. `users` is atomic. The
 * keyed table is guarded by its own spin lock; a call counts itself in
 * its bucket's users under that lock, so a sweep never frees a bucket
 * between the lookup and the wait.
 *
 * Built only on the public API (DESIGN section 4, layering).
 */
#include <errno.h>
#include <float.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>
#include "patterns/misuse.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S 1e9
/* Bound on burst * period, so that now - burst * period never overflows:
 * about 73 years. */
#define MAX_SPAN_NS (INT64_MAX / 4)
/* The empty time of a bucket that has never been used: long ago, so it
 * is full. Far from INT64_MIN, so subtracting a span stays in range. */
#define LONG_AGO (INT64_MIN / 2)

/* knit_ratelimit's layout. */
struct ratelimit {
    knit_mutex queue;    /* FIFO of acquirers; its holder is the head */
    knit_notify changed; /* poked by set_rate; only the head waits on it */
    int64_t period_ns;   /* time to gain one token; 0 when never set */
    int64_t empty_ns;    /* when the bucket was empty (see the top) */
    unsigned burst;      /* capacity in tokens; 0 when never set */
    atomic_uint users;   /* tasks inside acquire: queued or at the head */
    knit__pspin lk;      /* guards period_ns, empty_ns and burst */
};

_Static_assert(sizeof(knit_ratelimit) >= sizeof(struct ratelimit),
               "grow knit_ratelimit");

static inline struct ratelimit *impl(knit_ratelimit *l)
{
    return (struct ratelimit *)(void *)l;
}

static inline const struct ratelimit *cimpl(const knit_ratelimit *l)
{
    return (const struct ratelimit *)(const void *)l;
}

/* The bucket's lock, from a const pointer too: readers take it. */
static void lock(const struct ratelimit *x)
{
    knit__pspin_lock((knit__pspin *)&x->lk);
}

static void unlock(const struct ratelimit *x)
{
    knit__pspin_unlock((knit__pspin *)&x->lk);
}

static unsigned burst_of(const struct ratelimit *x)
{
    lock(x);
    unsigned b = x->burst;
    unlock(x);
    return b;
}

static int64_t now_ns(void)
{
    return knit_now() * NS_PER_MS;
}

/* The period for @rate tokens a second, or -EINVAL. */
static int period_of(double rate, unsigned burst, int64_t *period)
{
    /* The comparisons also turn NaN away. */
    if (!(rate > 0) || !(rate <= DBL_MAX) || burst == 0)
        return -EINVAL;
    double p = NS_PER_S / rate;
    if (p > (double)MAX_SPAN_NS)
        return -EINVAL;
    int64_t ns = (int64_t)(p + 0.5);
    if (ns < 1)
        ns = 1; /* over a billion a second: one a nanosecond */
    if (ns > MAX_SPAN_NS / (int64_t)burst)
        return -EINVAL;
    *period = ns;
    return 0;
}

/* The empty time, moved up so that the bucket holds at most burst. */
static int64_t empty_at(const struct ratelimit *x, int64_t now)
{
    int64_t full = now - (int64_t)x->burst * x->period_ns;
    return x->empty_ns > full ? x->empty_ns : full;
}

static bool is_full(const struct ratelimit *x, int64_t now)
{
    return x->burst == 0 ||
           empty_at(x, now) + (int64_t)x->burst * x->period_ns <= now;
}

int knit_ratelimit_init(knit_ratelimit *l, double rate_per_s, unsigned burst)
{
    int64_t period;
    int err = period_of(rate_per_s, burst, &period);
    if (err < 0)
        return err;
    struct ratelimit *x = impl(l);
    memset(x, 0, sizeof(*x)); /* an unlocked mutex, a notify with no permit */
    x->period_ns = period;
    x->empty_ns = LONG_AGO;
    x->burst = burst;
    return 0;
}

/*
 * Takes @n tokens when the bucket holds them at @now; else returns the
 * time they will be there, in ns (> now). @since is the earliest time the
 * caller could have taken them (<= now): the bucket's cap is applied
 * there. A waiter wakes on a whole ms, after its tokens were complete;
 * capping at the wake-up time would throw away what overflowed in
 * between, and a consumer that always waits would drift below the rate
 * (3/s would give 334, 668, 1002 ms instead of 334, 667, 1000).
 */
static int64_t take(struct ratelimit *x, unsigned n, int64_t since, int64_t now)
{
    int64_t ready = empty_at(x, since) + (int64_t)n * x->period_ns;
    if (ready > now)
        return ready;
    x->empty_ns = ready;
    return 0;
}

/* The head's wait: until the tokens are there, or the scope fires. */
static int wait_tokens(struct ratelimit *x, unsigned n)
{
    int64_t since = now_ns();
    for (;;) {
        int64_t now = now_ns();
        lock(x);
        bool too_many = n > x->burst; /* set_rate shrank the bucket */
        int64_t ready =
            too_many ? 0 : take(x, n, since < now ? since : now, now);
        unlock(x);
        if (too_many)
            return -EINVAL;
        if (ready == 0)
            return 0;
        since = ready;
        /* knit_now() is in ms: round up, or we would wake a moment early
         * and go round again. */
        int64_t at = (ready + NS_PER_MS - 1) / NS_PER_MS;
        knit_case cases[2] = {knit_case_deadline(at),
                              knit_case_notify(&x->changed)};
        /* Biased: the order does not matter here, and a random start
         * would draw from knit_random() and shift seeded jitter. */
        int r = knit_select_biased(cases, 2);
        if (r < 0)
            return r;
    }
}

/* The acquire of a caller already counted in x->users. */
static int acquire_counted(struct ratelimit *x, unsigned n)
{
    if (n > burst_of(x))
        return -EINVAL;
    if (n == 0)
        return 0;
    int err = knit_mutex_lock(&x->queue);
    if (err == 0) {
        err = wait_tokens(x, n);
        knit_mutex_unlock(&x->queue); /* hands the head to the next one */
    }
    return err;
}

int knit_ratelimit_acquire(knit_ratelimit *l, unsigned n)
{
    struct ratelimit *x = impl(l);
    atomic_fetch_add_explicit(&x->users, 1, memory_order_relaxed);
    int err = acquire_counted(x, n);
    atomic_fetch_sub_explicit(&x->users, 1, memory_order_release);
    return err;
}

int knit_ratelimit_try_acquire(knit_ratelimit *l, unsigned n)
{
    struct ratelimit *x = impl(l);
    if (n > burst_of(x))
        return -EINVAL;
    /* Taking the mutex (rather than peeking) keeps every change to the
     * bucket under it; it fails exactly when tasks wait. */
    if (knit_mutex_try_lock(&x->queue) < 0)
        return -EAGAIN;
    int64_t now = now_ns();
    lock(x);
    int err = n <= x->burst && take(x, n, now, now) == 0 ? 0 : -EAGAIN;
    unlock(x);
    knit_mutex_unlock(&x->queue);
    return err;
}

int knit_ratelimit_set_rate(knit_ratelimit *l, double rate_per_s,
                            unsigned burst)
{
    struct ratelimit *x = impl(l);
    int64_t period;
    int err = period_of(rate_per_s, burst, &period);
    if (err < 0)
        return err;
    int64_t now = now_ns();
    lock(x);
    if (x->period_ns > 0) {
        /* Keep the tokens held, fractions included: the same count of
         * periods before now, measured in the new period. */
        double held = (double)(now - empty_at(x, now)) / (double)x->period_ns;
        x->empty_ns = now - (int64_t)(held * (double)period + 0.5);
    } else {
        x->empty_ns = LONG_AGO;
    }
    x->period_ns = period;
    x->burst = burst;
    x->empty_ns = empty_at(x, now); /* down to the new burst */
    unlock(x);
    knit_notify_all(&x->changed); /* the head recomputes its wait */
    return 0;
}

unsigned knit_ratelimit_available(const knit_ratelimit *l)
{
    const struct ratelimit *x = cimpl(l);
    int64_t now = now_ns();
    unsigned n = 0;
    lock(x);
    if (x->burst != 0 && x->period_ns > 0)
        n = (unsigned)((now - empty_at(x, now)) / x->period_ns);
    unlock(x);
    return n;
}

void knit_ratelimit_destroy(knit_ratelimit *l)
{
    struct ratelimit *x = impl(l);
    if (atomic_load_explicit(&x->users, memory_order_acquire))
        knit__pattern_misuse(
            "knit_ratelimit_destroy: tasks are waiting on the limiter");
    memset(x, 0, sizeof(*x));
}

/* ---- the keyed limiter ------------------------------------------------- */

/* One key's bucket. Heap-allocated, so its address stays put while the
 * table grows: a task waiting in its limiter points into it. */
struct kentry {
    struct kentry *next; /* chain of slots[hash & mask]; owned by the map */
    uint64_t hash;       /* of key */
    int64_t last_used;   /* knit_now() of the last call on the key */
    bool pinned;         /* has an override: never evicted */
    knit_ratelimit lim;  /* the bucket */
    char key[];          /* NUL-terminated copy of the key */
};

struct knit_keyed_ratelimit {
    struct kentry **slots; /* mask + 1 chains */
    size_t mask;           /* slots - 1; the count is a power of two */
    size_t count;          /* entries, evictable ones included */
    double rate;           /* default rate of a new key */
    unsigned burst;        /* default burst of a new key */
    int64_t idle_ms;       /* evict after this long unused; < 0: never */
    int64_t next_sweep;    /* the earliest knit_now() of the next sweep */
    knit__pspin lk;        /* guards all of the above and every entry's
                              next, last_used and pinned */
};

#define INITIAL_SLOTS 16

/* FNV-1a: short keys (host names), no attacker-chosen flood expected;
 * a crawler keys by hosts it chose to visit. */
static uint64_t hash_key(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static bool is_evictable(const knit_keyed_ratelimit *k, const struct kentry *e,
                         int64_t now)
{
    const struct ratelimit *x = cimpl(&e->lim);
    if (k->idle_ms < 0 || e->pinned ||
        atomic_load_explicit(&x->users, memory_order_acquire) != 0 ||
        now - e->last_used < k->idle_ms)
        return false;
    lock(x);
    bool full = is_full(x, now * NS_PER_MS);
    unlock(x);
    return full;
}

/* Frees the evictable entries, at most once per idle_ms: a full pass is
 * O(keys), so this bounds its cost to O(keys) per idle period. */
static void sweep(knit_keyed_ratelimit *k, int64_t now)
{
    if (k->idle_ms < 0 || now < k->next_sweep)
        return;
    k->next_sweep = now + (k->idle_ms > 0 ? k->idle_ms : 1);
    for (size_t i = 0; i <= k->mask; i++) {
        struct kentry **pp = &k->slots[i];
        while (*pp) {
            struct kentry *e = *pp;
            if (is_evictable(k, e, now)) {
                *pp = e->next;
                free(e);
                k->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

/* Doubles the table; on ENOMEM keeps the old one (chains get longer). */
static void grow(knit_keyed_ratelimit *k)
{
    size_t n = (k->mask + 1) * 2;
    struct kentry **slots = calloc(n, sizeof(*slots));
    if (!slots)
        return;
    for (size_t i = 0; i <= k->mask; i++) {
        struct kentry *e = k->slots[i];
        while (e) {
            struct kentry *next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(k->slots);
    k->slots = slots;
    k->mask = n - 1;
}

static struct kentry *find(const knit_keyed_ratelimit *k, const char *key,
                           uint64_t h)
{
    for (struct kentry *e = k->slots[h & k->mask]; e; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* @key's entry, created full with @rate and @burst (checked by the
 * caller) when missing; NULL on ENOMEM. */
static struct kentry *get(knit_keyed_ratelimit *k, const char *key, double rate,
                          unsigned burst, int64_t now)
{
    uint64_t h = hash_key(key);
    struct kentry *e = find(k, key, h);
    if (e)
        return e;
    size_t len = strlen(key);
    e = malloc(sizeof(*e) + len + 1);
    if (!e)
        return NULL;
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, len + 1);
    e->hash = h;
    e->last_used = now;
    (void)knit_ratelimit_init(&e->lim, rate, burst);
    if (k->count + 1 > (k->mask + 1) / 4 * 3)
        grow(k);
    e->next = k->slots[h & k->mask];
    k->slots[h & k->mask] = e;
    k->count++;
    return e;
}

/* Sweeps, finds or makes @key's entry and counts the caller in its users,
 * all under the table's lock; NULL on ENOMEM. */
static struct kentry *enter(knit_keyed_ratelimit *k, const char *key)
{
    int64_t now = knit_now();
    knit__pspin_lock(&k->lk);
    sweep(k, now);
    struct kentry *e = get(k, key, k->rate, k->burst, now);
    if (e) {
        e->last_used = now;
        atomic_fetch_add_explicit(&impl(&e->lim)->users, 1,
                                  memory_order_relaxed);
    }
    knit__pspin_unlock(&k->lk);
    return e;
}

/* The end of a call that entered @e: after it a sweep may free e. */
static void leave(knit_keyed_ratelimit *k, struct kentry *e)
{
    int64_t now = knit_now();
    knit__pspin_lock(&k->lk);
    e->last_used = now;
    atomic_fetch_sub_explicit(&impl(&e->lim)->users, 1, memory_order_release);
    knit__pspin_unlock(&k->lk);
}

knit_keyed_ratelimit *knit_keyed_ratelimit_new(double rate_per_s,
                                               unsigned burst, int64_t idle_ms)
{
    int64_t period;
    if (period_of(rate_per_s, burst, &period) < 0)
        return NULL;
    knit_keyed_ratelimit *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->slots = calloc(INITIAL_SLOTS, sizeof(*k->slots));
    if (!k->slots) {
        free(k);
        return NULL;
    }
    k->mask = INITIAL_SLOTS - 1;
    k->rate = rate_per_s;
    k->burst = burst;
    k->idle_ms = idle_ms < 0 ? -1 : idle_ms;
    return k;
}

int knit_keyed_ratelimit_acquire(knit_keyed_ratelimit *k, const char *key,
                                 unsigned n)
{
    if (!key)
        return -EINVAL;
    struct kentry *e = enter(k, key);
    if (!e)
        return -ENOMEM;
    /* While the call waits its bucket has a user, so no sweep frees e. */
    int err = acquire_counted(impl(&e->lim), n);
    leave(k, e);
    return err;
}

int knit_keyed_ratelimit_try_acquire(knit_keyed_ratelimit *k, const char *key,
                                     unsigned n)
{
    if (!key)
        return -EINVAL;
    struct kentry *e = enter(k, key);
    if (!e)
        return -ENOMEM;
    int err = knit_ratelimit_try_acquire(&e->lim, n);
    leave(k, e);
    return err;
}

int knit_keyed_ratelimit_set_rate(knit_keyed_ratelimit *k, const char *key,
                                  double rate_per_s, unsigned burst)
{
    if (!key)
        return -EINVAL;
    int64_t now = knit_now();
    /* All under the table's lock: set_rate never parks. */
    if (rate_per_s == 0) {
        knit__pspin_lock(&k->lk);
        struct kentry *e = find(k, key, hash_key(key));
        if (e) { /* no key, no override */
            (void)knit_ratelimit_set_rate(&e->lim, k->rate, k->burst);
            e->pinned = false;
            e->last_used = now;
        }
        knit__pspin_unlock(&k->lk);
        return 0;
    }
    int64_t period;
    int err = period_of(rate_per_s, burst, &period);
    if (err < 0)
        return err;
    knit__pspin_lock(&k->lk);
    sweep(k, now);
    /* A new key starts full at the override's burst. */
    struct kentry *e = get(k, key, rate_per_s, burst, now);
    if (e) {
        (void)knit_ratelimit_set_rate(&e->lim, rate_per_s, burst);
        e->pinned = true;
        e->last_used = now;
    }
    knit__pspin_unlock(&k->lk);
    return e ? 0 : -ENOMEM;
}

size_t knit_keyed_ratelimit_size(const knit_keyed_ratelimit *k)
{
    int64_t now = knit_now();
    size_t n = 0;
    knit__pspin *lk = (knit__pspin *)&k->lk;
    knit__pspin_lock(lk);
    for (size_t i = 0; i <= k->mask; i++)
        for (const struct kentry *e = k->slots[i]; e; e = e->next)
            n += !is_evictable(k, e, now);
    knit__pspin_unlock(lk);
    return n;
}

void knit_keyed_ratelimit_free(knit_keyed_ratelimit *k)
{
    if (!k)
        return;
    for (size_t i = 0; i <= k->mask; i++)
        for (const struct kentry *e = k->slots[i]; e; e = e->next)
            if (atomic_load_explicit(&cimpl(&e->lim)->users,
                                     memory_order_acquire))
                knit__pattern_misuse(
                    "knit_keyed_ratelimit_free: tasks are waiting on "
                    "the limiter");
    for (size_t i = 0; i <= k->mask; i++) {
        struct kentry *e = k->slots[i];
        while (e) {
            struct kentry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(k->slots);
    free(k);
}
