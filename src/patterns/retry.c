// SPDX-License-Identifier: MIT
/*
 * Retry with exponential backoff (knit/patterns.h): the stepwise backoff
 * state (knit_backoff_*), then knit_retry_run, which drives it with
 * knit_sleep_until and stops early when the scope's deadline would pass
 * during a wait.
 *
 * Built only on the public API (DESIGN section 4, layering).
 */
#include <errno.h>

#include <knit.h>

/* knit_backoff's layout. All-zero is valid: zero fields resolve to the
 * defaults when used, and cur == 0 means no delay computed yet. */
struct backoff {
    int64_t initial;  /* first delay, ms; 0: default */
    int64_t max;      /* cap per computed delay, ms; 0: default */
    double factor;    /* growth per attempt; 0: default */
    double cur;       /* the next un-jittered delay; 0: not started */
    int64_t prev;     /* the previous decorrelated delay; 0: none yet */
    int max_attempts; /* <= 0: unlimited */
    int jitter;       /* a knit_jitter */
    int attempts;     /* knit_backoff_next calls since init or reset */
};

_Static_assert(sizeof(knit_backoff) >= sizeof(struct backoff),
               "grow knit_backoff");

#define DEFAULT_INITIAL_MS 100
#define DEFAULT_MAX_MS 10000
#define DEFAULT_FACTOR 2.0

static inline struct backoff *impl(knit_backoff *b)
{
    return (struct backoff *)(void *)b;
}

static inline const struct backoff *cimpl(const knit_backoff *b)
{
    return (const struct backoff *)(const void *)b;
}

void knit_backoff_init(knit_backoff *b, const knit_backoff_policy *p)
{
    struct backoff *x = impl(b);
    *x = (struct backoff){0};
    if (!p)
        return;
    x->initial = p->initial_ms > 0 ? p->initial_ms : 0;
    x->max = p->max_ms > 0 ? p->max_ms : 0;
    /* NaN fails every comparison and falls back to the default too. */
    x->factor = p->factor > 0 ? p->factor : 0;
    x->max_attempts = p->max_attempts > 0 ? p->max_attempts : 0;
    x->jitter = p->jitter;
}

void knit_backoff_reset(knit_backoff *b)
{
    struct backoff *x = impl(b);
    x->cur = 0;
    x->prev = 0;
    x->attempts = 0;
}

int knit_backoff_attempts(const knit_backoff *b)
{
    return cimpl(b)->attempts;
}

/* Uniform in [lo, hi], both >= 0. The modulo bias over 2^64 draws is far
 * below anything a delay in ms can show. */
static int64_t uniform(int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(knit_random() % span);
}

int64_t knit_backoff_next(knit_backoff *b, int64_t hint_ms)
{
    struct backoff *x = impl(b);
    int64_t initial = x->initial > 0 ? x->initial : DEFAULT_INITIAL_MS;
    int64_t max = x->max > 0 ? x->max : DEFAULT_MAX_MS;
    double factor = x->factor > 0 ? x->factor : DEFAULT_FACTOR;
    if (factor < 1.0)
        factor = 1.0;
    if (x->attempts < INT32_MAX)
        x->attempts++;
    if (x->max_attempts > 0 && x->attempts >= x->max_attempts)
        return -1;

    /* The un-jittered delay: kept as a double so that a fractional
     * factor compounds exactly and growth saturates at max without
     * overflowing. */
    if (x->cur <= 0)
        x->cur = (double)initial;
    double cur = x->cur < (double)max ? x->cur : (double)max;
    x->cur = cur * factor;
    /* Rounded to the nearest ms; at the cap, exactly max. */
    int64_t d = cur >= (double)max ? max : (int64_t)(cur + 0.5);

    switch (x->jitter) {
    case KNIT_JITTER_FULL:
        d = uniform(0, d);
        break;
    case KNIT_JITTER_DECORRELATED: {
        int64_t prev = x->prev > 0 ? x->prev : initial;
        int64_t hi = prev > INT64_MAX / 3 ? INT64_MAX : prev * 3;
        d = uniform(initial, hi);
        if (d > max)
            d = max;
        x->prev = d;
        break;
    }
    default: /* KNIT_JITTER_NONE, or an unknown value: no jitter */
        break;
    }
    /* The server's request wins when longer; it does not feed the
     * sequence, so one long Retry-After does not inflate later delays. */
    if (hint_ms > d)
        d = hint_ms;
    return d;
}

/* ---- knit_retry_run ------------------------------------------------------ */

/* The effective deadline of the caller's scopes (up to a shield). There is
 * no call that reads it directly, so a probe scope asks for its own. */
static int64_t scope_deadline(void)
{
    knit_scope probe;
    knit_scope_enter(&probe, KNIT_FOREVER);
    int64_t d = knit_scope_deadline(&probe);
    (void)knit_scope_exit(&probe);
    return d;
}

int knit_retry_run(const knit_retry *r, int (*op)(void *arg, int attempt),
                   void *arg)
{
    static const knit_retry defaults;
    if (!op)
        return -EINVAL;
    if (!r)
        r = &defaults;
    knit_backoff b;
    knit_backoff_init(&b, &r->policy);
    for (int attempt = 1;; attempt++) {
        int res = op(arg, attempt);
        if (res >= 0 || res == -ECANCELED)
            return res;
        if (r->retryable && !r->retryable(res, arg))
            return res;
        int64_t hint = r->server_delay ? r->server_delay(arg) : 0;
        int64_t d = knit_backoff_next(&b, hint);
        if (d < 0)
            return res;
        int64_t now = knit_now();
        int64_t until = d > INT64_MAX - now ? INT64_MAX : now + d;
        int64_t deadline = scope_deadline();
        if (deadline != KNIT_FOREVER && until >= deadline) {
            /* The scope would fire before the next attempt could start
             * (at equal times its timer fires first), so waiting buys
             * nothing. A cancellation outranks the deadline, as in every
             * blocking call; the yield is what reports it. */
            int err = knit_yield();
            return err == -ECANCELED ? err : -ETIMEDOUT;
        }
        int err = knit_sleep_until(until);
        if (err < 0)
            return err;
    }
}
