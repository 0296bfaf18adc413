// SPDX-License-Identifier: MIT
/* knit__pattern_misuse (misuse.h): one report for every pattern. */
#include <stdio.h>
#include <stdlib.h>

#include <knit.h>

#include "patterns/misuse.h"

_Noreturn void knit__pattern_misuse(const char *what)
{
    knit_task *t = knit_current();
    if (t)
        fprintf(stderr, "knit: %s (in task %llu \"%s\")\n", what,
                (unsigned long long)knit_task_id(t), knit_task_name(t));
    else
        fprintf(stderr, "knit: %s\n", what);
    fflush(stderr);
    abort();
}
