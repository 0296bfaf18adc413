// SPDX-License-Identifier: MIT
/*
 * Synchronisation primitives (knit/sync.h): mutex, rwlock, semaphore,
 * notify, barrier, once, waitgroup and token. Each blocking call is tested
 * for success, for -ECANCELED when its task is cancelled while parked and
 * for -ETIMEDOUT when its scope's deadline passes, each time checking that
 * the failed waiter left no trace (the waiters behind it are served, the
 * counts are right); then the semantics of each primitive, all timed
 * exactly on the manual clock; misuse panics run in child processes.
 *
 * Most bodies drive "op" tasks: a task that enters a scope (with the op's
 * deadline), makes one blocking call, records its result, the time and
 * its id, then holds what it got for a while and releases it.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "kt.h"

/* ---- the op harness ------------------------------------------------------ */

/* The order in which ops succeeded, and when. */
struct log {
    int ids[32];
    int64_t at[32];
    atomic_int n; /* ops of several workers may succeed at once */
};

static void log_add(struct log *lg, int id, int64_t at)
{
    int i = atomic_fetch_add(&lg->n, 1);
    lg->ids[i] = id;
    lg->at[i] = at;
}

enum kind { MUTEX, READ, WRITE, SEM, NOTIFY, BARRIER, ONCE, WG, TOKEN };

struct op {
    enum kind kind;   /* which blocking call */
    void *obj;        /* the primitive */
    int id;           /* logged on success */
    struct log *log;  /* NULL: do not log */
    unsigned n;       /* permits, for SEM */
    knit_fn init;     /* for ONCE */
    void *init_arg;   /* for ONCE */
    int64_t deadline; /* of the op's scope; 0: none */
    int64_t hold;     /* ms to hold what was acquired before releasing */
    int result;       /* the call's result; 99 until it returns */
    int64_t at;       /* when it returned */
};

#define OP(k, o, i, lg)                                                        \
    {                                                                          \
        .kind = (k), .obj = (o), .id = (i), .log = (lg), .n = 1, .result = 99, \
        .at = -1                                                               \
    }

static int acquire(struct op *o)
{
    switch (o->kind) {
    case MUTEX:
        return knit_mutex_lock(o->obj);
    case READ:
        return knit_rwlock_read_lock(o->obj);
    case WRITE:
        return knit_rwlock_write_lock(o->obj);
    case SEM:
        return knit_sem_acquire(o->obj, o->n);
    case NOTIFY:
        return knit_notify_wait(o->obj);
    case BARRIER:
        return knit_barrier_wait(o->obj);
    case ONCE:
        return knit_once_call(o->obj, o->init, o->init_arg);
    case WG:
        return knit_waitgroup_wait(o->obj);
    case TOKEN:
        return knit_token_wait(o->obj);
    }
    return -EINVAL;
}

static void release(struct op *o)
{
    switch (o->kind) {
    case MUTEX:
        knit_mutex_unlock(o->obj);
        break;
    case READ:
        knit_rwlock_read_unlock(o->obj);
        break;
    case WRITE:
        knit_rwlock_write_unlock(o->obj);
        break;
    case SEM:
        knit_sem_release(o->obj, o->n);
        break;
    default:
        break;
    }
}

static int run_op(void *arg)
{
    struct op *o = arg;
    knit_scope s;
    knit_scope_enter(&s, o->deadline ? o->deadline : KNIT_FOREVER);
    o->result = acquire(o);
    o->at = knit_now();
    if (o->result >= 0) {
        if (o->log)
            log_add(o->log, o->id, o->at);
        if (o->hold > 0)
            assert_int_equal(knit_sleep(o->hold), 0);
        release(o);
    }
    knit_scope_exit(&s);
    return o->result;
}

static knit_task *go(struct op *o)
{
    /* The ops started before have run until they wait, so ops queue in
     * the order they were started, on several workers as on one. */
    kt_settle();
    knit_task *t = knit_spawn(run_op, o);
    assert_non_null(t);
    return t;
}

/*
 * Checks the log against @ids. Ops that succeeded at the same instant
 * (readers let in together, once waiters woken with the result) log in
 * any order on several workers: there such ties are put in id order, the
 * order the expectations list them in.
 */
static void expect_log(struct log *lg, int n, const int *ids)
{
    assert_int_equal(lg->n, n);
    for (int i = 1; i < n && kt_workers() > 1; i++) {
        /* Ties are adjacent: the clock moves on only once every worker
         * is idle, so an op that succeeds later logs later. */
        int j = i;
        while (j > 0 && lg->at[j - 1] == lg->at[j] &&
               lg->ids[j - 1] > lg->ids[j]) {
            int id = lg->ids[j];
            lg->ids[j] = lg->ids[j - 1];
            lg->ids[j - 1] = id;
            j--;
        }
    }
    for (int i = 0; i < n; i++)
        assert_int_equal(lg->ids[i], ids[i]);
}

/* ---- knit_mutex ---------------------------------------------------------- */

static int t_mutex_basic(void *arg)
{
    (void)arg;
    knit_mutex m = KNIT_MUTEX_INIT;
    assert_false(knit_mutex_is_locked(&m));
    assert_int_equal(knit_mutex_lock(&m), 0);
    assert_true(knit_mutex_is_locked(&m));
    assert_int_equal(knit_mutex_try_lock(&m), -EAGAIN);
    knit_mutex_unlock(&m);
    assert_false(knit_mutex_is_locked(&m));
    assert_int_equal(knit_mutex_try_lock(&m), 0);
    knit_mutex_unlock(&m);

    /* A contended lock waits until the holder lets go. */
    struct log lg = {0};
    struct op a = OP(MUTEX, &m, 1, &lg);
    a.hold = 10;
    knit_task *t = go(&a);
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(knit_mutex_try_lock(&m), -EAGAIN);
    assert_int_equal(knit_mutex_lock(&m), 0);
    assert_int_equal(knit_now(), 10);
    knit_mutex_unlock(&m);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(a.at, 0);

    knit_mutex_init(&m);
    assert_false(knit_mutex_is_locked(&m));
    return 0;
}

static void mutex_lock_excludes_and_try_lock_reports_eagain(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_mutex_basic, NULL), 0);
}

static int t_mutex_fifo(void *arg)
{
    (void)arg;
    knit_mutex m;
    memset(&m, 0, sizeof(m));
    struct log lg = {0};
    struct op ops[5];
    knit_task *ts[5];
    assert_int_equal(knit_mutex_lock(&m), 0);
    for (int i = 0; i < 5; i++) {
        ops[i] = (struct op)OP(MUTEX, &m, i, &lg);
        ops[i].hold = 10;
        ts[i] = go(&ops[i]);
        assert_int_equal(knit_sleep(1), 0); /* task i queues at t = i */
    }
    knit_mutex_unlock(&m);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(knit_join(ts[i]), 0);
        assert_int_equal(ops[i].at, 5 + 10 * i);
    }
    expect_log(&lg, 5, (int[]){0, 1, 2, 3, 4});
    assert_false(knit_mutex_is_locked(&m));
    return 0;
}

static void mutex_hands_off_in_fifo_order_to_five_tasks(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_mutex_fifo, NULL), 0);
}

static int t_mutex_no_barging(void *arg)
{
    (void)arg;
    knit_mutex m = KNIT_MUTEX_INIT;
    struct log lg = {0};
    struct op a = OP(MUTEX, &m, 1, &lg);
    a.hold = 10;
    assert_int_equal(knit_mutex_lock(&m), 0);
    knit_task *t = go(&a);
    assert_int_equal(knit_sleep(1), 0);
    knit_mutex_unlock(&m);
    /* The mutex now belongs to the waiter, which has not even run yet. */
    assert_true(knit_mutex_is_locked(&m));
    assert_int_equal(knit_mutex_try_lock(&m), -EAGAIN);
    assert_int_equal(knit_mutex_lock(&m), 0);
    assert_int_equal(knit_now(), 11);
    log_add(&lg, 0, knit_now());
    knit_mutex_unlock(&m);
    assert_int_equal(knit_join(t), 0);
    expect_log(&lg, 2, (int[]){1, 0});
    return 0;
}

static void mutex_relock_after_unlock_queues_behind_waiters(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_mutex_no_barging, NULL), 0);
}

/* Body for the cancel and timeout tests of the lock-like ops: the main
 * task holds the primitive, B and C queue, B fails, C gets it. */
struct fail_case {
    enum kind kind; /* MUTEX, READ (main holds WRITE) or WRITE */
    bool timeout;   /* B times out at t=5 instead of being cancelled */
};

static void hold_for(enum kind kind, void *obj)
{
    if (kind == MUTEX)
        assert_int_equal(knit_mutex_lock(obj), 0);
    else if (kind == READ)
        assert_int_equal(knit_rwlock_write_lock(obj), 0);
    else
        assert_int_equal(knit_rwlock_read_lock(obj), 0);
}

static void let_go(enum kind kind, void *obj)
{
    if (kind == MUTEX)
        knit_mutex_unlock(obj);
    else if (kind == READ)
        knit_rwlock_write_unlock(obj);
    else
        knit_rwlock_read_unlock(obj);
}

static int t_lock_fails(void *arg)
{
    const struct fail_case *fc = arg;
    knit_mutex m = KNIT_MUTEX_INIT;
    knit_rwlock l = KNIT_RWLOCK_INIT;
    void *obj = fc->kind == MUTEX ? (void *)&m : (void *)&l;
    int err = fc->timeout ? -ETIMEDOUT : -ECANCELED;
    struct log lg = {0};
    struct op b = OP(fc->kind, obj, 1, &lg);
    struct op c = OP(fc->kind, obj, 2, &lg);
    c.hold = 10;
    if (fc->timeout)
        b.deadline = 5;
    hold_for(fc->kind, obj);
    knit_task *tb = go(&b);
    knit_task *tc = go(&c);
    assert_int_equal(knit_sleep(1), 0);
    if (fc->timeout) {
        assert_int_equal(knit_sleep(9), 0);
    } else {
        knit_cancel(tb);
    }
    assert_int_equal(knit_join(tb), err);
    assert_int_equal(b.result, err);
    assert_int_equal(b.at, fc->timeout ? 5 : 1);
    int64_t t0 = knit_now();
    let_go(fc->kind, obj);
    assert_int_equal(knit_join(tc), 0);
    assert_int_equal(c.at, t0);
    expect_log(&lg, 1, (int[]){2});
    /* Nothing is held and nobody waits: an exclusive lock is free. */
    if (fc->kind == MUTEX) {
        assert_int_equal(knit_mutex_try_lock(&m), 0);
        knit_mutex_unlock(&m);
    } else {
        assert_int_equal(knit_rwlock_try_write_lock(&l), 0);
        knit_rwlock_write_unlock(&l);
    }
    return 0;
}

static void mutex_lock_cancelled_while_parked_never_gets_the_lock(void **state)
{
    (void)state;
    struct fail_case fc = {MUTEX, false};
    assert_int_equal(kt_run(t_lock_fails, &fc), 0);
}

static void mutex_lock_times_out_and_leaves_the_queue(void **state)
{
    (void)state;
    struct fail_case fc = {MUTEX, true};
    assert_int_equal(kt_run(t_lock_fails, &fc), 0);
}

static int t_mutex_fired_scope(void *arg)
{
    (void)arg;
    knit_mutex m = KNIT_MUTEX_INIT;
    knit_scope s;
    knit_scope_enter(&s, knit_now());
    assert_int_equal(knit_mutex_lock(&m), -ETIMEDOUT);
    assert_false(knit_mutex_is_locked(&m));
    assert_int_equal(knit_scope_exit(&s), -ETIMEDOUT);
    return 0;
}

static void mutex_lock_in_a_fired_scope_fails_at_once(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_mutex_fired_scope, NULL), 0);
}

/* ---- knit_rwlock --------------------------------------------------------- */

static int t_rwlock_shared(void *arg)
{
    (void)arg;
    knit_rwlock l = KNIT_RWLOCK_INIT;
    struct log lg = {0};
    assert_int_equal(knit_rwlock_read_lock(&l), 0);
    assert_int_equal(knit_rwlock_try_read_lock(&l), 0);
    assert_int_equal(knit_rwlock_try_write_lock(&l), -EAGAIN);
    struct op w = OP(WRITE, &l, 1, &lg);
    w.hold = 10;
    knit_task *tw = go(&w);
    assert_int_equal(knit_sleep(1), 0);
    /* A writer waits: new readers queue behind it. */
    assert_int_equal(knit_rwlock_try_read_lock(&l), -EAGAIN);
    knit_rwlock_read_unlock(&l);
    assert_int_equal(knit_sleep(4), 0);
    assert_int_equal(lg.n, 0); /* one reader left */
    knit_rwlock_read_unlock(&l);
    assert_int_equal(knit_rwlock_read_lock(&l), 0);
    assert_int_equal(knit_now(), 15);
    assert_int_equal(w.at, 5);
    knit_rwlock_read_unlock(&l);
    assert_int_equal(knit_join(tw), 0);
    assert_int_equal(knit_rwlock_try_write_lock(&l), 0);
    assert_int_equal(knit_rwlock_try_read_lock(&l), -EAGAIN);
    knit_rwlock_write_unlock(&l);
    knit_rwlock_init(&l);
    assert_int_equal(knit_rwlock_try_read_lock(&l), 0);
    knit_rwlock_read_unlock(&l);
    return 0;
}

static void rwlock_readers_share_and_a_writer_excludes_them(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_rwlock_shared, NULL), 0);
}

static int t_rwlock_fair(void *arg)
{
    (void)arg;
    knit_rwlock l = KNIT_RWLOCK_INIT;
    struct log lg = {0};
    struct op w1 = OP(WRITE, &l, 1, &lg);
    struct op r2 = OP(READ, &l, 2, &lg);
    struct op r3 = OP(READ, &l, 3, &lg);
    struct op w4 = OP(WRITE, &l, 4, &lg);
    w1.hold = r2.hold = r3.hold = w4.hold = 10;
    assert_int_equal(knit_rwlock_read_lock(&l), 0);
    knit_task *t1 = go(&w1);
    assert_int_equal(knit_sleep(1), 0);
    knit_task *t2 = go(&r2);
    knit_task *t3 = go(&r3);
    knit_task *t4 = go(&w4);
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(lg.n, 0); /* the readers did not pass the writer */
    knit_rwlock_read_unlock(&l);
    assert_int_equal(knit_join(t1), 0);
    assert_int_equal(knit_join(t2), 0);
    assert_int_equal(knit_join(t3), 0);
    assert_int_equal(knit_join(t4), 0);
    assert_int_equal(w1.at, 2);
    assert_int_equal(r2.at, 12); /* both readers at once */
    assert_int_equal(r3.at, 12);
    assert_int_equal(w4.at, 22);
    assert_int_equal(knit_now(), 32);
    expect_log(&lg, 4, (int[]){1, 2, 3, 4});
    return 0;
}

static void rwlock_waiting_writer_blocks_later_readers(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_rwlock_fair, NULL), 0);
}

static void
rwlock_read_lock_cancelled_while_parked_leaves_no_reader(void **state)
{
    (void)state;
    struct fail_case fc = {READ, false};
    assert_int_equal(kt_run(t_lock_fails, &fc), 0);
}

static void rwlock_read_lock_times_out_and_leaves_no_reader(void **state)
{
    (void)state;
    struct fail_case fc = {READ, true};
    assert_int_equal(kt_run(t_lock_fails, &fc), 0);
}

static void rwlock_write_lock_cancelled_while_parked_never_gets_it(void **state)
{
    (void)state;
    struct fail_case fc = {WRITE, false};
    assert_int_equal(kt_run(t_lock_fails, &fc), 0);
}

static void rwlock_write_lock_times_out_and_leaves_the_queue(void **state)
{
    (void)state;
    struct fail_case fc = {WRITE, true};
    assert_int_equal(kt_run(t_lock_fails, &fc), 0);
}

/* A writer that gives up lets in the readers it was holding back. */
static int t_rwlock_writer_leaves(void *arg)
{
    bool timeout = *(bool *)arg;
    knit_rwlock l = KNIT_RWLOCK_INIT;
    struct log lg = {0};
    struct op w = OP(WRITE, &l, 1, &lg);
    struct op r = OP(READ, &l, 2, &lg);
    r.hold = 10;
    if (timeout)
        w.deadline = 5;
    assert_int_equal(knit_rwlock_read_lock(&l), 0);
    knit_task *tw = go(&w);
    assert_int_equal(knit_sleep(1), 0);
    knit_task *tr = go(&r);
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(lg.n, 0);
    if (timeout)
        assert_int_equal(knit_sleep(8), 0);
    else
        knit_cancel(tw);
    assert_int_equal(knit_join(tw), timeout ? -ETIMEDOUT : -ECANCELED);
    assert_int_equal(knit_join(tr), 0);
    assert_int_equal(r.at, timeout ? 5 : 2);
    knit_rwlock_read_unlock(&l);
    assert_int_equal(knit_rwlock_try_write_lock(&l), 0);
    knit_rwlock_write_unlock(&l);
    expect_log(&lg, 1, (int[]){2});
    return 0;
}

static void rwlock_cancelled_writer_lets_queued_readers_in(void **state)
{
    (void)state;
    bool timeout = false;
    assert_int_equal(kt_run(t_rwlock_writer_leaves, &timeout), 0);
}

static void rwlock_timed_out_writer_lets_queued_readers_in(void **state)
{
    (void)state;
    bool timeout = true;
    assert_int_equal(kt_run(t_rwlock_writer_leaves, &timeout), 0);
}

/* ---- knit_sem ------------------------------------------------------------ */

static int t_sem_basic(void *arg)
{
    (void)arg;
    knit_sem s;
    knit_sem_init(&s, 3);
    assert_int_equal(knit_sem_available(&s), 3);
    assert_int_equal(knit_sem_acquire(&s, 2), 0);
    assert_int_equal(knit_sem_available(&s), 1);
    assert_int_equal(knit_sem_try_acquire(&s, 2), -EAGAIN);
    assert_int_equal(knit_sem_try_acquire(&s, 1), 0);
    assert_int_equal(knit_sem_available(&s), 0);
    assert_int_equal(knit_sem_acquire(&s, 0), 0);
    knit_sem_release(&s, 3);
    assert_int_equal(knit_sem_available(&s), 3);
    assert_false(knit_sem_is_closed(&s));

    /* All-zero: open, no permits. */
    knit_sem z = KNIT_SEM_INIT;
    struct log lg = {0};
    assert_int_equal(knit_sem_available(&z), 0);
    assert_int_equal(knit_sem_try_acquire(&z, 1), -EAGAIN);
    struct op a = OP(SEM, &z, 1, &lg);
    a.n = 2;
    knit_task *t = go(&a);
    assert_int_equal(knit_sleep(5), 0);
    knit_sem_release(&z, 1);
    assert_int_equal(knit_sleep(5), 0);
    assert_int_equal(lg.n, 0);
    knit_sem_release(&z, 1);
    assert_int_equal(knit_join(t), 0);
    assert_int_equal(a.at, 10);
    assert_int_equal(knit_sem_available(&z), 2); /* a released them */
    return 0;
}

static void sem_acquire_and_release_count_permits(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_sem_basic, NULL), 0);
}

static int t_sem_fifo(void *arg)
{
    (void)arg;
    knit_sem s;
    knit_sem_init(&s, 2);
    struct log lg = {0};
    struct op big = OP(SEM, &s, 1, &lg);
    struct op small = OP(SEM, &s, 2, &lg);
    big.n = 3;
    big.hold = small.hold = 10;
    assert_int_equal(knit_sem_acquire(&s, 2), 0);
    knit_task *tb = go(&big);
    assert_int_equal(knit_sleep(1), 0);
    knit_task *ts = go(&small);
    assert_int_equal(knit_sleep(1), 0);
    knit_sem_release(&s, 1);
    assert_int_equal(knit_sleep(1), 0);
    /* One permit would do for small, but big is ahead of it. */
    assert_int_equal(lg.n, 0);
    assert_int_equal(knit_sem_available(&s), 1);
    assert_int_equal(knit_sem_try_acquire(&s, 1), -EAGAIN);
    knit_sem_release(&s, 1);
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(lg.n, 0);
    knit_sem_release(&s, 1);
    assert_int_equal(knit_join(tb), 0);
    assert_int_equal(knit_join(ts), 0);
    assert_int_equal(big.at, 4);
    assert_int_equal(small.at, 14);
    expect_log(&lg, 2, (int[]){1, 2});
    assert_int_equal(knit_sem_available(&s), 3);
    return 0;
}

static void sem_big_request_at_the_head_holds_back_smaller_ones(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_sem_fifo, NULL), 0);
}

static int t_sem_head_leaves(void *arg)
{
    bool timeout = *(bool *)arg;
    knit_sem s;
    knit_sem_init(&s, 0);
    struct log lg = {0};
    struct op big = OP(SEM, &s, 1, &lg);
    struct op small = OP(SEM, &s, 2, &lg);
    big.n = 3;
    small.hold = 10;
    if (timeout)
        big.deadline = 5;
    knit_task *tb = go(&big);
    assert_int_equal(knit_sleep(1), 0);
    knit_task *ts = go(&small);
    assert_int_equal(knit_sleep(1), 0);
    knit_sem_release(&s, 2);
    assert_int_equal(knit_sleep(1), 0);
    assert_int_equal(lg.n, 0);
    if (!timeout)
        knit_cancel(tb);
    assert_int_equal(knit_join(tb), timeout ? -ETIMEDOUT : -ECANCELED);
    assert_int_equal(big.at, timeout ? 5 : 3);
    /* The head left: small is served from the permits kept for big. */
    assert_int_equal(knit_sem_available(&s), 1);
    assert_int_equal(knit_join(ts), 0);
    assert_int_equal(small.at, timeout ? 5 : 3);
    assert_int_equal(knit_sem_available(&s), 2);
    expect_log(&lg, 1, (int[]){2});
    return 0;
}

static void
sem_acquire_cancelled_at_the_head_lets_the_next_proceed(void **state)
{
    (void)state;
    bool timeout = false;
    assert_int_equal(kt_run(t_sem_head_leaves, &timeout), 0);
}

static void
sem_acquire_times_out_at_the_head_and_lets_the_next_proceed(void **state)
{
    (void)state;
    bool timeout = true;
    assert_int_equal(kt_run(t_sem_head_leaves, &timeout), 0);
}

static int t_sem_close(void *arg)
{
    (void)arg;
    knit_sem s;
    knit_sem_init(&s, 1);
    struct op a = OP(SEM, &s, 1, NULL);
    struct op b = OP(SEM, &s, 2, NULL);
    a.n = 2;
    knit_task *ta = go(&a);
    knit_task *tb = go(&b);
    assert_int_equal(knit_sleep(1), 0);
    knit_sem_close(&s);
    knit_sem_close(&s);
    assert_true(knit_sem_is_closed(&s));
    assert_int_equal(knit_join(ta), -EPIPE);
    assert_int_equal(knit_join(tb), -EPIPE);
    assert_int_equal(a.at, 1);
    assert_int_equal(b.at, 1);
    assert_int_equal(knit_sem_acquire(&s, 1), -EPIPE);
    assert_int_equal(knit_sem_try_acquire(&s, 1), -EPIPE);
    knit_sem_release(&s, 4);
    assert_int_equal(knit_sem_available(&s), 5);
    assert_int_equal(knit_sem_acquire(&s, 1), -EPIPE);
    return 0;
}

static void sem_close_fails_waiters_and_later_acquires_with_epipe(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_sem_close, NULL), 0);
}

/* ---- knit_notify --------------------------------------------------------- */

/* Waits on @n inside a scope expiring @ms from now; returns the result. */
static int wait_with_deadline(struct op *o, int64_t ms)
{
    knit_scope s;
    knit_scope_enter(&s, knit_now() + ms);
    int r = acquire(o);
    knit_scope_exit(&s);
    return r;
}

static int t_notify_permit(void *arg)
{
    (void)arg;
    knit_notify n = KNIT_NOTIFY_INIT;
    struct op me = OP(NOTIFY, &n, 0, NULL);
    knit_notify_one(&n);
    knit_notify_one(&n);
    assert_int_equal(knit_notify_wait(&n), 0);
    assert_int_equal(knit_now(), 0);
    /* Two notifications with nobody waiting stored one permit. */
    assert_int_equal(wait_with_deadline(&me, 10), -ETIMEDOUT);
    assert_int_equal(knit_now(), 10);
    knit_notify_init(&n);
    assert_int_equal(wait_with_deadline(&me, 10), -ETIMEDOUT);
    return 0;
}

static void notify_one_stores_at_most_one_permit(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_notify_permit, NULL), 0);
}

static int t_notify_one_fifo(void *arg)
{
    (void)arg;
    knit_notify n = KNIT_NOTIFY_INIT;
    struct log lg = {0};
    struct op ops[3];
    knit_task *ts[3];
    for (int i = 0; i < 3; i++) {
        ops[i] = (struct op)OP(NOTIFY, &n, i, &lg);
        ts[i] = go(&ops[i]);
        assert_int_equal(knit_sleep(1), 0);
    }
    for (int i = 0; i < 3; i++) {
        knit_notify_one(&n);
        assert_int_equal(knit_join(ts[i]), 0);
        assert_int_equal(lg.n, i + 1);
        assert_int_equal(ops[i].at, 3);
    }
    expect_log(&lg, 3, (int[]){0, 1, 2});
    /* Each notification had a waiter: no permit is stored. */
    struct op me = OP(NOTIFY, &n, 0, NULL);
    assert_int_equal(wait_with_deadline(&me, 10), -ETIMEDOUT);
    return 0;
}

static void notify_one_wakes_waiters_one_at_a_time_in_order(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_notify_one_fifo, NULL), 0);
}

static int t_notify_all(void *arg)
{
    (void)arg;
    knit_notify n = KNIT_NOTIFY_INIT;
    struct op me = OP(NOTIFY, &n, 0, NULL);
    knit_notify_all(&n); /* nobody waits: nothing happens */
    assert_int_equal(wait_with_deadline(&me, 5), -ETIMEDOUT);
    struct op ops[3];
    knit_task *ts[3];
    for (int i = 0; i < 3; i++) {
        ops[i] = (struct op)OP(NOTIFY, &n, i, NULL);
        ts[i] = go(&ops[i]);
    }
    assert_int_equal(knit_sleep(1), 0);
    knit_notify_all(&n);
    struct op late = OP(NOTIFY, &n, 3, NULL);
    late.deadline = 16;
    knit_task *tl = go(&late);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(knit_join(ts[i]), 0);
        assert_int_equal(ops[i].at, 6);
    }
    assert_int_equal(knit_join(tl), -ETIMEDOUT);
    assert_int_equal(late.at, 16);
    return 0;
}

static void notify_all_wakes_only_current_waiters(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_notify_all, NULL), 0);
}

static int t_notify_leaves(void *arg)
{
    bool timeout = *(bool *)arg;
    knit_notify n = KNIT_NOTIFY_INIT;
    struct op a = OP(NOTIFY, &n, 1, NULL);
    struct op b = OP(NOTIFY, &n, 2, NULL);
    if (timeout)
        a.deadline = 5;
    knit_task *ta = go(&a);
    assert_int_equal(knit_sleep(1), 0);
    if (!timeout)
        knit_cancel(ta);
    assert_int_equal(knit_join(ta), timeout ? -ETIMEDOUT : -ECANCELED);
    assert_int_equal(a.at, timeout ? 5 : 1);
    /* Nobody waits now: the notification is stored, not swallowed. */
    knit_notify_one(&n);
    assert_int_equal(knit_notify_wait(&n), 0);
    /* And the next one goes to the next waiter. */
    knit_task *tb = go(&b);
    assert_int_equal(knit_sleep(1), 0);
    knit_notify_one(&n);
    assert_int_equal(knit_join(tb), 0);
    return 0;
}

static void notify_wait_cancelled_while_parked_swallows_nothing(void **state)
{
    (void)state;
    bool timeout = false;
    assert_int_equal(kt_run(t_notify_leaves, &timeout), 0);
}

static void notify_wait_times_out_and_swallows_nothing(void **state)
{
    (void)state;
    bool timeout = true;
    assert_int_equal(kt_run(t_notify_leaves, &timeout), 0);
}

/* ---- knit_barrier -------------------------------------------------------- */

struct gen_task {
    knit_barrier *b;
    int64_t sleep[3]; /* before arriving, per generation */
    int result[3];    /* knit_barrier_wait's, per generation */
    int64_t at[3];    /* when it returned */
};

static int barrier_rounds(void *arg)
{
    struct gen_task *g = arg;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(knit_sleep(g->sleep[i]), 0);
        g->result[i] = knit_barrier_wait(g->b);
        g->at[i] = knit_now();
    }
    return 0;
}

static int t_barrier_generations(void *arg)
{
    (void)arg;
    knit_barrier b;
    knit_barrier_init(&b, 3);
    struct gen_task g[3] = {
        {&b, {10, 30, 10}, {0}, {0}},
        {&b, {20, 20, 30}, {0}, {0}},
        {&b, {30, 10, 10}, {0}, {0}},
    };
    int leader[3] = {2, 0, 1}; /* the last to arrive, per generation */
    int64_t trip[3] = {30, 60, 90};
    knit_task *ts[3];
    for (int i = 0; i < 3; i++)
        ts[i] = knit_spawn(barrier_rounds, &g[i]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(knit_join(ts[i]), 0);
    for (int gen = 0; gen < 3; gen++) {
        int leaders = 0;
        for (int i = 0; i < 3; i++) {
            assert_int_equal(g[i].result[gen], i == leader[gen] ? 1 : 0);
            assert_int_equal(g[i].at[gen], trip[gen]);
            leaders += g[i].result[gen];
        }
        assert_int_equal(leaders, 1);
    }

    /* A barrier of one (or zero) never waits; its only task leads. */
    knit_barrier_init(&b, 1);
    assert_int_equal(knit_barrier_wait(&b), 1);
    knit_barrier_init(&b, 0);
    assert_int_equal(knit_barrier_wait(&b), 1);
    return 0;
}

static void barrier_has_one_leader_per_generation_over_three(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_barrier_generations, NULL), 0);
}

static int t_barrier_leaves(void *arg)
{
    bool timeout = *(bool *)arg;
    knit_barrier b;
    knit_barrier_init(&b, 3);
    struct op a = OP(BARRIER, &b, 1, NULL);
    struct op o2 = OP(BARRIER, &b, 2, NULL);
    struct op o3 = OP(BARRIER, &b, 3, NULL);
    struct op o4 = OP(BARRIER, &b, 4, NULL);
    if (timeout)
        a.deadline = 5;
    knit_task *ta = go(&a);
    knit_task *t2 = go(&o2);
    assert_int_equal(knit_sleep(1), 0);
    if (!timeout)
        knit_cancel(ta);
    assert_int_equal(knit_join(ta), timeout ? -ETIMEDOUT : -ECANCELED);
    assert_int_equal(a.at, timeout ? 5 : 1);
    /* Two are waiting again with o3: not enough to trip. */
    knit_task *t3 = go(&o3);
    assert_int_equal(knit_sleep(10), 0);
    assert_int_equal(o2.result, 99);
    assert_int_equal(o3.result, 99);
    int64_t t0 = knit_now();
    knit_task *t4 = go(&o4);
    assert_int_equal(knit_join(t2), 0);
    assert_int_equal(knit_join(t3), 0);
    assert_int_equal(knit_join(t4), 1);
    assert_int_equal(o2.at, t0);
    assert_int_equal(o3.at, t0);
    assert_int_equal(o4.at, t0);
    return 0;
}

static void barrier_wait_cancelled_no_longer_counts_as_arrived(void **state)
{
    (void)state;
    bool timeout = false;
    assert_int_equal(kt_run(t_barrier_leaves, &timeout), 0);
}

static void barrier_wait_timed_out_no_longer_counts_as_arrived(void **state)
{
    (void)state;
    bool timeout = true;
    assert_int_equal(kt_run(t_barrier_leaves, &timeout), 0);
}

/* ---- knit_once ----------------------------------------------------------- */

/* An initialiser: counts its runs, sleeps ms, then returns result (or the
 * sleep's error). */
struct init {
    int runs;
    int64_t ms;
    int result;
};

static int init_fn(void *arg)
{
    struct init *in = arg;
    in->runs++;
    int err = knit_sleep(in->ms);
    return err ? err : in->result;
}

static struct op once_op(knit_once *o, int id, struct log *lg, struct init *in)
{
    struct op op = OP(ONCE, o, id, lg);
    op.init = init_fn;
    op.init_arg = in;
    return op;
}

static int t_once_stored(void *arg)
{
    (void)arg;
    knit_once o = KNIT_ONCE_INIT;
    struct init fail = {0, 5, -EIO};
    struct init ok = {0, 10, 42};
    struct init never = {0, 1, 1};
    assert_false(knit_once_is_done(&o));
    /* A failure stores nothing; the next caller runs its own init. */
    assert_int_equal(knit_once_call(&o, init_fn, &fail), -EIO);
    assert_false(knit_once_is_done(&o));
    assert_int_equal(knit_once_call(&o, init_fn, &ok), 42);
    assert_int_equal(knit_now(), 15);
    assert_true(knit_once_is_done(&o));
    assert_int_equal(knit_once_call(&o, init_fn, &never), 42);
    assert_int_equal(knit_once_call(&o, init_fn, &fail), 42);
    assert_int_equal(knit_now(), 15);
    assert_int_equal(fail.runs, 1);
    assert_int_equal(ok.runs, 1);
    assert_int_equal(never.runs, 0);
    knit_once_init(&o);
    assert_false(knit_once_is_done(&o));
    return 0;
}

static void once_stores_the_first_success_and_retries_failures(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_once_stored, NULL), 0);
}

static int t_once_concurrent(void *arg)
{
    (void)arg;
    knit_once o = KNIT_ONCE_INIT;
    struct init in = {0, 10, 7};
    struct op ops[3];
    knit_task *ts[3];
    for (int i = 0; i < 3; i++) {
        ops[i] = once_op(&o, i, NULL, &in);
        ts[i] = go(&ops[i]);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(knit_join(ts[i]), 7);
        assert_int_equal(ops[i].at, 10);
    }
    assert_int_equal(in.runs, 1);
    return 0;
}

static void once_concurrent_callers_wait_for_the_first(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_once_concurrent, NULL), 0);
}

static int t_once_retry(void *arg)
{
    (void)arg;
    knit_once o = KNIT_ONCE_INIT;
    struct log lg = {0};
    struct init ia = {0, 10, -EIO};
    struct init ib = {0, 10, 5};
    struct init ic = {0, 10, 6};
    struct op a = once_op(&o, 1, &lg, &ia);
    struct op b = once_op(&o, 2, &lg, &ib);
    struct op c = once_op(&o, 3, &lg, &ic);
    knit_task *ta = go(&a);
    assert_int_equal(knit_sleep(1), 0);
    knit_task *tb = go(&b);
    assert_int_equal(knit_sleep(1), 0);
    knit_task *tc = go(&c);
    assert_int_equal(knit_join(ta), -EIO);
    assert_int_equal(knit_join(tb), 5);
    assert_int_equal(knit_join(tc), 5);
    assert_int_equal(a.at, 10);
    assert_int_equal(b.at, 20); /* b took over at 10 and ran its init */
    assert_int_equal(c.at, 20);
    assert_int_equal(ia.runs, 1);
    assert_int_equal(ib.runs, 1);
    assert_int_equal(ic.runs, 0);
    expect_log(&lg, 2, (int[]){2, 3});
    return 0;
}

static void once_failed_init_passes_to_the_next_waiting_caller(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_once_retry, NULL), 0);
}

static int t_once_waiter_leaves(void *arg)
{
    bool timeout = *(bool *)arg;
    knit_once o = KNIT_ONCE_INIT;
    struct init in = {0, 10, 3};
    struct init other = {0, 10, 4};
    struct op r = once_op(&o, 1, NULL, &in);
    struct op w1 = once_op(&o, 2, NULL, &other);
    struct op w2 = once_op(&o, 3, NULL, &other);
    if (timeout)
        w1.deadline = 5;
    knit_task *tr = go(&r);
    knit_task *t1 = go(&w1);
    knit_task *t2 = go(&w2);
    assert_int_equal(knit_sleep(1), 0);
    if (!timeout)
        knit_cancel(t1);
    assert_int_equal(knit_join(t1), timeout ? -ETIMEDOUT : -ECANCELED);
    assert_int_equal(w1.at, timeout ? 5 : 1);
    assert_int_equal(knit_join(tr), 3);
    assert_int_equal(knit_join(t2), 3);
    assert_int_equal(w2.at, 10);
    assert_int_equal(other.runs, 0);
    return 0;
}

static void once_waiter_cancelled_while_parked_leaves_no_trace(void **state)
{
    (void)state;
    bool timeout = false;
    assert_int_equal(kt_run(t_once_waiter_leaves, &timeout), 0);
}

static void once_waiter_times_out_and_leaves_no_trace(void **state)
{
    (void)state;
    bool timeout = true;
    assert_int_equal(kt_run(t_once_waiter_leaves, &timeout), 0);
}

static int t_once_runner_cancelled(void *arg)
{
    (void)arg;
    knit_once o = KNIT_ONCE_INIT;
    struct init in = {0, 10, 3};
    struct init other = {0, 10, 4};
    struct op r = once_op(&o, 1, NULL, &in);
    struct op w = once_op(&o, 2, NULL, &other);
    knit_task *tr = go(&r);
    knit_task *tw = go(&w);
    assert_int_equal(knit_sleep(1), 0);
    knit_cancel(tr); /* its init's sleep fails, so the init fails */
    assert_int_equal(knit_join(tr), -ECANCELED);
    assert_int_equal(knit_join(tw), 4);
    assert_int_equal(w.at, 11);
    assert_int_equal(in.runs, 1);
    assert_int_equal(other.runs, 1);
    assert_int_equal(knit_once_call(&o, init_fn, &in), 4);
    return 0;
}

static void
once_init_failing_by_cancellation_is_retried_by_a_waiter(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_once_runner_cancelled, NULL), 0);
}

/* The runner fails and, before the waiter given the turn runs, cancels
 * it: the turn must pass on to the next waiter. */
struct handover {
    struct op op;      /* the runner's call */
    knit_task *victim; /* the first waiter */
};

static int fail_then_cancel(void *arg)
{
    struct handover *h = arg;
    h->op.result = acquire(&h->op);
    knit_cancel(h->victim);
    return h->op.result;
}

static int t_once_turn_cancelled(void *arg)
{
    (void)arg;
    /* The cancel must land before the woken waiter runs: on several
     * workers it may run at once, and either outcome is right. */
    if (kt_workers() > 1)
        skip();
    knit_once o = KNIT_ONCE_INIT;
    struct init bad = {0, 10, -EIO};
    struct init v = {0, 10, 8};
    struct init ok = {0, 10, 9};
    struct handover h = {once_op(&o, 1, NULL, &bad), NULL};
    struct op w1 = once_op(&o, 2, NULL, &v);
    struct op w2 = once_op(&o, 3, NULL, &ok);
    knit_task *tr = knit_spawn(fail_then_cancel, &h);
    assert_int_equal(knit_sleep(1), 0);
    knit_task *t1 = go(&w1);
    h.victim = t1;
    knit_task *t2 = go(&w2);
    assert_int_equal(knit_join(tr), -EIO);
    assert_int_equal(knit_join(t1), -ECANCELED);
    assert_int_equal(knit_join(t2), 9);
    assert_int_equal(w1.at, 10);
    assert_int_equal(w2.at, 20);
    assert_int_equal(v.runs, 0);
    assert_int_equal(ok.runs, 1);
    return 0;
}

static void once_turn_given_to_a_cancelled_waiter_passes_on(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_once_turn_cancelled, NULL), 0);
}

/* ---- knit_waitgroup ------------------------------------------------------ */

struct job {
    knit_waitgroup *wg;
    int64_t ms;
};

static int job_fn(void *arg)
{
    struct job *j = arg;
    int err = knit_sleep(j->ms);
    knit_waitgroup_done(j->wg);
    return err;
}

static int t_waitgroup(void *arg)
{
    (void)arg;
    knit_waitgroup wg = KNIT_WAITGROUP_INIT;
    assert_int_equal(knit_waitgroup_wait(&wg), 0); /* at 0: no wait */
    struct job jobs[3] = {{&wg, 30}, {&wg, 10}, {&wg, 20}};
    knit_task *ts[3];
    knit_waitgroup_add(&wg, 3);
    for (int i = 0; i < 3; i++)
        ts[i] = knit_spawn(job_fn, &jobs[i]);
    struct op other = OP(WG, &wg, 1, NULL);
    knit_task *to = go(&other);
    assert_int_equal(knit_waitgroup_count(&wg), 3);
    assert_int_equal(knit_waitgroup_wait(&wg), 0);
    assert_int_equal(knit_now(), 30);
    assert_int_equal(knit_waitgroup_count(&wg), 0);
    assert_int_equal(knit_join(to), 0);
    assert_int_equal(other.at, 30);
    for (int i = 0; i < 3; i++)
        assert_int_equal(knit_join(ts[i]), 0);

    /* Reused at once. */
    knit_waitgroup_add(&wg, 2);
    knit_waitgroup_add(&wg, -1);
    struct job j = {&wg, 5};
    knit_task *t = knit_spawn(job_fn, &j);
    assert_int_equal(knit_waitgroup_wait(&wg), 0);
    assert_int_equal(knit_now(), 35);
    assert_int_equal(knit_join(t), 0);
    knit_waitgroup_init(&wg);
    assert_int_equal(knit_waitgroup_count(&wg), 0);
    return 0;
}

static void waitgroup_wait_returns_when_the_count_drops_to_zero(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_waitgroup, NULL), 0);
}

static int t_waitgroup_leaves(void *arg)
{
    bool timeout = *(bool *)arg;
    knit_waitgroup wg = KNIT_WAITGROUP_INIT;
    struct op a = OP(WG, &wg, 1, NULL);
    struct op b = OP(WG, &wg, 2, NULL);
    if (timeout)
        a.deadline = 5;
    knit_waitgroup_add(&wg, 1);
    knit_task *ta = go(&a);
    knit_task *tb = go(&b);
    assert_int_equal(knit_sleep(1), 0);
    if (!timeout)
        knit_cancel(ta);
    assert_int_equal(knit_join(ta), timeout ? -ETIMEDOUT : -ECANCELED);
    assert_int_equal(a.at, timeout ? 5 : 1);
    assert_int_equal(knit_sleep_until(10), 0);
    assert_int_equal(b.result, 99);
    knit_waitgroup_done(&wg);
    assert_int_equal(knit_join(tb), 0);
    assert_int_equal(b.at, 10);
    return 0;
}

static void waitgroup_wait_cancelled_while_parked_leaves_no_trace(void **state)
{
    (void)state;
    bool timeout = false;
    assert_int_equal(kt_run(t_waitgroup_leaves, &timeout), 0);
}

static void waitgroup_wait_times_out_and_leaves_no_trace(void **state)
{
    (void)state;
    bool timeout = true;
    assert_int_equal(kt_run(t_waitgroup_leaves, &timeout), 0);
}

/* ---- knit_token ---------------------------------------------------------- */

static int t_token_tree(void *arg)
{
    (void)arg;
    knit_token root, child, grand, sibling;
    knit_token_init(&root, NULL);
    knit_token_init(&child, &root);
    knit_token_init(&grand, &child);
    knit_token_init(&sibling, &root);
    struct op wg = OP(TOKEN, &grand, 1, NULL);
    struct op wr = OP(TOKEN, &root, 2, NULL);
    knit_task *tg = go(&wg);
    knit_task *tr = go(&wr);
    assert_int_equal(knit_sleep(1), 0);

    /* Cancelling a child reaches down, never up or sideways. */
    knit_token_cancel(&child);
    assert_true(knit_token_is_cancelled(&child));
    assert_true(knit_token_is_cancelled(&grand));
    assert_false(knit_token_is_cancelled(&root));
    assert_false(knit_token_is_cancelled(&sibling));
    assert_int_equal(knit_join(tg), 0);
    assert_int_equal(wg.at, 1);
    assert_int_equal(knit_sleep(9), 0);
    assert_int_equal(wr.result, 99);

    knit_token_cancel(&root);
    assert_true(knit_token_is_cancelled(&sibling));
    assert_int_equal(knit_join(tr), 0);
    assert_int_equal(wr.at, 10);
    assert_int_equal(knit_token_wait(&grand), 0); /* at once */
    assert_int_equal(knit_now(), 10);
    knit_token_cancel(&root); /* idempotent */

    knit_token late;
    knit_token_init(&late, &grand);
    assert_true(knit_token_is_cancelled(&late)); /* born cancelled */
    assert_int_equal(knit_token_wait(&late), 0);

    knit_token_destroy(&late);
    knit_token_destroy(&grand);
    knit_token_destroy(&child);
    knit_token_destroy(&sibling);
    knit_token_destroy(&root);
    return 0;
}

static void token_cancel_reaches_descendants_but_not_ancestors(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_token_tree, NULL), 0);
}

static int t_token_deep(void *arg)
{
    (void)arg;
    /* Grandchildren several levels down and across siblings. */
    knit_token root = KNIT_TOKEN_INIT; /* all-zero: a root */
    knit_token a, b, a1, a2, b1, a1x;
    knit_token_init(&a, &root);
    knit_token_init(&b, &root);
    knit_token_init(&a1, &a);
    knit_token_init(&a2, &a);
    knit_token_init(&b1, &b);
    knit_token_init(&a1x, &a1);
    knit_token_cancel(&a2);
    knit_token_cancel(&root);
    knit_token *all[] = {&root, &a, &b, &a1, &a2, &b1, &a1x};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        assert_true(knit_token_is_cancelled(all[i]));
    knit_token_destroy(&root); /* parents first works too */
    knit_token_destroy(&a);
    knit_token_destroy(&a1);
    knit_token_destroy(&a1x);
    knit_token_destroy(&a2);
    knit_token_destroy(&b);
    knit_token_destroy(&b1);
    return 0;
}

static void token_cancel_of_the_root_cancels_every_grandchild(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_token_deep, NULL), 0);
}

static int t_token_destroy(void *arg)
{
    (void)arg;
    knit_token root, mid, leaf, gone;
    knit_token_init(&root, NULL);
    knit_token_init(&mid, &root);
    knit_token_init(&leaf, &mid);
    knit_token_init(&gone, &root);
    /* Destroying a leaf unlinks it: the parent's cancel skips it. */
    knit_token_destroy(&gone);
    memset(&gone, 0xa5, sizeof(gone)); /* its storage is free to reuse */
    /* Destroying a middle token moves its children up. */
    knit_token_destroy(&mid);
    knit_token_init(&mid, NULL);
    knit_token_cancel(&root);
    assert_true(knit_token_is_cancelled(&leaf));
    assert_false(knit_token_is_cancelled(&mid));
    knit_token_destroy(&leaf);
    knit_token_destroy(&root);
    return 0;
}

static void token_destroy_unlinks_and_moves_children_up(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_token_destroy, NULL), 0);
}

static int t_token_leaves(void *arg)
{
    bool timeout = *(bool *)arg;
    knit_token tok;
    knit_token_init(&tok, NULL);
    struct op a = OP(TOKEN, &tok, 1, NULL);
    struct op b = OP(TOKEN, &tok, 2, NULL);
    if (timeout)
        a.deadline = 5;
    knit_task *ta = go(&a);
    knit_task *tb = go(&b);
    assert_int_equal(knit_sleep(1), 0);
    if (!timeout)
        knit_cancel(ta);
    assert_int_equal(knit_join(ta), timeout ? -ETIMEDOUT : -ECANCELED);
    assert_int_equal(a.at, timeout ? 5 : 1);
    assert_false(knit_token_is_cancelled(&tok));
    assert_int_equal(knit_sleep_until(10), 0);
    knit_token_cancel(&tok);
    assert_int_equal(knit_join(tb), 0);
    assert_int_equal(b.at, 10);
    knit_token_destroy(&tok);
    return 0;
}

static void token_wait_cancelled_while_parked_leaves_no_trace(void **state)
{
    (void)state;
    bool timeout = false;
    assert_int_equal(kt_run(t_token_leaves, &timeout), 0);
}

static void token_wait_times_out_and_leaves_no_trace(void **state)
{
    (void)state;
    bool timeout = true;
    assert_int_equal(kt_run(t_token_leaves, &timeout), 0);
}

static void expect_panic(knit_fn fn, const char *msg)
{
    int status;
    const char *err = kt_run_child(NULL, fn, NULL, &status);
    kt_expect_in(err, msg);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static knit_mutex foreign;

static int lock_and_keep(void *arg)
{
    (void)arg;
    return knit_mutex_lock(&foreign);
}

static int t_foreign_unlock(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn(lock_and_keep, NULL);
    assert_int_equal(knit_join(t), 0);
    knit_mutex_unlock(&foreign); /* misuse: the other task holds it */
    return 0;
}

static void mutex_unlock_by_a_task_not_holding_it_panics(void **state)
{
    (void)state;
    expect_panic(t_foreign_unlock,
                 "knit: knit_mutex_unlock of a mutex the caller does not "
                 "hold (held by another task)");
}

static int t_unlock_unlocked(void *arg)
{
    (void)arg;
    knit_mutex m = KNIT_MUTEX_INIT;
    knit_mutex_unlock(&m); /* misuse */
    return 0;
}

static void mutex_unlock_of_an_unlocked_mutex_panics(void **state)
{
    (void)state;
    expect_panic(t_unlock_unlocked, "does not hold (not locked)");
}

static int t_relock(void *arg)
{
    (void)arg;
    knit_mutex m = KNIT_MUTEX_INIT;
    assert_int_equal(knit_mutex_lock(&m), 0);
    return knit_mutex_lock(&m); /* misuse: would wait forever */
}

static void mutex_lock_by_its_holder_panics(void **state)
{
    (void)state;
    expect_panic(t_relock, "knit_mutex_lock on a mutex the task already holds");
}

static int t_wg_negative(void *arg)
{
    (void)arg;
    knit_waitgroup wg = KNIT_WAITGROUP_INIT;
    knit_waitgroup_done(&wg); /* misuse */
    return 0;
}

static void waitgroup_counter_below_zero_panics(void **state)
{
    (void)state;
    expect_panic(t_wg_negative, "knit_waitgroup: negative counter");
}

static knit_token busy;

static int t_token_destroy_busy(void *arg)
{
    (void)arg;
    struct op w = OP(TOKEN, &busy, 1, NULL);
    knit_task *t = go(&w);
    assert_int_equal(knit_sleep(1), 0);
    knit_token_destroy(&busy); /* misuse: w waits on it */
    return knit_join(t);
}

static void token_destroy_with_waiters_panics(void **state)
{
    (void)state;
    expect_panic(t_token_destroy_busy,
                 "knit_token_destroy of a token that tasks wait on");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mutex_lock_excludes_and_try_lock_reports_eagain),
        cmocka_unit_test(mutex_hands_off_in_fifo_order_to_five_tasks),
        cmocka_unit_test(mutex_relock_after_unlock_queues_behind_waiters),
        cmocka_unit_test(mutex_lock_cancelled_while_parked_never_gets_the_lock),
        cmocka_unit_test(mutex_lock_times_out_and_leaves_the_queue),
        cmocka_unit_test(mutex_lock_in_a_fired_scope_fails_at_once),
        cmocka_unit_test(rwlock_readers_share_and_a_writer_excludes_them),
        cmocka_unit_test(rwlock_waiting_writer_blocks_later_readers),
        cmocka_unit_test(
            rwlock_read_lock_cancelled_while_parked_leaves_no_reader),
        cmocka_unit_test(rwlock_read_lock_times_out_and_leaves_no_reader),
        cmocka_unit_test(
            rwlock_write_lock_cancelled_while_parked_never_gets_it),
        cmocka_unit_test(rwlock_write_lock_times_out_and_leaves_the_queue),
        cmocka_unit_test(rwlock_cancelled_writer_lets_queued_readers_in),
        cmocka_unit_test(rwlock_timed_out_writer_lets_queued_readers_in),
        cmocka_unit_test(sem_acquire_and_release_count_permits),
        cmocka_unit_test(sem_big_request_at_the_head_holds_back_smaller_ones),
        cmocka_unit_test(
            sem_acquire_cancelled_at_the_head_lets_the_next_proceed),
        cmocka_unit_test(
            sem_acquire_times_out_at_the_head_and_lets_the_next_proceed),
        cmocka_unit_test(sem_close_fails_waiters_and_later_acquires_with_epipe),
        cmocka_unit_test(notify_one_stores_at_most_one_permit),
        cmocka_unit_test(notify_one_wakes_waiters_one_at_a_time_in_order),
        cmocka_unit_test(notify_all_wakes_only_current_waiters),
        cmocka_unit_test(notify_wait_cancelled_while_parked_swallows_nothing),
        cmocka_unit_test(notify_wait_times_out_and_swallows_nothing),
        cmocka_unit_test(barrier_has_one_leader_per_generation_over_three),
        cmocka_unit_test(barrier_wait_cancelled_no_longer_counts_as_arrived),
        cmocka_unit_test(barrier_wait_timed_out_no_longer_counts_as_arrived),
        cmocka_unit_test(once_stores_the_first_success_and_retries_failures),
        cmocka_unit_test(once_concurrent_callers_wait_for_the_first),
        cmocka_unit_test(once_failed_init_passes_to_the_next_waiting_caller),
        cmocka_unit_test(once_waiter_cancelled_while_parked_leaves_no_trace),
        cmocka_unit_test(once_waiter_times_out_and_leaves_no_trace),
        cmocka_unit_test(
            once_init_failing_by_cancellation_is_retried_by_a_waiter),
        cmocka_unit_test(once_turn_given_to_a_cancelled_waiter_passes_on),
        cmocka_unit_test(waitgroup_wait_returns_when_the_count_drops_to_zero),
        cmocka_unit_test(waitgroup_wait_cancelled_while_parked_leaves_no_trace),
        cmocka_unit_test(waitgroup_wait_times_out_and_leaves_no_trace),
        cmocka_unit_test(token_cancel_reaches_descendants_but_not_ancestors),
        cmocka_unit_test(token_cancel_of_the_root_cancels_every_grandchild),
        cmocka_unit_test(token_destroy_unlinks_and_moves_children_up),
        cmocka_unit_test(token_wait_cancelled_while_parked_leaves_no_trace),
        cmocka_unit_test(token_wait_times_out_and_leaves_no_trace),
        cmocka_unit_test(mutex_unlock_by_a_task_not_holding_it_panics),
        cmocka_unit_test(mutex_unlock_of_an_unlocked_mutex_panics),
        cmocka_unit_test(mutex_lock_by_its_holder_panics),
        cmocka_unit_test(waitgroup_counter_below_zero_panics),
        cmocka_unit_test(token_destroy_with_waiters_panics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
