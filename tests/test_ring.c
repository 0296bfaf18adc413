// SPDX-License-Identifier: MIT
/*
 * Tests for the spawn ring (src/core/ring.c), driven directly, no
 * runtime: FIFO order, batch sizes, growth past the first buffer with
 * takes in between, and the exactly-once claim with one owner pushing
 * while two threads take (the run that matters is under TSan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/ring.h"

/* The ring only stores pointers: fake task pointers, never read. */
#define TASK(i) ((struct knit_task *)(uintptr_t)(((uintptr_t)(i) + 1) * 16))
#define INDEX(t) ((uint64_t)((uintptr_t)(t) / 16 - 1))

static void empty_ring_takes_nothing(void **state)
{
    (void)state;
    struct knit_ring r;
    assert_int_equal(knit__ring_init(&r), 0);
    struct knit_task *out[8];
    assert_int_equal(knit__ring_len(&r), 0);
    assert_int_equal(knit__ring_take(&r, out, 1, 8), 0);
    knit__ring_fini(&r);
}

static void takes_are_fifo_and_sized(void **state)
{
    (void)state;
    struct knit_ring r;
    assert_int_equal(knit__ring_init(&r), 0);
    for (int i = 0; i < 10; i++)
        assert_true(knit__ring_push(&r, TASK(i)));
    assert_int_equal(knit__ring_len(&r), 10);
    struct knit_task *out[64];
    /* a quarter of 10, rounded up: 3 */
    assert_int_equal(knit__ring_take(&r, out, 4, 8), 3);
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(out[i], TASK(i));
    /* half of 7, rounded up: 4, capped at 2 */
    assert_int_equal(knit__ring_take(&r, out, 2, 2), 2);
    assert_ptr_equal(out[0], TASK(3));
    assert_ptr_equal(out[1], TASK(4));
    assert_int_equal(knit__ring_head(&r), 5);
    /* the rest, at least one at a time */
    uint64_t next = 5;
    unsigned n;
    while ((n = knit__ring_take(&r, out, 64, 64)) > 0) {
        assert_int_equal(n, 1);
        assert_ptr_equal(out[0], TASK(next));
        next++;
    }
    assert_int_equal(next, 10);
    knit__ring_fini(&r);
}

/* Pushes far past the first buffer while taking now and then: every
 * task comes out once, in order, across three doublings. */
static void grows_keeping_order(void **state)
{
    (void)state;
    struct knit_ring r;
    assert_int_equal(knit__ring_init(&r), 0);
    const uint64_t total = KNIT_RING_FIRST * 5 + 3;
    uint64_t pushed = 0, next = 0;
    struct knit_task *out[8];
    while (pushed < total) {
        assert_true(knit__ring_push(&r, TASK(pushed)));
        pushed++;
        if (pushed % 7 == 0) {
            unsigned n = knit__ring_take(&r, out, 4, 2);
            for (unsigned i = 0; i < n; i++)
                assert_int_equal(INDEX(out[i]), next++);
        }
    }
    assert_true(atomic_load(&r.buf)->mask + 1 > KNIT_RING_FIRST);
    assert_int_equal(knit__ring_len(&r), total - next);
    unsigned n;
    while ((n = knit__ring_take(&r, out, 1, 8)) > 0)
        for (unsigned i = 0; i < n; i++)
            assert_int_equal(INDEX(out[i]), next++);
    assert_int_equal(next, total);
    knit__ring_fini(&r);
}

/* ---- one owner, two takers ------------------------------------------- */

#define MT_TOTAL 200000u
#define MT_TAKERS 2

struct mt {
    struct knit_ring r;
    _Atomic uint8_t seen[MT_TOTAL]; /* times each task was taken */
    atomic_bool done;               /* the owner pushed everything */
    _Atomic uint64_t taken;
};

/* Takes halves until the owner is done and the ring is empty. */
static void *taker(void *arg)
{
    struct mt *m = arg;
    struct knit_task *out[64];
    for (;;) {
        bool done = atomic_load(&m->done);
        unsigned n = knit__ring_take(&m->r, out, 2, 64);
        for (unsigned i = 0; i < n; i++)
            atomic_fetch_add(&m->seen[INDEX(out[i])], 1);
        atomic_fetch_add(&m->taken, n);
        if (n == 0 && done)
            return NULL;
    }
}

static void every_task_is_taken_once(void **state)
{
    (void)state;
    struct mt *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    assert_int_equal(knit__ring_init(&m->r), 0);
    pthread_t th[MT_TAKERS];
    for (int i = 0; i < MT_TAKERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, taker, m), 0);
    /* The owner takes too, a quarter at a time, as a worker does. */
    struct knit_task *out[8];
    for (uint64_t i = 0; i < MT_TOTAL; i++) {
        assert_true(knit__ring_push(&m->r, TASK(i)));
        if (i % 5 == 0) {
            unsigned n = knit__ring_take(&m->r, out, 4, 8);
            for (unsigned k = 0; k < n; k++)
                atomic_fetch_add(&m->seen[INDEX(out[k])], 1);
            atomic_fetch_add(&m->taken, n);
        }
    }
    atomic_store(&m->done, true);
    for (int i = 0; i < MT_TAKERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&m->taken), MT_TOTAL);
    for (uint64_t i = 0; i < MT_TOTAL; i++)
        if (atomic_load(&m->seen[i]) != 1)
            fail_msg("task %llu taken %u times", (unsigned long long)i,
                     (unsigned)atomic_load(&m->seen[i]));
    knit__ring_fini(&m->r);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_ring_takes_nothing),
        cmocka_unit_test(takes_are_fifo_and_sized),
        cmocka_unit_test(grows_keeping_order),
        cmocka_unit_test(every_task_is_taken_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
