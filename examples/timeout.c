// SPDX-License-Identifier: MIT
/*
 * Timeouts: knit_timeout(ms, fn, arg) runs fn inside a scope with a
 * deadline, so a slow operation's blocking call (here knit_sleep) returns
 * -ETIMEDOUT when the time is up, and a fast one returns its own result.
 * The same deadline can cover several steps with a knit_scope: the steps
 * share one budget. Once the scope has fired, every blocking call in it
 * fails at once, so cleanup that must still wait (flush, goodbye message)
 * runs in a shielded scope, with a deadline of its own to bound it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

static long long now(void)
{
    return (long long)knit_now();
}

static const char *errname(int err)
{
    if (err == 0)
        return "0";
    if (err == -ETIMEDOUT)
        return "-ETIMEDOUT";
    return strerror(-err);
}

/* Returns 0 when @got is @want, else says so on stderr and returns 1. */
static int expect(const char *what, int got, int want)
{
    if (got == want)
        return 0;
    fprintf(stderr, "timeout: %s gave %d, expected %d\n", what, got, want);
    return 1;
}

struct op {
    const char *name; /* printed */
    int64_t ms;       /* how long it takes */
    int result;       /* what it returns when it finishes */
};

/* A stand-in for a request: waits op->ms, then answers. */
static int operation(void *arg)
{
    const struct op *op = arg;
    int err = knit_sleep(op->ms);
    printf("t=%lldms   %s: sleep(%lld) -> %s\n", now(), op->name,
           (long long)op->ms, errname(err));
    return err < 0 ? err : op->result;
}

static int run(void *arg)
{
    (void)arg;
    struct op slow = {"slow", 300, 42};
    struct op fast = {"fast", 50, 7};

    /* 1. One call, one deadline. */
    int r = knit_timeout(100, operation, &slow);
    printf("t=%lldms timeout(100, slow) -> %s\n", now(), errname(r));
    if (expect("timeout(100, slow)", r, -ETIMEDOUT))
        return -EPROTO;
    r = knit_timeout(100, operation, &fast);
    printf("t=%lldms timeout(100, fast) -> %d\n", now(), r);
    if (expect("timeout(100, fast)", r, 7))
        return -EPROTO;

    /* 2. A scope: two steps of 120 ms share a 200 ms budget. */
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 200);
    printf("t=%lldms scope entered, deadline t=%lldms\n", now(),
           (long long)knit_scope_deadline(&s));
    struct op step1 = {"step 1", 120, 0};
    struct op step2 = {"step 2", 120, 0};
    int err1 = operation(&step1);
    int err2 = operation(&step2);

    /* 3. Cleanup in a shield: the fired scope above cannot stop it. */
    knit_scope shield;
    knit_scope_enter_shielded(&shield, knit_now() + 50);
    struct op flush = {"cleanup", 30, 0};
    int errc = operation(&flush);
    int errs = knit_scope_exit(&shield);
    printf("t=%lldms shield exit -> %s\n", now(), errname(errs));

    /* Outside the shield the scope is still fired: no waiting at all. */
    int errw = knit_sleep(10);
    printf("t=%lldms unshielded sleep(10) -> %s\n", now(), errname(errw));
    int errx = knit_scope_exit(&s);
    printf("t=%lldms scope exit -> %s\n", now(), errname(errx));

    int bad = expect("step 1", err1, 0) + expect("step 2", err2, -ETIMEDOUT) +
              expect("cleanup", errc, 0) + expect("shield exit", errs, 0) +
              expect("sleep", errw, -ETIMEDOUT) +
              expect("scope exit", errx, -ETIMEDOUT);
    return bad ? -EPROTO : 0;
}

int main(void)
{
    knit_config cfg;
    knit_config_default(&cfg);
    cfg.clock = KNIT_CLOCK_MANUAL; /* sleeps are instant and exact */
    cfg.workers = 1;
    cfg.seed = 1;
    int err = knit_run(&cfg, run, NULL);
    if (err < 0) {
        fprintf(stderr, "timeout: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
