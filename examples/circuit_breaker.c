// SPDX-License-Identifier: MIT
/*
 * A circuit breaker (knit/patterns/breaker.h) in front of a backend that
 * goes down for a while and comes back.
 *
 * A client sends a request every 100 ms; each takes the backend 10 ms to
 * answer. The backend refuses the requests that reach it from t=300ms
 * to t=1500ms. The breaker opens when the third consecutive failure
 * comes back (t=510ms) and stays open for 500 ms, during which requests
 * are rejected at once: the client serves a fallback instead of waiting
 * on a dead backend. The first request after the cool-down is a trial:
 * at t=1100ms the backend is still down, so the breaker opens again for
 * another 500 ms; at t=1700ms the trial works, and the second good trial
 * closes the breaker. The state-change callback prints each transition
 * with its time.
 *
 * Runs on the manual clock with one worker, so every printed time is
 * exact.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

#define REQUESTS 20
#define DOWN_FROM 300
#define DOWN_UNTIL 1500

static long long now(void)
{
    return (long long)knit_now();
}

/* The backend: 10 ms per request, refused while it is down. */
static int backend(void *arg)
{
    int *calls = arg;
    ++*calls;
    int64_t start = knit_now();
    int err = knit_sleep(10);
    if (err < 0)
        return err;
    if (start >= DOWN_FROM && start < DOWN_UNTIL)
        return -ECONNREFUSED;
    return 200;
}

static void on_change(void *arg, knit_breaker_state from, knit_breaker_state to)
{
    (void)arg;
    printf("t=%4lldms   breaker: %s -> %s\n", now(),
           knit_breaker_state_name(from), knit_breaker_state_name(to));
}

static int run(void *arg)
{
    (void)arg;
    knit_breaker_opts o = {
        .failure_threshold = 3, /* consecutive */
        .open_ms = 500,
        .half_open_max = 1,
        .success_threshold = 2,
        .on_change = on_change,
    };
    knit_breaker *b = knit_breaker_new(&o);
    if (!b)
        return -ENOMEM;
    int calls = 0;
    int err = 0;
    for (int i = 0; i < REQUESTS && err == 0; i++) {
        if ((err = knit_sleep_until(i * 100)) < 0)
            break;
        int r = knit_breaker_call(b, backend, &calls);
        if (r == -EBUSY) {
            knit_breaker_stats st;
            knit_breaker_stats_get(b, &st);
            printf("t=%4lldms req %2d rejected, fallback served (open "
                   "until t=%lldms)\n",
                   now(), i, (long long)st.open_until);
        } else if (r < 0) {
            printf("t=%4lldms req %2d failed: %s\n", now(), i, strerror(-r));
        } else {
            printf("t=%4lldms req %2d -> %d\n", now(), i, r);
        }
    }
    knit_breaker_stats st;
    knit_breaker_stats_get(b, &st);
    printf("t=%4lldms %d requests: %llu let through (%llu ok, %llu failed), "
           "%llu rejected; backend called %d times; opened %llu times; "
           "now %s\n",
           now(), REQUESTS, (unsigned long long)st.allowed,
           (unsigned long long)st.succeeded, (unsigned long long)st.failed,
           (unsigned long long)st.rejected, calls,
           (unsigned long long)st.opened, knit_breaker_state_name(st.state));
    knit_breaker_free(b);
    return err;
}

int main(void)
{
    knit_config cfg;
    knit_config_default(&cfg);
    cfg.clock = KNIT_CLOCK_MANUAL;
    cfg.workers = 1;
    cfg.seed = 1;
    int err = knit_run(&cfg, run, NULL);
    if (err < 0) {
        fprintf(stderr, "circuit_breaker: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
