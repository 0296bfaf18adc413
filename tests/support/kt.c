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

void kt_config(knit_config *cfg)
{
    knit_config_default(cfg);
    cfg->workers = 1;
    cfg->clock = KNIT_CLOCK_MANUAL;
    cfg->stall_ms = -1;
    const char *seed = getenv("KNIT_SEED");
    cfg->seed = seed ? strtoull(seed, NULL, 0) : 1;
}

static int kt_main(void *arg)
{
    struct body *b = arg;
    int r = b->fn(b->arg);
    knit_stats s;
    assert_int_equal(knit_rt_stats(&s), 0);
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

const char *kt_run_child(const knit_config *cfg, knit_fn fn, void *arg,
                         int *status)
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
        int r = cfg ? kt_run_cfg(cfg, fn, arg) : kt_run(fn, arg);
        _exit(r == 0 ? 0 : 3);
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

void kt_expect_in(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in:\n%s", needle, hay);
}
