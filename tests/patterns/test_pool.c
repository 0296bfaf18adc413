// SPDX-License-Identifier: MIT
/*
 * The resource pool (knit/patterns/pool.h). A fake resource records every
 * create, check and destroy with its time, and checks that each resource
 * it made is destroyed exactly once; every test ends by comparing the
 * two counts. On the manual clock with exact times: the size limit, FIFO
 * hand-off, a waiter that times out or is cancelled leaving every permit
 * behind (the full size is acquirable afterwards), create failures,
 * health checks, broken releases, the background keeper (min_idle,
 * eviction, retry after a failed create) and closing with waiters, with
 * resources checked out and with creates in flight. Misuse panics run in
 * child processes.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "kt.h"

/* ---- the fake resource --------------------------------------------------- */

#define MAXR 64

/* Resources are ids 1, 2, ... cast to pointers. */
struct fake {
    int64_t create_ms;       /* each create sleeps this long first */
    atomic_int fail_creates; /* so many next creates fail */
    int64_t check_ms;        /* each check sleeps this long first */
    atomic_bool bad[MAXR];   /* checks of these ids fail (set while they run) */
    bool alive[MAXR];        /* created and not yet destroyed */
    /* Atomics: the pool's users may run on several workers at once. */
    atomic_int next_id;       /* the last id made */
    atomic_int create_calls;  /* creates started */
    atomic_int created;       /* creates that succeeded */
    atomic_int destroyed;     /* destroy calls */
    atomic_int checks;        /* check calls */
    int64_t create_at[MAXR];  /* when each create started */
    int64_t destroy_at[MAXR]; /* by id: when it was destroyed */
};

static struct fake F;

static int fake_create(void *arg, void **res)
{
    struct fake *f = arg;
    int n = atomic_fetch_add(&f->create_calls, 1);
    assert_true(n < MAXR);
    f->create_at[n] = knit_now();
    if (f->create_ms > 0) {
        int err = knit_sleep(f->create_ms);
        if (err < 0)
            return err;
    }
    int fails = atomic_load(&f->fail_creates);
    while (fails > 0 &&
           !atomic_compare_exchange_weak(&f->fail_creates, &fails, fails - 1)) {
    }
    if (fails > 0)
        return -ECONNREFUSED;
    int id = atomic_fetch_add(&f->next_id, 1) + 1;
    assert_true(id < MAXR);
    f->alive[id] = true;
    atomic_fetch_add(&f->created, 1);
    *res = (void *)(intptr_t)id;
    return 0;
}

static void fake_destroy(void *arg, void *res)
{
    struct fake *f = arg;
    intptr_t id = (intptr_t)res;
    assert_true(id > 0 && id < MAXR);
    assert_true(f->alive[id]); /* once, and only what was made */
    f->alive[id] = false;
    atomic_fetch_add(&f->destroyed, 1);
    f->destroy_at[id] = knit_now();
}

static int fake_check(void *arg, void *res)
{
    struct fake *f = arg;
    intptr_t id = (intptr_t)res;
    assert_true(f->alive[id]);
    atomic_fetch_add(&f->checks, 1);
    if (f->check_ms > 0) {
        int err = knit_sleep(f->check_ms);
        if (err < 0)
            return err;
    }
    return f->bad[id] ? -EIO : 0;
}

static knit_pool_opts fake_opts(unsigned max_size)
{
    memset(&F, 0, sizeof(F));
    return (knit_pool_opts){.create = fake_create,
                            .destroy = fake_destroy,
                            .arg = &F,
                            .max_size = max_size};
}

/* Every resource made was destroyed, once (fake_destroy checks once). */
static void expect_all_destroyed(void)
{
    assert_int_equal(F.created, F.destroyed);
    for (int i = 0; i < MAXR; i++)
        assert_false(F.alive[i]);
}

static intptr_t id_of(void *res)
{
    return (intptr_t)res;
}

static knit_pool_stats stats(const knit_pool *p)
{
    knit_pool_stats s;
    knit_pool_stats_get(p, &s);
    return s;
}

/* ---- a user task --------------------------------------------------------- */

/* Acquires (in a scope with @deadline), holds for @hold ms, releases
 * (broken if asked) and records what happened. */
struct user {
    knit_pool *p;
    int64_t deadline; /* for the acquire; KNIT_FOREVER: none */
    int64_t hold;     /* ms to keep the resource */
    bool broken;      /* release it as broken */
    int err;          /* knit_pool_acquire's result */
    intptr_t id;      /* the resource got */
    int64_t got_at;   /* when acquire returned */
    int *order;       /* appends its index here when served */
    int *order_len;   /* entries in order */
    int index;        /* its index */
    int *inside;      /* shared: users holding a resource now */
    int *max_inside;  /* shared: the most at once */
};

/* Guards the users' shared counters: on several workers users run at
 * once. Never held across a knit call. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

static int user_fn(void *arg)
{
    struct user *u = arg;
    knit_scope s;
    knit_scope_enter(&s, u->deadline);
    void *r = (void *)1;
    u->err = knit_pool_acquire(u->p, &r);
    (void)knit_scope_exit(&s);
    u->got_at = knit_now();
    if (u->err < 0) {
        assert_null(r);
        return u->err;
    }
    u->id = id_of(r);
    pthread_mutex_lock(&shared_lock);
    if (u->order)
        u->order[(*u->order_len)++] = u->index;
    if (u->inside && ++*u->inside > *u->max_inside)
        *u->max_inside = *u->inside;
    pthread_mutex_unlock(&shared_lock);
    int err = knit_sleep(u->hold);
    pthread_mutex_lock(&shared_lock);
    if (u->inside)
        --*u->inside;
    pthread_mutex_unlock(&shared_lock);
    knit_pool_release(u->p, r, u->broken);
    return err;
}

static struct user user(knit_pool *p, int64_t hold)
{
    return (struct user){.p = p, .deadline = KNIT_FOREVER, .hold = hold};
}

/* ---- options ------------------------------------------------------------- */

static void pool_new_rejects_bad_options(void **state)
{
    (void)state;
    knit_pool_opts o = fake_opts(2);
    assert_null(knit_pool_new(NULL));
    o.create = NULL;
    assert_null(knit_pool_new(&o));
    o = fake_opts(0);
    assert_null(knit_pool_new(&o));
    o = fake_opts(2);
    o.min_idle = 3;
    assert_null(knit_pool_new(&o));
    /* A background task is needed, and there is no runtime to run it. */
    o.min_idle = 1;
    assert_null(knit_pool_new(&o));
    o.min_idle = 0;
    o.idle_ms = 1000;
    assert_null(knit_pool_new(&o));
    /* Without one, a pool may be made and freed anywhere. */
    o.idle_ms = 0;
    knit_pool *p = knit_pool_new(&o);
    assert_non_null(p);
    knit_pool_free(p);
    knit_pool_free(NULL);
    assert_int_equal(F.create_calls, 0);
}

static int t_bad_args(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(1);
    knit_pool *p = knit_pool_new(&o);
    assert_non_null(p);
    void *r = (void *)1;
    assert_int_equal(knit_pool_acquire(NULL, &r), -EINVAL);
    assert_null(r);
    assert_int_equal(knit_pool_acquire(p, NULL), -EINVAL);
    assert_int_equal(stats(p).size, 0);
    knit_pool_free(p);
    assert_int_equal(F.create_calls, 0);
    return 0;
}

static void pool_acquire_rejects_null_arguments(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_bad_args, NULL), 0);
}

/* ---- reuse and the size limit -------------------------------------------- */

static int t_reuse(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(2);
    F.create_ms = 10;
    knit_pool *p = knit_pool_new(&o);
    void *a;
    void *b;
    assert_int_equal(knit_pool_acquire(p, &a), 0);
    assert_int_equal(knit_now(), 10); /* made on demand */
    assert_int_equal(knit_pool_acquire(p, &b), 0);
    assert_int_equal(knit_now(), 20);
    assert_int_equal(id_of(a), 1);
    assert_int_equal(id_of(b), 2);
    knit_pool_stats s = stats(p);
    assert_int_equal(s.size, 2);
    assert_int_equal(s.in_use, 2);
    assert_int_equal(s.idle, 0);
    knit_pool_release(p, a, false);
    knit_pool_release(p, b, false);
    s = stats(p);
    assert_int_equal(s.idle, 2);
    assert_int_equal(s.in_use, 0);
    /* The most recently released goes out first, at once. */
    void *c;
    assert_int_equal(knit_pool_acquire(p, &c), 0);
    assert_int_equal(id_of(c), 2);
    assert_int_equal(knit_now(), 20);
    assert_int_equal(knit_pool_acquire(p, &a), 0);
    assert_int_equal(id_of(a), 1);
    knit_pool_release(p, a, false);
    knit_pool_release(p, c, false);
    s = stats(p);
    assert_int_equal(s.max_size, 2);
    assert_int_equal(s.acquired, 4);
    assert_int_equal(s.created, 2);
    assert_int_equal(s.destroyed, 0);
    assert_false(s.closed);
    knit_pool_free(p);
    expect_all_destroyed(); /* free destroyed the idle ones */
    assert_int_equal(F.destroy_at[1], 20);
    return 0;
}

static void pool_reuses_the_most_recently_released_resource(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_reuse, NULL), 0);
}

static int t_max_size(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(3);
    F.create_ms = 5;
    knit_pool *p = knit_pool_new(&o);
    struct user u[10];
    int inside = 0;
    int max_inside = 0;
    knit_group g;
    knit_group_init(&g, 0);
    for (int i = 0; i < 10; i++) {
        u[i] = user(p, 10 + 7 * (i % 4));
        u[i].inside = &inside;
        u[i].max_inside = &max_inside;
        assert_int_equal(knit_group_spawn(&g, user_fn, &u[i]), 0);
    }
    /* Sample the pool while they run. */
    for (int t = 0; t < 120; t++) {
        knit_pool_stats s = stats(p);
        assert_true(s.size <= 3);
        assert_true(s.in_use + s.pending <= 3);
        assert_int_equal(knit_sleep(1), 0);
    }
    assert_int_equal(knit_group_wait(&g), 0);
    assert_int_equal(max_inside, 3);
    knit_pool_stats s = stats(p);
    assert_int_equal(s.created, 3); /* made once, reused after */
    assert_int_equal(s.acquired, 10);
    assert_int_equal(s.idle, 3);
    assert_int_equal(s.waiting, 0);
    for (int i = 0; i < 10; i++)
        assert_true(u[i].id >= 1 && u[i].id <= 3);
    knit_pool_free(p);
    expect_all_destroyed();
    return 0;
}

static void pool_never_exceeds_max_size(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_max_size, NULL), 0);
}

static int t_fifo(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(2);
    knit_pool *p = knit_pool_new(&o);
    void *a;
    void *b;
    assert_int_equal(knit_pool_acquire(p, &a), 0);
    assert_int_equal(knit_pool_acquire(p, &b), 0);
    int order[5];
    int n = 0;
    struct user u[4];
    knit_task *t[4];
    for (int i = 0; i < 4; i++) {
        u[i] = user(p, 0);
        u[i].order = order;
        u[i].order_len = &n;
        u[i].index = i;
        t[i] = knit_spawn(user_fn, &u[i]);
        assert_int_equal(knit_sleep(1), 0); /* queue in this order */
    }
    assert_int_equal(stats(p).waiting, 4);
    /* Hand one back; then ask again at once: the queue goes first. */
    assert_int_equal(knit_sleep(10), 0);
    knit_pool_release(p, a, false);
    void *c;
    assert_int_equal(knit_pool_acquire(p, &c), 0);
    order[n++] = 4; /* main, last */
    assert_int_equal(knit_now(), 14);
    for (int i = 0; i < 4; i++)
        assert_int_equal(knit_join(t[i]), 0);
    assert_int_equal(n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(order[i], i);
    /* They took turns with resource 1: none was made for them. */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(u[i].id, 1);
        assert_int_equal(u[i].got_at, 14);
    }
    knit_pool_release(p, b, false);
    knit_pool_release(p, c, false);
    assert_int_equal(stats(p).created, 2);
    knit_pool_free(p);
    expect_all_destroyed();
    return 0;
}

static void pool_serves_waiters_in_fifo_order_without_barging(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_fifo, NULL), 0);
}

/* ---- giving up while waiting --------------------------------------------- */

/* Holds every resource, lets two users queue, the first with a deadline
 * or cancelled, then checks that nothing leaked. */
static void give_up_while_waiting(bool cancel)
{
    knit_pool_opts o = fake_opts(2);
    knit_pool *p = knit_pool_new(&o);
    void *a;
    void *b;
    assert_int_equal(knit_pool_acquire(p, &a), 0);
    assert_int_equal(knit_pool_acquire(p, &b), 0);
    struct user quitter = user(p, 0);
    struct user patient = user(p, 0);
    if (!cancel)
        quitter.deadline = 50;
    knit_task *tq = knit_spawn(user_fn, &quitter);
    assert_int_equal(knit_sleep(1), 0);
    knit_task *tp = knit_spawn(user_fn, &patient);
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(stats(p).waiting, 2);
    if (cancel) {
        assert_int_equal(knit_sleep(29), 0);
        knit_cancel(tq); /* at t=31 */
    }
    int want = cancel ? -ECANCELED : -ETIMEDOUT;
    assert_int_equal(knit_join(tq), want);
    assert_int_equal(quitter.err, want);
    assert_int_equal(quitter.got_at, cancel ? 31 : 50);
    assert_int_equal(stats(p).waiting, 1);
    /* The one behind is served by the next release. */
    assert_int_equal(knit_sleep(100 - knit_now()), 0);
    knit_pool_release(p, a, false);
    assert_int_equal(knit_join(tp), 0);
    assert_int_equal(patient.got_at, 100);
    assert_int_equal(patient.id, 1);
    knit_pool_release(p, b, false);
    /* No permit leaked: the full size goes out at once. */
    assert_int_equal(knit_pool_acquire(p, &a), 0);
    assert_int_equal(knit_pool_acquire(p, &b), 0);
    assert_int_equal(knit_now(), 100);
    knit_pool_stats s = stats(p);
    assert_int_equal(s.in_use, 2);
    assert_int_equal(s.timeouts, cancel ? 0 : 1);
    assert_int_equal(s.cancelled, cancel ? 1 : 0);
    assert_int_equal(s.created, 2);
    knit_pool_release(p, a, false);
    knit_pool_release(p, b, false);
    knit_pool_free(p);
    expect_all_destroyed();
}

static int t_deadline(void *arg)
{
    (void)arg;
    give_up_while_waiting(false);
    return 0;
}

static int t_cancel(void *arg)
{
    (void)arg;
    give_up_while_waiting(true);
    return 0;
}

static void pool_acquire_times_out_in_its_scope_and_leaks_no_permit(void **st)
{
    (void)st;
    assert_int_equal(kt_run(t_deadline, NULL), 0);
}

static void pool_acquire_cancelled_while_waiting_leaks_no_permit(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_cancel, NULL), 0);
}

static int t_fired_scope(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(1);
    knit_pool *p = knit_pool_new(&o);
    void *r;
    assert_int_equal(knit_pool_acquire(p, &r), 0);
    knit_pool_release(p, r, false);
    /* An idle resource is there, but the scope has fired already. */
    knit_scope s;
    knit_scope_enter(&s, knit_now());
    assert_int_equal(knit_pool_acquire(p, &r), -ETIMEDOUT);
    assert_null(r);
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    knit_pool_stats st = stats(p);
    assert_int_equal(st.idle, 1);
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(knit_pool_acquire(p, &r), 0);
    knit_pool_release(p, r, false);
    knit_pool_free(p);
    expect_all_destroyed();
    return 0;
}

static void pool_acquire_in_a_fired_scope_fails_even_with_idle(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_fired_scope, NULL), 0);
}

/* ---- create failures ----------------------------------------------------- */

static int t_create_fails(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(1);
    F.create_ms = 10;
    F.fail_creates = 1;
    knit_pool *p = knit_pool_new(&o);
    /* The first create fails; the user queued behind it gets the permit
     * and makes its own. */
    struct user first = user(p, 0);
    struct user second = user(p, 5);
    knit_task *t1 = knit_spawn(user_fn, &first);
    kt_settle(); /* first is creating: second queues behind it */
    knit_task *t2 = knit_spawn(user_fn, &second);
    assert_int_equal(knit_join(t1), -ECONNREFUSED);
    assert_int_equal(first.got_at, 10);
    knit_scope sc;
    knit_scope_enter(&sc, 1000); /* a leaked permit would hang here */
    assert_int_equal(knit_join(t2), 0);
    assert_int_equal(knit_scope_exit(&sc), 0);
    assert_int_equal(second.got_at, 20);
    assert_int_equal(second.id, 1);
    knit_pool_stats s = stats(p);
    assert_int_equal(s.create_errors, 1);
    assert_int_equal(s.created, 1);
    assert_int_equal(s.size, 1);
    /* A create cut short by the caller's deadline: -ETIMEDOUT, and the
     * permit is back. */
    void *r;
    assert_int_equal(knit_pool_acquire(p, &r), 0);
    knit_pool_release(p, r, true);
    knit_scope_enter(&sc, knit_now() + 4);
    assert_int_equal(knit_pool_acquire(p, &r), -ETIMEDOUT);
    (void)knit_scope_exit(&sc);
    assert_int_equal(knit_now(), 29);
    s = stats(p);
    assert_int_equal(s.create_errors, 2);
    assert_int_equal(s.size, 0);
    assert_int_equal(s.pending, 0);
    assert_int_equal(knit_pool_acquire(p, &r), 0);
    assert_int_equal(knit_now(), 39);
    knit_pool_release(p, r, false);
    knit_pool_free(p);
    expect_all_destroyed();
    return 0;
}

static void
pool_create_failure_goes_to_the_acquirer_and_frees_the_permit(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_create_fails, NULL), 0);
}

/* ---- health checks and broken resources ---------------------------------- */

static int t_check(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(3);
    o.check = fake_check;
    o.check_idle_ms = 100;
    F.create_ms = 10;
    F.check_ms = 2;
    knit_pool *p = knit_pool_new(&o);
    void *r;
    assert_int_equal(knit_pool_acquire(p, &r), 0); /* id 1 at t=10 */
    knit_pool_release(p, r, false);
    /* Idle 40 ms: below the threshold, no check. */
    assert_int_equal(knit_sleep(40), 0);
    assert_int_equal(knit_pool_acquire(p, &r), 0);
    assert_int_equal(id_of(r), 1);
    assert_int_equal(F.checks, 0);
    knit_pool_release(p, r, false); /* at t=50 */
    /* Idle 99 ms: still no check. */
    assert_int_equal(knit_sleep(99), 0);
    assert_int_equal(knit_pool_acquire(p, &r), 0);
    assert_int_equal(F.checks, 0);
    knit_pool_release(p, r, false); /* at t=149 */
    /* Idle exactly 100 ms: checked, found bad, destroyed; a fresh one. */
    assert_int_equal(knit_sleep(100), 0);
    F.bad[1] = true;
    assert_int_equal(knit_pool_acquire(p, &r), 0);
    assert_int_equal(F.checks, 1);
    assert_int_equal(F.destroy_at[1], 251); /* after the 2 ms check */
    assert_int_equal(id_of(r), 2);
    assert_int_equal(knit_now(), 261); /* and a 10 ms create */
    knit_pool_stats s = stats(p);
    assert_int_equal(s.check_failures, 1);
    assert_int_equal(s.destroyed, 1);
    assert_int_equal(s.size, 1);
    /* A bad one with a good one idle behind it: the good one goes out. */
    void *r3;
    assert_int_equal(knit_pool_acquire(p, &r3), 0); /* id 3 at t=271 */
    knit_pool_release(p, r, false);                 /* 2, older */
    knit_pool_release(p, r3, false);                /* 3, newest */
    F.bad[3] = true;
    assert_int_equal(knit_sleep(200), 0);
    assert_int_equal(knit_pool_acquire(p, &r), 0);
    assert_int_equal(id_of(r), 2);
    assert_int_equal(F.checks, 3);
    assert_int_equal(knit_now(), 475); /* two checks, no create */
    assert_int_equal(stats(p).created, 3);
    knit_pool_release(p, r, false);
    knit_pool_free(p);
    expect_all_destroyed();
    return 0;
}

static void pool_failed_health_check_destroys_and_replaces(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_check, NULL), 0);
}

static int t_check_always(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(1);
    o.check = fake_check;
    knit_pool *p = knit_pool_new(&o);
    void *r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(knit_pool_acquire(p, &r), 0);
        knit_pool_release(p, r, false);
    }
    /* A new resource is not checked; the idle one is, every time. */
    assert_int_equal(F.checks, 2);
    /* A check cut short by the deadline counts as failed; the create
     * that follows fails in the fired scope too. */
    F.check_ms = 10;
    F.create_ms = 1;
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 5);
    assert_int_equal(knit_pool_acquire(p, &r), -ETIMEDOUT);
    (void)knit_scope_exit(&s);
    knit_pool_stats st = stats(p);
    assert_int_equal(st.check_failures, 1);
    assert_int_equal(st.create_errors, 1);
    assert_int_equal(st.size, 0);
    assert_int_equal(F.destroyed, 1);
    knit_pool_free(p);
    expect_all_destroyed();
    return 0;
}

static void pool_checks_every_checkout_when_check_idle_ms_is_zero(void **st)
{
    (void)st;
    assert_int_equal(kt_run(t_check_always, NULL), 0);
}

static int t_broken(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(1);
    knit_pool *p = knit_pool_new(&o);
    void *r;
    assert_int_equal(knit_pool_acquire(p, &r), 0);
    /* A waiter behind: it gets a fresh resource in place of the broken. */
    struct user w = user(p, 0);
    knit_task *t = knit_spawn(user_fn, &w);
    assert_int_equal(knit_sleep(5), 0);
    knit_pool_release(p, r, true);
    assert_int_equal(F.destroyed, 1);
    assert_int_equal(F.destroy_at[1], 5);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(w.id, 2);
    knit_pool_stats s = stats(p);
    assert_int_equal(s.broken, 1);
    assert_int_equal(s.created, 2);
    assert_int_equal(s.idle, 1);
    knit_pool_free(p);
    expect_all_destroyed();
    return 0;
}

static void pool_broken_release_destroys_instead_of_returning(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_broken, NULL), 0);
}

/* ---- the background keeper ----------------------------------------------- */

static int t_min_idle(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(3);
    o.min_idle = 2;
    F.create_ms = 10;
    knit_pool *p = knit_pool_new(&o);
    /* One at a time in the background: at t=10 and t=20. */
    assert_int_equal(knit_sleep(15), 0);
    knit_pool_stats s = stats(p);
    assert_int_equal(s.idle, 1);
    assert_int_equal(s.pending, 1);
    assert_int_equal(knit_sleep(6), 0);
    s = stats(p);
    assert_int_equal(s.idle, 2);
    assert_int_equal(s.pending, 0);
    assert_int_equal(F.create_at[0], 0);
    assert_int_equal(F.create_at[1], 10);
    /* Nothing more while 2 are idle. */
    assert_int_equal(knit_sleep(100), 0);
    assert_int_equal(F.create_calls, 2);
    /* Taking one is instant; the keeper makes another behind it. */
    void *a;
    assert_int_equal(knit_pool_acquire(p, &a), 0);
    assert_int_equal(knit_now(), 121);
    assert_int_equal(knit_sleep(11), 0);
    s = stats(p);
    assert_int_equal(s.idle, 2);
    assert_int_equal(s.in_use, 1);
    assert_int_equal(F.create_at[2], 121);
    /* At max_size, no more: the third in use leaves none to make. */
    void *b;
    void *c;
    assert_int_equal(knit_pool_acquire(p, &b), 0);
    assert_int_equal(knit_pool_acquire(p, &c), 0);
    assert_int_equal(knit_sleep(100), 0);
    assert_int_equal(F.create_calls, 3);
    assert_int_equal(stats(p).size, 3);
    /* A broken one frees a slot: replaced in the background. */
    knit_pool_release(p, c, true);
    assert_int_equal(knit_sleep(11), 0);
    s = stats(p);
    assert_int_equal(s.idle, 1);
    assert_int_equal(F.create_at[3], 232);
    knit_pool_release(p, a, false);
    knit_pool_release(p, b, false);
    assert_int_equal(knit_sleep(100), 0);
    assert_int_equal(stats(p).idle, 3);
    assert_int_equal(F.create_calls, 4);
    knit_pool_free(p);
    expect_all_destroyed();
    return 0;
}

static void pool_keeps_min_idle_warm_in_the_background(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_min_idle, NULL), 0);
}

static int t_evict(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(3);
    o.min_idle = 1;
    o.idle_ms = 1000;
    knit_pool *p = knit_pool_new(&o);
    void *r[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(knit_pool_acquire(p, &r[i]), 0);
    /* Released at t=100, 200 and 300. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(knit_sleep(100), 0);
        knit_pool_release(p, r[i], false);
    }
    assert_int_equal(knit_sleep(1099 - 300), 0);
    assert_int_equal(stats(p).idle, 3);
    assert_int_equal(knit_sleep(10000), 0);
    /* The two oldest went idle_ms after their release; one is kept. */
    assert_int_equal(F.destroy_at[id_of(r[0])], 1100);
    assert_int_equal(F.destroy_at[id_of(r[1])], 1200);
    knit_pool_stats s = stats(p);
    assert_int_equal(s.idle, 1);
    assert_int_equal(s.evicted, 2);
    assert_int_equal(F.destroyed, 2);
    assert_int_equal(F.create_calls, 3); /* min_idle was always there */
    /* A reuse restarts the clock of the resource it touched. Taking the
     * kept one and making a second leaves none idle, so the keeper makes
     * a third (id 5, idle from t=11099). */
    void *a;
    void *b;
    assert_int_equal(knit_pool_acquire(p, &a), 0); /* the kept one, id 3 */
    assert_int_equal(knit_pool_acquire(p, &b), 0); /* made: id 4 */
    assert_int_equal(id_of(a), 3);
    assert_int_equal(id_of(b), 4);
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(F.create_at[4], 11099);
    knit_pool_release(p, b, false); /* t=11100 */
    assert_int_equal(knit_sleep(500), 0);
    knit_pool_release(p, a, false); /* t=11600, the newest */
    assert_int_equal(knit_sleep(5000), 0);
    assert_int_equal(F.destroy_at[5], 12099);
    assert_int_equal(F.destroy_at[id_of(b)], 12100);
    assert_true(F.alive[id_of(a)]);
    assert_int_equal(stats(p).evicted, 4);
    knit_pool_free(p);
    expect_all_destroyed();
    assert_int_equal(F.destroy_at[id_of(a)], 16600);
    return 0;
}

static void
pool_evicts_idle_resources_at_exact_times_down_to_min_idle(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_evict, NULL), 0);
}

static int t_evict_all(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(2);
    o.idle_ms = 50;
    knit_pool *p = knit_pool_new(&o);
    void *a;
    void *b;
    assert_int_equal(knit_pool_acquire(p, &a), 0);
    assert_int_equal(knit_pool_acquire(p, &b), 0);
    knit_pool_release(p, a, false);
    assert_int_equal(knit_sleep(20), 0);
    knit_pool_release(p, b, false);
    assert_int_equal(knit_sleep(1000), 0);
    assert_int_equal(F.destroy_at[1], 50);
    assert_int_equal(F.destroy_at[2], 70);
    assert_int_equal(stats(p).size, 0);
    knit_pool_free(p);
    expect_all_destroyed();
    return 0;
}

static void pool_without_min_idle_evicts_every_idle_resource(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_evict_all, NULL), 0);
}

static int t_keeper_retry(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(2);
    o.min_idle = 1;
    o.retry_ms = 100;
    F.fail_creates = 3;
    knit_pool *p = knit_pool_new(&o);
    assert_int_equal(knit_sleep(1000), 0);
    /* Failed at 0, waited 100, 200, 400 (doubling), made it at 700. */
    assert_int_equal(F.create_calls, 4);
    assert_int_equal(F.create_at[0], 0);
    assert_int_equal(F.create_at[1], 100);
    assert_int_equal(F.create_at[2], 300);
    assert_int_equal(F.create_at[3], 700);
    knit_pool_stats s = stats(p);
    assert_int_equal(s.create_errors, 3);
    assert_int_equal(s.idle, 1);
    /* A success resets the backoff: the next failure waits 100 again. */
    void *r;
    F.fail_creates = 1;
    assert_int_equal(knit_pool_acquire(p, &r), 0); /* at t=1000 */
    assert_int_equal(knit_sleep(1000), 0);
    assert_int_equal(F.create_at[4], 1000);
    assert_int_equal(F.create_at[5], 1100);
    assert_int_equal(stats(p).idle, 1);
    knit_pool_release(p, r, false);
    knit_pool_free(p);
    expect_all_destroyed();
    return 0;
}

static void pool_keeper_retries_failed_creates_with_backoff(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_keeper_retry, NULL), 0);
}

static int t_keeper_yields(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(1);
    o.min_idle = 1;
    F.create_ms = 10;
    knit_pool *p = knit_pool_new(&o);
    /* The keeper holds the only permit while it creates; an acquirer
     * waits for it and takes what it made. */
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(stats(p).pending, 1);
    void *r;
    assert_int_equal(knit_pool_acquire(p, &r), 0);
    assert_int_equal(knit_now(), 10);
    assert_int_equal(id_of(r), 1);
    assert_int_equal(F.create_calls, 1);
    knit_pool_release(p, r, false);
    knit_pool_free(p);
    expect_all_destroyed();
    return 0;
}

static void pool_acquirer_takes_what_the_keeper_made(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_keeper_yields, NULL), 0);
}

/* ---- closing ------------------------------------------------------------- */

static int t_close_waiters(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(2);
    knit_pool *p = knit_pool_new(&o);
    void *a;
    void *b;
    assert_int_equal(knit_pool_acquire(p, &a), 0);
    assert_int_equal(knit_pool_acquire(p, &b), 0);
    struct user w[2] = {user(p, 0), user(p, 0)};
    knit_task *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = knit_spawn(user_fn, &w[i]);
    assert_int_equal(knit_sleep(10), 0);
    knit_pool_close(p);
    knit_pool_close(p); /* idempotent */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(knit_join(t[i]), -EPIPE);
        assert_int_equal(w[i].got_at, 10);
    }
    void *r;
    assert_int_equal(knit_pool_acquire(p, &r), -EPIPE);
    assert_null(r);
    /* Checked out at the close: destroyed on release, broken or not. */
    assert_int_equal(F.destroyed, 0);
    knit_pool_release(p, a, false);
    assert_int_equal(F.destroyed, 1);
    knit_pool_release(p, b, true);
    assert_int_equal(F.destroyed, 2);
    knit_pool_stats s = stats(p);
    assert_true(s.closed);
    assert_int_equal(s.size, 0);
    assert_int_equal(s.waiting, 0);
    knit_pool_free(p);
    expect_all_destroyed();
    return 0;
}

static void pool_close_wakes_waiters_and_destroys_on_release(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_close_waiters, NULL), 0);
}

static int t_close_idle(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(3);
    o.min_idle = 2;
    o.idle_ms = 1000;
    knit_pool *p = knit_pool_new(&o);
    assert_int_equal(knit_sleep(5), 0);
    void *r;
    assert_int_equal(knit_pool_acquire(p, &r), 0); /* one of the two */
    assert_int_equal(knit_sleep(5), 0);            /* topped up again */
    assert_int_equal(stats(p).idle, 2);
    knit_pool_close(p);
    /* The idle ones go at once; the keeper is stopped. */
    assert_int_equal(F.destroyed, 2);
    assert_int_equal(knit_sleep(5000), 0);
    assert_int_equal(F.create_calls, 3);
    knit_pool_release(p, r, false);
    knit_pool_free(p);
    expect_all_destroyed();
    return 0;
}

static void
pool_close_destroys_idle_resources_and_stops_the_keeper(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_close_idle, NULL), 0);
}

static int t_close_creating(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(3);
    o.min_idle = 1;
    F.create_ms = 50;
    knit_pool *p = knit_pool_new(&o);
    /* The keeper is creating (until t=50) and so is a user. */
    struct user u = user(p, 0);
    knit_task *t = knit_spawn(user_fn, &u);
    assert_int_equal(knit_sleep(10), 0);
    assert_int_equal(stats(p).pending, 2);
    knit_pool_close(p);
    /* The keeper's create is cancelled; the user's finishes at 50, and
     * what it made is destroyed: the pool is closed. */
    assert_int_equal(knit_join(t), -EPIPE);
    assert_int_equal(u.got_at, 50);
    assert_int_equal(F.created, 1);
    assert_int_equal(F.destroy_at[1], 50);
    knit_pool_free(p);
    expect_all_destroyed();
    assert_int_equal(F.create_calls, 2);
    return 0;
}

static void pool_close_during_creates_destroys_what_they_make(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_close_creating, NULL), 0);
}

static int t_free_cancelled(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(2);
    o.min_idle = 2;
    F.create_ms = 30;
    knit_pool *p = knit_pool_new(&o);
    assert_int_equal(knit_sleep(40), 0); /* one made, one on the way */
    /* Free in a cancelled task: the wait for the keeper is shielded. */
    knit_cancel(knit_current());
    knit_pool_free(p);
    expect_all_destroyed();
    assert_int_equal(F.created, 1);
    assert_int_equal(knit_now(), 40);
    return 0;
}

static void pool_free_in_a_cancelled_task_still_stops_the_keeper(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_free_cancelled, NULL), 0);
}

static int t_counts(void *arg)
{
    (void)arg;
    /* Many users, failures of every kind, then close: every resource
     * made is destroyed exactly once. */
    knit_pool_opts o = fake_opts(4);
    o.check = fake_check;
    o.min_idle = 1;
    o.idle_ms = 30;
    F.create_ms = 3;
    F.check_ms = 1;
    knit_pool *p = knit_pool_new(&o);
    struct user u[40];
    knit_group g;
    knit_group_init(&g, 0);
    for (int i = 0; i < 40; i++) {
        u[i] = user(p, 1 + (i * 7) % 13);
        u[i].broken = i % 5 == 0;
        u[i].deadline = i % 7 == 0 ? knit_now() + 2 : KNIT_FOREVER;
        if (i % 9 == 0)
            F.bad[(i % 20) + 1] = true;
        assert_int_equal(knit_group_spawn(&g, user_fn, &u[i]), 0);
        if (i % 3 == 0)
            assert_int_equal(knit_sleep(i % 11), 0);
    }
    (void)knit_group_wait(&g);
    knit_pool_close(p);
    knit_pool_free(p);
    expect_all_destroyed();
    assert_true(F.created > 4);
    return 0;
}

static void pool_destroys_every_resource_it_made_exactly_once(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_counts, NULL), 0);
}

/* ---- misuse -------------------------------------------------------------- */

static void expect_panic(knit_fn fn, const char *msg)
{
    int status;
    const char *err = kt_run_child(NULL, fn, NULL, &status);
    kt_expect_in(err, msg);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static int t_release_twice(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(1);
    knit_pool *p = knit_pool_new(&o);
    void *r;
    assert_int_equal(knit_pool_acquire(p, &r), 0);
    knit_pool_release(p, r, false);
    knit_pool_release(p, r, false); /* misuse */
    return 0;
}

static void pool_release_twice_panics(void **state)
{
    (void)state;
    expect_panic(t_release_twice, "knit: knit_pool_release: the resource is "
                                  "not checked out of this pool");
}

static int t_release_foreign(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(1);
    knit_pool *p = knit_pool_new(&o);
    knit_pool_release(p, (void *)(intptr_t)7, false); /* misuse */
    return 0;
}

static void pool_release_of_a_foreign_resource_panics(void **state)
{
    (void)state;
    expect_panic(t_release_foreign, "knit: knit_pool_release: the resource "
                                    "is not checked out of this pool");
}

static int t_free_in_use(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(1);
    knit_pool *p = knit_pool_new(&o);
    void *r;
    assert_int_equal(knit_pool_acquire(p, &r), 0);
    knit_pool_free(p); /* misuse */
    return 0;
}

static void pool_free_with_a_resource_checked_out_panics(void **state)
{
    (void)state;
    expect_panic(t_free_in_use, "knit: knit_pool_free: resources are still "
                                "checked out (in task ");
}

static knit_pool *doomed;

static int wait_doomed(void *arg)
{
    (void)arg;
    void *r;
    return knit_pool_acquire(doomed, &r);
}

static int t_free_waited(void *arg)
{
    (void)arg;
    knit_pool_opts o = fake_opts(1);
    F.create_ms = 10;
    doomed = knit_pool_new(&o);
    knit_task *t = knit_spawn(wait_doomed, NULL);
    assert_int_equal(knit_sleep(1), 0); /* it is creating */
    knit_pool_free(doomed);             /* misuse */
    return knit_join(t);
}

static void pool_free_with_a_task_inside_acquire_panics(void **state)
{
    (void)state;
    expect_panic(t_free_waited, "knit: knit_pool_free: tasks are still "
                                "inside knit_pool_acquire");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_new_rejects_bad_options),
        cmocka_unit_test(pool_acquire_rejects_null_arguments),
        cmocka_unit_test(pool_reuses_the_most_recently_released_resource),
        cmocka_unit_test(pool_never_exceeds_max_size),
        cmocka_unit_test(pool_serves_waiters_in_fifo_order_without_barging),
        cmocka_unit_test(
            pool_acquire_times_out_in_its_scope_and_leaks_no_permit),
        cmocka_unit_test(pool_acquire_cancelled_while_waiting_leaks_no_permit),
        cmocka_unit_test(pool_acquire_in_a_fired_scope_fails_even_with_idle),
        cmocka_unit_test(
            pool_create_failure_goes_to_the_acquirer_and_frees_the_permit),
        cmocka_unit_test(pool_failed_health_check_destroys_and_replaces),
        cmocka_unit_test(pool_checks_every_checkout_when_check_idle_ms_is_zero),
        cmocka_unit_test(pool_broken_release_destroys_instead_of_returning),
        cmocka_unit_test(pool_keeps_min_idle_warm_in_the_background),
        cmocka_unit_test(
            pool_evicts_idle_resources_at_exact_times_down_to_min_idle),
        cmocka_unit_test(pool_without_min_idle_evicts_every_idle_resource),
        cmocka_unit_test(pool_keeper_retries_failed_creates_with_backoff),
        cmocka_unit_test(pool_acquirer_takes_what_the_keeper_made),
        cmocka_unit_test(pool_close_wakes_waiters_and_destroys_on_release),
        cmocka_unit_test(
            pool_close_destroys_idle_resources_and_stops_the_keeper),
        cmocka_unit_test(pool_close_during_creates_destroys_what_they_make),
        cmocka_unit_test(pool_free_in_a_cancelled_task_still_stops_the_keeper),
        cmocka_unit_test(pool_destroys_every_resource_it_made_exactly_once),
        cmocka_unit_test(pool_release_twice_panics),
        cmocka_unit_test(pool_release_of_a_foreign_resource_panics),
        cmocka_unit_test(pool_free_with_a_resource_checked_out_panics),
        cmocka_unit_test(pool_free_with_a_task_inside_acquire_panics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
