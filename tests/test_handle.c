// SPDX-License-Identifier: MIT
/*
 * knit_handle: spawning into a runtime from other threads (here the
 * blocking pool's, which are plain threads), from its own tasks, after
 * main returned and after the runtime ended; bad arguments; out of memory.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "kt.h"

#define NSPAWN 500

struct fan {
    knit_handle *h;
    knit_chan *c; /* each spawned task sends its index */
    int n;
};

struct sent {
    knit_chan *c;
    int i;
};

static int send_index(void *arg)
{
    struct sent *s = arg;
    int r = knit_chan_send(s->c, &s->i);
    free(s);
    return r;
}

/* A blocking job (a plain thread): hands n tasks over; returns how many
 * spawns said 0. */
static int spawn_from_thread(void *arg)
{
    struct fan *f = arg;
    int ok = 0;
    for (int i = 0; i < f->n; i++) {
        struct sent *s = malloc(sizeof(*s));
        if (!s)
            break;
        *s = (struct sent){.c = f->c, .i = i};
        knit_task_opts o = {.name = "from-thread"};
        int r = knit_handle_spawn(f->h, &o, send_index, s);
        if (r != 0) {
            free(s);
            break;
        }
        ok++;
    }
    return ok;
}

static int t_from_thread(void *arg)
{
    (void)arg;
    struct fan f = {.h = knit_handle_get(), .c = knit_chan_new(sizeof(int), 16),
                    .n = NSPAWN};
    assert_non_null(f.h);
    assert_non_null(f.c);
    knit_task *job = knit_spawn_blocking(spawn_from_thread, &f);
    assert_non_null(job);
    static unsigned char seen[NSPAWN];
    memset(seen, 0, sizeof(seen));
    int64_t sum = 0;
    for (int k = 0; k < NSPAWN; k++) {
        int v = -1;
        assert_int_equal(knit_chan_recv(f.c, &v), 0);
        assert_true(v >= 0 && v < NSPAWN);
        assert_int_equal(seen[v], 0);
        seen[v] = 1;
        sum += v;
    }
    assert_int_equal(knit_join(job), NSPAWN);
    assert_int_equal(sum, (int64_t)NSPAWN * (NSPAWN - 1) / 2);
    assert_int_equal(knit_chan_try_recv(f.c, &(int){0}), -EAGAIN);
    kt_settle(); /* the senders end after their send */
    knit_chan_unref(f.c);
    knit_handle_unref(f.h);
    return 0;
}

static void a_plain_thread_spawns_tasks_that_report_through_a_channel(
    void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_from_thread, NULL), 0);
}

/* From a task of the runtime itself: spawned at once, named as asked. */
static int report_name(void *arg)
{
    knit_chan *c = arg;
    const char *name = knit_task_name(knit_current());
    int ok = strcmp(name, "inside") == 0;
    return knit_chan_send(c, &ok);
}

static int t_inside(void *arg)
{
    (void)arg;
    knit_handle *h = knit_handle_get();
    knit_chan *c = knit_chan_new(sizeof(int), 1);
    assert_non_null(h);
    assert_non_null(c);
    knit_task_opts o = {.name = "inside"};
    assert_int_equal(knit_handle_spawn(h, &o, report_name, c), 0);
    int ok = 0;
    assert_int_equal(knit_chan_recv(c, &ok), 0);
    assert_int_equal(ok, 1);
    knit_chan_unref(c);
    knit_handle_unref(h);
    return 0;
}

static void a_task_of_the_runtime_spawns_through_its_handle(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_inside, NULL), 0);
}

/* After main returns the handle refuses, and the runtime's end does not
 * free a handle someone still holds. */
static atomic_int late_ran;
static knit_handle *kept;

static int count_run(void *arg)
{
    (void)arg;
    atomic_fetch_add(&late_ran, 1);
    return 0;
}

/* A detached blocking job: spawns until the handle says -ESHUTDOWN (main
 * has returned); the runtime waits for it. */
struct late {
    knit_handle *h;
    atomic_int accepted;
    atomic_int last;
};

static int spawn_until_refused(void *arg)
{
    struct late *l = arg;
    for (;;) {
        int r = knit_handle_spawn(l->h, NULL, count_run, NULL);
        if (r != 0) {
            atomic_store(&l->last, r);
            return 0;
        }
        atomic_fetch_add(&l->accepted, 1);
        usleep(100);
    }
}

static struct late late;

static int t_late(void *arg)
{
    (void)arg;
    late.h = knit_handle_get();
    kept = knit_handle_get();
    assert_non_null(late.h);
    assert_ptr_equal(late.h, kept);
    knit_task *job = knit_spawn_blocking(spawn_until_refused, &late);
    assert_non_null(job);
    knit_detach(job);
    /* Let some spawns through and run before main returns (yields: the
     * manual clock stands still while a blocking job is in flight). */
    while (atomic_load(&late_ran) < 5)
        assert_int_equal(knit_yield(), 0);
    return 0;
}

static void the_handle_refuses_once_main_returned_and_outlives_the_runtime(
    void **state)
{
    (void)state;
    atomic_store(&late_ran, 0);
    atomic_store(&late.accepted, 0);
    atomic_store(&late.last, 0);
    /* knit_run itself: main leaves the detached job running on purpose,
     * which kt_run would report. */
    knit_config cfg;
    kt_config(&cfg);
    assert_int_equal(knit_run(&cfg, t_late, NULL), 0);
    assert_int_equal(atomic_load(&late.last), -ESHUTDOWN);
    /* Each accepted spawn ran at most once (the ones still in the inbox
     * when main returned never did). */
    assert_true(atomic_load(&late_ran) <= atomic_load(&late.accepted));
    assert_true(atomic_load(&late_ran) >= 5);
    /* The runtime is gone; the handle is not. */
    assert_int_equal(knit_handle_spawn(kept, NULL, count_run, NULL),
                     -ESHUTDOWN);
    knit_handle_unref(late.h);
    knit_handle_unref(kept); /* the last reference: LeakSanitizer checks */
}

/* A spawn handed over just before main returns, which worker 0 never
 * drains: the runtime's end frees it (LeakSanitizer) and it never runs.
 * Main does not yield between the hand-over and its return, so the
 * worker does not poll its inbox again. */
static atomic_int posted;

static void *post_one(void *arg)
{
    atomic_store(&posted, knit_handle_spawn(arg, NULL, count_run, NULL) == 0
                              ? 1 : -1);
    return NULL;
}

static pthread_t poster;

static int t_last_moment(void *arg)
{
    (void)arg;
    knit_handle *h = knit_handle_get();
    assert_non_null(h);
    assert_int_equal(pthread_create(&poster, NULL, post_one, h), 0);
    while (atomic_load(&posted) == 0)
        ; /* no yield: see above */
    knit_handle_unref(h); /* the request holds its own reference */
    return 0;
}

static void a_spawn_handed_over_as_main_returns_is_freed_unrun(void **state)
{
    (void)state;
    atomic_store(&late_ran, 0);
    atomic_store(&posted, 0);
    knit_config cfg;
    kt_config(&cfg);
    assert_int_equal(knit_run(&cfg, t_last_moment, NULL), 0);
    assert_int_equal(pthread_join(poster, NULL), 0);
    assert_int_equal(atomic_load(&posted), 1);
    assert_int_equal(atomic_load(&late_ran), 0);
}

static int t_bad(void *arg)
{
    (void)arg;
    knit_handle *h = knit_handle_get();
    assert_non_null(h);
    assert_int_equal(knit_handle_spawn(h, NULL, NULL, NULL), -EINVAL);
    knit_task_opts lazy = {.lazy = true};
    assert_int_equal(knit_handle_spawn(h, &lazy, count_run, NULL), -EINVAL);
    knit_task_opts tiny = {.stack_size = 1024};
    assert_int_equal(knit_handle_spawn(h, &tiny, count_run, NULL), -EINVAL);
    knit_handle_unref(h);
    return 0;
}

static void bad_arguments_are_refused(void **state)
{
    (void)state;
    assert_null(knit_handle_get()); /* outside a runtime */
    assert_int_equal(knit_handle_spawn(NULL, NULL, count_run, NULL), -EINVAL);
    knit_handle_unref(NULL);
    assert_int_equal(kt_run(t_bad, NULL), 0);
}

/* Out of memory in a plain thread's spawn: -ENOMEM, nothing started. */
static int spawn_without_memory(void *arg)
{
    knit_handle *h = arg;
    knit__alloc_fail_after(1);
    int r = knit_handle_spawn(h, NULL, count_run, NULL);
    knit__alloc_fail_after(0);
    return r;
}

static int t_oom(void *arg)
{
    (void)arg;
    knit_handle *h = knit_handle_get();
    assert_non_null(h);
    knit_task *job = knit_spawn_blocking(spawn_without_memory, h);
    assert_non_null(job);
    assert_int_equal(knit_join(job), -ENOMEM);
    knit_handle_unref(h);
    return 0;
}

static void out_of_memory_is_reported(void **state)
{
    (void)state;
    atomic_store(&late_ran, 0);
    assert_int_equal(kt_run(t_oom, NULL), 0);
    assert_int_equal(atomic_load(&late_ran), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            a_plain_thread_spawns_tasks_that_report_through_a_channel),
        cmocka_unit_test(a_task_of_the_runtime_spawns_through_its_handle),
        cmocka_unit_test(
            the_handle_refuses_once_main_returned_and_outlives_the_runtime),
        cmocka_unit_test(a_spawn_handed_over_as_main_returns_is_freed_unrun),
        cmocka_unit_test(bad_arguments_are_refused),
        cmocka_unit_test(out_of_memory_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
