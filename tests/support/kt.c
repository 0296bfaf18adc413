// SPDX-License-Identifier: MIT
/* Test support (kt.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/sched.h"
#include "kt.h"

struct body {
    knit_fn fn;
    void *arg;
};

/* KT_FILTER=GLOB runs only the matching cases of a suite (debugging). */
__attribute__((constructor)) static void kt_filter(void)
{
    const char *f = getenv("KT_FILTER");
    if (f)
        cmocka_set_test_filter(f);
}

int kt_workers(void)
{
    const char *n = getenv("KNIT_TEST_WORKERS");
    int w = n ? atoi(n) : 1;
    return w > 0 ? w : 1;
}

void kt_config(knit_config *cfg)
{
    knit_config_default(cfg);
    cfg->workers = kt_workers();
    cfg->clock = KNIT_CLOCK_MANUAL;
    cfg->stall_ms = -1;
    const char *seed = getenv("KNIT_SEED");
    cfg->seed = seed ? strtoull(seed, NULL, 0) : 1;
}

/*
 * Other tasks that are running or runnable (rt lock). A parked task's
 * waiter is set and cleared under the lock, held from the park until it
 * has switched away, so "t->waiter != NULL" is read safely here; so is
 * knit__nlive. A lazy NEW task has not started: nobody else writes its
 * state (lazy is cleared under the lock before it is queued).
 */
static uint64_t busy_tasks(struct knit_rt *rt, const struct knit_task *self)
{
    uint64_t waiting = 0;
    for (int i = 0; i < rt->nworkers; i++) {
        struct knit_list *it;
        knit__books_lock(&rt->workers[i]); /* the list's own lock */
        knit_list_for_each(it, &rt->workers[i].tasks)
        {
            const struct knit_task *t =
                knit_container_of(it, struct knit_task, all_link);
            if (t != self &&
                (t->waiter || (t->lazy && t->state == KNIT_TASK_NEW)))
                waiting++;
        }
        knit__books_unlock(&rt->workers[i]);
    }
    return knit__nlive(rt) - 1 - waiting; /* live ones bar self, not waiting */
}

void kt_settle(void)
{
    struct knit_worker *w = knit__worker();
    for (int i = 0; i < 1000000; i++) {
        assert_int_equal(knit_yield(), 0);
        if (KNIT_LOCKED(busy_tasks(w->rt, knit__task())) == 0)
            return;
    }
    fail_msg("kt_settle: tasks still running after a million yields");
}

uint64_t kt_tasks_alive(void)
{
    struct knit_rt *rt = knit__worker()->rt;
    return KNIT_LOCKED(knit__nlive(rt));
}

static int kt_main(void *arg)
{
    struct body *b = arg;
    int r = b->fn(b->arg);
    /* On several workers a task may still be ending that nothing waits
     * for (a detached _blocking proxy that already answered): let it. A
     * task left behind waits, and still counts below. Shielded: the body
     * may have cancelled main. */
    if (kt_workers() > 1) {
        knit_scope sh;
        knit_scope_enter_shielded(&sh, KNIT_FOREVER);
        kt_settle();
        knit_scope_exit(&sh);
    }
    knit_stats s;
    assert_int_equal(knit_rt_stats(&s), 0);
    /* knit_rt_stats counts this worker's tasks; with several, the others'
     * count too. Timers and stacks are per worker: this one's only. */
    s.tasks_alive = kt_tasks_alive();
    if (s.tasks_alive != 1 || s.timers_armed != 0 || s.stacks_in_use != 1) {
        knit_dump(stderr);
        fail_msg("test left %llu tasks, %llu timers, %llu stacks behind "
                 "(seed %llu)",
                 (unsigned long long)s.tasks_alive - 1,
                 (unsigned long long)s.timers_armed,
                 (unsigned long long)s.stacks_in_use - 1,
                 (unsigned long long)s.seed);
    }
    return r;
}

int kt_run_cfg(const knit_config *cfg, knit_fn fn, void *arg)
{
    /* A failed assertion inside a task jumped out of the previous run. */
    knit__tls_worker = NULL;
    struct body b = {fn, arg};
    return knit_run(cfg, kt_main, &b);
}

int kt_run(knit_fn fn, void *arg)
{
    knit_config cfg;
    kt_config(&cfg);
    return kt_run_cfg(&cfg, fn, arg);
}

const char *kt_fork_capture(void (*child)(void *), void *arg, int *status)
{
    static char buf[16384];
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        child(arg);
        _exit(3); /* child() should not return */
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(buf) - 1 &&
           (r = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, status, 0), pid);
    return buf;
}

struct child_run {
    const knit_config *cfg;
    knit_fn fn;
    void *arg;
};

/* kt_run_child's child: kt_run_cfg, exit 0 when fn returned 0. */
static void run_in_child(void *arg)
{
    const struct child_run *cr = arg;
    knit_config c;
    if (cr->cfg)
        c = *cr->cfg;
    else
        kt_config(&c);
#ifdef __SANITIZE_THREAD__
    c.workers = 1; /* TSan cannot start threads after this fork */
#endif
    int r = kt_run_cfg(&c, cr->fn, cr->arg);
    _exit(r == 0 ? 0 : 3);
}

const char *kt_run_child(const knit_config *cfg, knit_fn fn, void *arg,
                         int *status)
{
    struct child_run cr = {cfg, fn, arg};
    return kt_fork_capture(run_in_child, &cr, status);
}

void kt_expect_in(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in:\n%s", needle, hay);
}

static int noop(void *arg)
{
    (void)arg;
    return 0;
}

bool kt_uring_works(void)
{
    static int ok = -1;
    if (ok < 0) {
        knit_config cfg;
        kt_config(&cfg);
        cfg.io = KNIT_IO_URING;
        ok = kt_run_cfg(&cfg, noop, NULL) == 0;
        if (!ok)
            print_message("io_uring unavailable: its runs are skipped\n");
    }
    return ok;
}

static int both_io = KNIT_IO_AUTO;

void kt_run_both(knit_fn fn, void *arg)
{
    static const int ios[] = {KNIT_IO_EPOLL, KNIT_IO_URING};
    for (size_t i = 0; i < sizeof(ios) / sizeof(ios[0]); i++) {
        if (ios[i] == KNIT_IO_URING && !kt_uring_works())
            continue;
        knit_config cfg;
        kt_config(&cfg);
        cfg.io = ios[i];
        both_io = ios[i];
        int r = kt_run_cfg(&cfg, fn, arg);
        both_io = KNIT_IO_AUTO;
        assert_int_equal(r, 0);
    }
}

int kt_both_io(void)
{
    return both_io;
}
