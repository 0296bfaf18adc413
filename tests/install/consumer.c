/* SPDX-License-Identifier: MIT */
/*
 * consumer.c - a program built against an installed knit, the way a user
 * would build one (tests/install/run.sh). Its main task spawns a task that
 * sleeps 10 ms and returns 42, joins it and prints the version and the
 * result. Exits 0 only when the join gave 42.
 */
#include <knit.h>

#include <stdio.h>

static int child(void *arg)
{
    (void)arg;
    int err = knit_sleep(10);
    if (err < 0)
        return err;
    return 42;
}

static int main_task(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn(child, NULL);
    if (t == NULL)
        return -1;
    return knit_join(t);
}

int main(void)
{
    int result = knit_run(NULL, main_task, NULL);
    printf("knit %s\n", KNIT_VERSION_STRING);
    printf("result %d\n", result);
    return result == 42 ? 0 : 1;
}
