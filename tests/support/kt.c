// SPDX-License-Identifier: MIT
/* Test support (kt.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
