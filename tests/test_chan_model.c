// SPDX-License-Identifier: MIT
/*
 * A randomized property test of channels and select against the rule
 * "a message is never lost and never duplicated, whatever is cancelled,
 * timed out or closed".
 *
 * Tasks run random programs over a few channels of different capacities:
 * sends and receives (some under short deadlines), selects over 2-4 send,
 * receive and deadline cases, sleeps, closes; a chaos task cancels random
 * tasks. Every value is unique. The model records, for each value, whether
 * its send reported success; at the end (after draining the channels) each
 * successfully sent value must have been received exactly once and every
 * other value never. Runs are reproducible from their seed, which is
 * printed on failure (KNIT_SEED=... reruns one).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "chan/chan_impl.h"
#include "core/sched.h"
#include "kt.h"

#define NCHAN 4
#define NTASK 24
#define OPS_PER_TASK 4200 /* ~10^5 operations per seed, 15 seeds */
#define NVALUES (NTASK * OPS_PER_TASK)

enum vstate { V_NONE, V_TRYING, V_SENT, V_FAILED };

struct model {
    knit_chan *chans[NCHAN];
    knit_task *tasks[NTASK];
    uint8_t state[NVALUES];    /* enum vstate per value */
    uint8_t received[NVALUES]; /* times each value was received */
    uint64_t seed;
    atomic_long ops;
    atomic_int live; /* workers still running */
    char failure[256];
    /* Tasks on several workers record at once: state, received and
     * failure are written under it. */
    pthread_mutex_t lock;
};

struct worker_arg {
    struct model *m;
    int id;
    uint64_t rng;
};

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fail_model(struct model *m, const char *what, uint64_t v)
{
    if (!m->failure[0])
        snprintf(m->failure, sizeof(m->failure), "%s (value %llu, seed %llu)",
                 what, (unsigned long long)v, (unsigned long long)m->seed);
}

static void on_received(struct model *m, uint64_t v)
{
    pthread_mutex_lock(&m->lock);
    if (v >= NVALUES) {
        fail_model(m, "received a value never sent", v);
        pthread_mutex_unlock(&m->lock);
        return;
    }
    if (m->state[v] == V_NONE || m->state[v] == V_FAILED)
        fail_model(m, "received a value whose send failed or never ran", v);
    if (++m->received[v] > 1)
        fail_model(m, "received a value twice", v);
    pthread_mutex_unlock(&m->lock);
}

static void on_send_start(struct model *m, uint64_t v)
{
    pthread_mutex_lock(&m->lock);
    m->state[v] = V_TRYING;
    pthread_mutex_unlock(&m->lock);
}

static void on_send_done(struct model *m, uint64_t v, int err)
{
    pthread_mutex_lock(&m->lock);
    m->state[v] = err == 0 ? V_SENT : V_FAILED;
    if (err && m->received[v])
        fail_model(m, "a failed send was received", v);
    pthread_mutex_unlock(&m->lock);
}

/* Runs @op inside a scope with a short random deadline, sometimes. */
static bool maybe_deadline(struct worker_arg *a, knit_scope *s)
{
    if (rnd(&a->rng) % 4)
        return false;
    knit_scope_enter(s, knit_now() + (int64_t)(rnd(&a->rng) % 4));
    return true;
}

static int worker(void *arg)
{
    struct worker_arg *a = arg;
    struct model *m = a->m;
    uint64_t next_value = (uint64_t)a->id * OPS_PER_TASK;
    for (int op = 0; op < OPS_PER_TASK; op++) {
        m->ops++;
        uint64_t r = rnd(&a->rng);
        knit_chan *c = m->chans[r % NCHAN];
        knit_scope s;
        bool scoped;
        int err;
        unsigned k = (unsigned)((r >> 8) % 16);
        if (k < 5) { /* send */
            uint64_t v = next_value++;
            on_send_start(m, v);
            scoped = maybe_deadline(a, &s);
            err = knit_chan_send(c, &v);
            if (scoped)
                knit_scope_exit(&s);
            on_send_done(m, v, err);
        } else if (k < 10) { /* recv */
            uint64_t v;
            scoped = maybe_deadline(a, &s);
            err = knit_chan_recv(c, &v);
            if (scoped)
                knit_scope_exit(&s);
            if (err == 0)
                on_received(m, v);
        } else if (k < 14) { /* select over 2-4 cases */
            int n = 2 + (int)(rnd(&a->rng) % 3);
            knit_case cases[4];
            uint64_t in[4], out[4];
            int kind[4];
            for (int i = 0; i < n; i++) {
                knit_chan *ci = m->chans[rnd(&a->rng) % NCHAN];
                kind[i] = (int)(rnd(&a->rng) % 5);
                if (kind[i] < 2) {
                    in[i] = next_value++;
                    on_send_start(m, in[i]);
                    cases[i] = knit_case_send(ci, &in[i]);
                } else if (kind[i] < 4) {
                    cases[i] = knit_case_recv(ci, &out[i]);
                } else {
                    cases[i] = knit_case_deadline(knit_now() +
                                                  (int64_t)(rnd(&a->rng) % 5));
                }
            }
            scoped = maybe_deadline(a, &s);
            int fired = knit_select(cases, n);
            if (scoped)
                knit_scope_exit(&s);
            for (int i = 0; i < n; i++) {
                int res = knit_case_result(&cases[i]);
                if (kind[i] < 2)
                    on_send_done(m, in[i], i == fired ? res : -ECANCELED);
                else if (kind[i] < 4 && i == fired && res == 0)
                    on_received(m, out[i]);
            }
            err = fired < 0 ? fired : 0;
        } else if (k == 14) { /* sleep */
            err = knit_sleep((int64_t)(rnd(&a->rng) % 3));
        } else { /* close, rarely */
            if (rnd(&a->rng) % 64 == 0)
                knit_chan_close(c);
            err = knit_yield();
        }
        if (err == -ECANCELED && knit_yield() == -ECANCELED)
            break; /* this task was cancelled: stop */
    }
    m->live--;
    return 0;
}

static int chaos(void *arg)
{
    struct worker_arg *a = arg;
    for (int i = 0; i < 12; i++) {
        if (knit_sleep(1 + (int64_t)(rnd(&a->rng) % 20)))
            return 0;
        knit_cancel(a->m->tasks[rnd(&a->rng) % NTASK]);
    }
    return 0;
}

/* No waiter could have been served (rt lock: the channel's state). */
static void check_waits(struct model *m, const knit_chan *c)
{
    pthread_mutex_lock(&m->lock);
    if (c->len > 0 && !knit_list_is_empty(&c->recvq))
        fail_model(m, "a receiver waits on a non-empty channel", 0);
    if ((c->cap == 0 || c->len < c->cap) && !knit_list_is_empty(&c->sendq))
        fail_model(m, "a sender waits on a channel with room", 0);
    pthread_mutex_unlock(&m->lock);
}

static int t_model(void *arg)
{
    struct model *m = arg;
    static const size_t caps[NCHAN] = {1, 3, 0, 16};
    for (int i = 0; i < NCHAN; i++)
        m->chans[i] = knit_chan_new(sizeof(uint64_t), caps[i]);
    struct worker_arg args[NTASK + 1];
    for (int i = 0; i <= NTASK; i++)
        args[i] = (struct worker_arg){m, i, m->seed * 1000003u + (uint64_t)i};
    m->live = NTASK;
    for (int i = 0; i < NTASK; i++)
        m->tasks[i] = knit_spawn(worker, &args[i]);
    knit_task *ch = knit_spawn(chaos, &args[NTASK]);
    /* The chaos task cancels by handle: stop it before any is joined.
     * Workers may wait forever on a channel nobody uses any more: after
     * 10 s of (manual) time, check that no waiter could have been served
     * and close the channels, which ends every wait with -EPIPE. */
    for (int rounds = 0; m->live > 0; rounds++) {
        assert_int_equal(knit_sleep(5), 0);
        if (rounds != 2000)
            continue;
        for (int i = 0; i < NCHAN; i++) {
            KNIT_LOCKED_VOID(check_waits(m, m->chans[i]));
            knit_chan_close(m->chans[i]);
        }
    }
    knit_cancel(ch);
    knit_join(ch);
    for (int i = 0; i < NTASK; i++)
        assert_int_equal(knit_join(m->tasks[i]), 0);
    /* Whatever is still buffered was sent and must be received now. */
    for (int i = 0; i < NCHAN; i++) {
        uint64_t v;
        while (knit_chan_try_recv(m->chans[i], &v) == 0)
            on_received(m, v);
        knit_chan_unref(m->chans[i]);
    }
    for (uint64_t v = 0; v < NVALUES; v++) {
        if (m->state[v] == V_TRYING)
            fail_model(m, "a send never returned", v);
        if (m->state[v] == V_SENT && m->received[v] != 1)
            fail_model(m, "a sent value was lost", v);
    }
    return 0;
}

static void chan_and_select_never_lose_or_duplicate_a_message(void **state)
{
    (void)state;
    const char *env = getenv("KNIT_SEED");
    uint64_t first = env ? strtoull(env, NULL, 0) : 1;
    int nseeds = env ? 1 : 15;
    long total = 0;
    for (int k = 0; k < nseeds; k++) {
        struct model *m = calloc(1, sizeof(*m));
        assert_non_null(m);
        m->seed = first + (uint64_t)k;
        pthread_mutex_init(&m->lock, NULL);
        knit_config cfg;
        kt_config(&cfg);
        cfg.seed = m->seed;
        assert_int_equal(kt_run_cfg(&cfg, t_model, m), 0);
        if (m->failure[0])
            fail_msg("%s; rerun with KNIT_SEED=%llu", m->failure,
                     (unsigned long long)m->seed);
        total += m->ops;
        pthread_mutex_destroy(&m->lock);
        free(m);
    }
    print_message("%ld operations checked\n", total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chan_and_select_never_lose_or_duplicate_a_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
