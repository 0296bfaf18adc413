// SPDX-License-Identifier: MIT
/*
 * The README's twenty-line example, kept here so the test suite proves it
 * compiles and prints what the README says: three tasks in a fail-fast
 * group under a 250 ms scope; the 300 ms one is cancelled.
 */
#include <errno.h>
#include <stdio.h>
#include <knit.h>

static int fetch(void *arg)            /* a task: int fn(void *) */
{
    int err = knit_sleep((int)(intptr_t)arg);  /* parks this task only */
    return err ? err : 200;
}

static int main_task(void *arg)
{
    (void)arg;
    knit_group g;                      /* no task outlives its group */
    knit_group_init(&g, KNIT_GROUP_FAIL_FAST);
    for (int i = 1; i <= 3; i++)
        knit_group_spawn(&g, fetch, (void *)(intptr_t)(i * 100));
    knit_scope s;                      /* everything inside gets 250 ms */
    knit_scope_enter(&s, knit_now() + 250);
    int err = knit_group_wait(&g);     /* -ETIMEDOUT: the 300 ms one was cancelled */
    knit_scope_exit(&s);
    printf("group: %d (%s)\n", err, err == -ETIMEDOUT ? "timed out" : "ok");
    return 0;
}

int main(void) { return knit_run(NULL, main_task, NULL); }
