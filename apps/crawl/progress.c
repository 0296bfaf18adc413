// SPDX-License-Identifier: MIT
/* The progress display of progress.h, on knit's clock. */
#include <stdlib.h>

#include <knit.h>

#include "progress.h"

struct progress {
    FILE *out;
    int mode;
    int64_t start, last;  /* knit_now() at creation and at the last line */
    uint64_t last_done;   /* pages at the last line */
    double rate;          /* pages/s, smoothed */
};

struct progress *progress_new(FILE *out, int mode)
{
    if (mode <= 0)
        return NULL;
    struct progress *p = calloc(1, sizeof(*p));
    if (p) {
        p->out = out;
        p->mode = mode;
        p->start = p->last = knit_now();
    }
    return p;
}

int64_t progress_interval_ms(const struct progress *p)
{
    return !p ? 1000 : p->mode == 2 ? 200 : 2000;
}

void progress_update(struct progress *p, const struct progress_sample *s,
                     bool final)
{
    if (!p)
        return;
    int64_t now = knit_now();
    if (!final && now - p->last < progress_interval_ms(p))
        return;
    if (now > p->last) {
        double r = (double)(s->done - p->last_done) * 1000.0 /
                   (double)(now - p->last);
        /* Smooth the live line; plain lines report the interval itself. */
        p->rate = p->mode == 2 && p->last != p->start ? 0.7 * p->rate + 0.3 * r
                                                      : r;
    }
    p->last = now;
    p->last_done = s->done;
    if (final && p->mode == 1)
        return; /* the summary follows */
    fprintf(p->out,
            "%s%7.1f pages/s | done %llu | queued %llu | in flight %llu |"
            " errors %llu | retries %llu | hosts %llu (%llu throttled)%s",
            p->mode == 2 ? "\r\033[K" : "", p->rate,
            (unsigned long long)s->done, (unsigned long long)s->queued,
            (unsigned long long)s->in_flight, (unsigned long long)s->errors,
            (unsigned long long)s->retries, (unsigned long long)s->hosts,
            (unsigned long long)s->throttled,
            p->mode == 1 || final ? "\n" : "");
    fflush(p->out);
}

void progress_free(struct progress *p)
{
    free(p);
}
