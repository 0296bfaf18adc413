/* SPDX-License-Identifier: MIT */
/*
 * knit/patterns.h - the pattern library: ready-made answers to problems
 * every async program meets, built only on the public API.
 *
 * Several workers: every object here may be shared by tasks that run on
 * different workers (knit_config.workers), except a knit_backoff, which
 * is one caller's sequence (knit_retry_run keeps its own).
 *
 *   knit_backoff           exponential backoff with jitter, stepwise: the
 *                          caller does its own waiting
 *   knit_retry_run         call an operation until it succeeds, waiting
 *                          with backoff between attempts
 *   knit_ratelimit         token bucket: a rate with a burst, FIFO fair
 *   knit_keyed_ratelimit   one token bucket per key (a host name, a user)
 *
 * and, one header each under knit/patterns/ (all included here):
 *
 *   knit_map_*             bounded concurrency over an array or a channel,
 *                          in completion or input order (map.h)
 *   knit_pipeline          stages joined by bounded channels (pipeline.h)
 *   knit_actor             a mailbox task owning its state: tell, ask
 *                          (actor.h)
 *   knit_supervisor_run    restart strategies and intensity (supervisor.h)
 *   knit_pool              a resource pool: create, check, destroy, min
 *                          idle, idle eviction (pool.h)
 *   knit_breaker           circuit breaker (breaker.h)
 *   knit_shutdown_coord    graceful shutdown: signals, intake token, grace
 *                          period, report (shutdown.h)
 *   knit_prio_pool         a priority worker pool with aging (priority.h)
 *
 * For steady pacing of a producer (one item every period, no burst) use
 * knit_interval from knit/time.h; a token bucket is for a rate that may
 * be spent in bursts and is shared by several tasks.
 *
 * Retry with backoff:
 *
 *     knit_retry r = {.policy = {.initial_ms = 100, .max_attempts = 5,
 *                                .jitter = KNIT_JITTER_FULL}};
 *     err = knit_retry_run(&r, fetch_once, url);
 *
 * Deadlines come from scopes, as everywhere in knit: put the call in a
 * scope to bound all attempts and waits together. Jitter draws from
 * knit_random(), so a run with a fixed cfg.seed waits the same delays.
 *
 * Rate limiting:
 *
 *     knit_ratelimit lim;
 *     knit_ratelimit_init(&lim, 5.0, 3);   // 5 per second, bursts of 3
 *     ...
 *     if ((err = knit_ratelimit_acquire(&lim, 1)) < 0)
 *         return err;                      // cancelled: took nothing
 *     send_request();
 *
 * Limiters run on knit_now()'s clock, so the manual clock drives them
 * exactly. Like the primitives of knit/sync.h they are worker-local: one
 * limiter is used by the tasks of one runtime (one worker today).
 */
#ifndef KNIT_PATTERNS_H
#define KNIT_PATTERNS_H

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- backoff ----------------------------------------------------------- */

/*
 * How a delay is randomised. Without jitter, clients that failed together
 * retry together and fail together again; jitter spreads them out.
 *
 *   KNIT_JITTER_NONE          d(k) = min(max_ms, initial_ms * factor^(k-1))
 *   KNIT_JITTER_FULL          uniform in [0, d(k)]: the best spread, the
 *                             shortest average wait
 *   KNIT_JITTER_DECORRELATED  min(max_ms, uniform in [initial_ms, 3 * the
 *                             previous delay]), starting from initial_ms;
 *                             never below initial_ms (factor is not used)
 *
 * Delays are whole milliseconds, bounds included.
 */
typedef enum knit_jitter {
    KNIT_JITTER_NONE,
    KNIT_JITTER_FULL,
    KNIT_JITTER_DECORRELATED,
} knit_jitter;

/* A backoff policy; all-zero fields mean the defaults. */
typedef struct knit_backoff_policy {
    int64_t initial_ms; /* the first delay; <= 0: 100 */
    int64_t max_ms;     /* cap on each computed delay; <= 0: 10,000 */
    double factor;      /* growth per attempt; 0: 2.0; below 1 taken as 1 */
    int max_attempts;   /* attempts in all, the first included; <= 0: no
                           limit (a scope deadline bounds the retries) */
    knit_jitter jitter; /* KNIT_JITTER_NONE by default */
} knit_backoff_policy;

/*
 * Stepwise backoff state, for loops that do their own waiting (a crawler
 * that gives back its permits while it waits, a reconnect loop that
 * waits in a select). Caller-allocated; all-zero bytes are the default
 * policy with no attempt counted, as after knit_backoff_init(b, NULL).
 *
 *     knit_backoff b;
 *     knit_backoff_init(&b, &policy);
 *     while ((err = attempt()) < 0) {
 *         int64_t d = knit_backoff_next(&b, 0);
 *         if (d < 0 || (err2 = knit_sleep(d)) < 0)
 *             break;                   // out of attempts, or cancelled
 *     }
 */
KNIT_OPAQUE(knit_backoff, 64);

/**
 * knit_backoff_init() - start a backoff with policy @p.
 * @b: the state; any contents.
 * @p: the policy (copied), or NULL for the defaults.
 *
 * Not a cancellation point. Return: nothing.
 */
KNIT_API void knit_backoff_init(knit_backoff *b, const knit_backoff_policy *p);

/**
 * knit_backoff_next() - count one failed attempt and say how long to
 * wait before the next one.
 * @b:       the state.
 * @hint_ms: a delay the server asked for (HTTP Retry-After), or <= 0 for
 *           none. When it is longer than the computed delay it is used
 *           instead, even above max_ms: max_ms caps knit's own growth,
 *           not the server's request, and retrying earlier than asked is
 *           wasted. Clamp absurd hints before passing them; a scope
 *           deadline still bounds the whole retry.
 *
 * With jitter, draws one number from knit_random() per call. A hint does
 * not feed the decorrelated sequence: the next delay grows from the
 * computed one. Not a cancellation point; never waits.
 * Return: the delay in ms (>= 0) before the next attempt; -1 when the
 * attempt just counted was the last one max_attempts allows.
 */
KNIT_API int64_t knit_backoff_next(knit_backoff *b, int64_t hint_ms);

/**
 * knit_backoff_attempts() - the failed attempts counted so far.
 * @b: the state.
 *
 * Return: the number of knit_backoff_next() calls since init or reset.
 */
KNIT_API int knit_backoff_attempts(const knit_backoff *b);

/**
 * knit_backoff_reset() - forget the attempts (after a success, when the
 * same state serves the next operation); the policy stays.
 * @b: the state.
 *
 * Return: nothing.
 */
KNIT_API void knit_backoff_reset(knit_backoff *b);

/* ---- retry ------------------------------------------------------------- */

/* What knit_retry_run() does; all-zero is the default policy, every error
 * but -ECANCELED retried, no server hints. */
typedef struct knit_retry {
    knit_backoff_policy policy; /* delays and the attempt limit */
    /* Whether a failure is worth another attempt; NULL: every one. */
    bool (*retryable)(int err, void *arg);
    /* The delay in ms the server asked for after the last failure
     * (Retry-After), <= 0 for none; NULL: never any. */
    int64_t (*server_delay)(void *arg);
} knit_retry;

/**
 * knit_retry_run() - call op(arg, attempt) until it succeeds, waiting with
 * backoff between attempts.
 * @r:   the policy and predicates, or NULL for the defaults.
 * @op:  one attempt; @attempt counts from 1. Returns >= 0 for success or
 *       a negative errno.
 * @arg: passed to @op, @r->retryable and @r->server_delay.
 *
 * After a failure, stops with that error when it is -ECANCELED (never
 * retried, whatever @r->retryable says), when @r->retryable returns
 * false, or when it was the last attempt max_attempts allows. Otherwise
 * it asks @r->server_delay for a hint, computes the delay as
 * knit_backoff_next() does and waits.
 *
 * Deadlines: the effective deadline of the caller's scopes bounds the
 * retry. When the next attempt could not start before that deadline
 * (now + delay >= deadline), the retry ends at once with -ETIMEDOUT
 * instead of sleeping to the deadline for nothing; the caller's time is
 * better spent elsewhere. To see the last attempt's own error in that
 * case, record it in @op. A deadline that fires during an attempt makes
 * @op's blocking calls fail, and the retry ends the same way.
 *
 * Cancellation point (the waits, and @op's own blocking calls). Call from
 * a task.
 * Return: @op's result (>= 0) on success; @op's error when it is not
 * retryable or the attempts ran out; -ETIMEDOUT when the scope's deadline
 * passed or would pass before the next attempt; -ECANCELED when the task
 * or a scope was cancelled (@op's own -ECANCELED included); -EINVAL when
 * @op is NULL.
 */
KNIT_API int knit_retry_run(const knit_retry *r,
                            int (*op)(void *arg, int attempt), void *arg);

/* ---- token bucket ------------------------------------------------------ */

/*
 * A token bucket: it holds up to burst tokens, gains rate_per_s tokens a
 * second (fractions kept) and starts full. knit_ratelimit_acquire(l, n)
 * takes n tokens, waiting until the bucket holds them.
 *
 * Fair: waiters are served strictly in FIFO order, so a waiter for n
 * tokens holds back the waiters behind it (no starvation of large
 * requests), and try_acquire never takes tokens the queue waits for. A
 * waiter that is cancelled or times out takes nothing and leaves the
 * queue: no token is lost, and the next waiter is served at once if the
 * bucket allows. Tokens accrue with time, not with a refill task, so
 * nothing runs while the limiter is idle.
 *
 * Caller-allocated; knit_ratelimit_init() is required (all-zero bytes are
 * a limiter with burst 0: every request fails with -EINVAL). Worker-local
 * (see the overview).
 */
KNIT_OPAQUE(knit_ratelimit, 160);

/**
 * knit_ratelimit_init() - make @l a full bucket of @burst tokens that
 * refills at @rate_per_s tokens per second.
 * @l:          the limiter; no task may wait on it.
 * @rate_per_s: > 0 and finite; fractions allowed (0.5: one token every
 *              two seconds).
 * @burst:      the bucket's capacity, >= 1: the most taken at once.
 *
 * Not a cancellation point; may be called outside a runtime.
 * Return: 0; -EINVAL for a rate <= 0 or not finite, a burst of 0, or a
 * combination so slow that burst tokens take more than ~73 years.
 */
KNIT_API int knit_ratelimit_init(knit_ratelimit *l, double rate_per_s,
                                 unsigned burst);

/**
 * knit_ratelimit_acquire() - take @n tokens from @l, waiting in FIFO
 * order until the bucket holds them.
 * @l: the limiter.
 * @n: tokens wanted, at most the burst; 0 returns 0 at once.
 *
 * Cancellation point: like the primitives of knit/sync.h, it checks the
 * scopes first, so in a fired scope it fails even when tokens are there.
 * Call from a task. A deadline is not anticipated: a waiter whose tokens
 * come after its deadline waits until the deadline fires.
 * Return: 0, the caller took @n tokens; -EINVAL when @n exceeds the burst
 * (or the burst was lowered below @n while waiting); -ECANCELED /
 * -ETIMEDOUT when the caller's scope fired (nothing taken, the waiters
 * behind are served).
 */
KNIT_API int knit_ratelimit_acquire(knit_ratelimit *l, unsigned n);

/**
 * knit_ratelimit_try_acquire() - take @n tokens from @l if it holds them
 * and no task waits, without waiting.
 * @l: the limiter.
 * @n: tokens wanted; 0 succeeds unless tasks wait.
 *
 * Not a cancellation point. Call from a task.
 * Return: 0; -EAGAIN when the tokens are not there or tasks wait (the
 * tokens are theirs); -EINVAL when @n exceeds the burst.
 */
KNIT_API int knit_ratelimit_try_acquire(knit_ratelimit *l, unsigned n);

/**
 * knit_ratelimit_set_rate() - change @l's rate and burst, keeping the
 * tokens it holds (down to the new burst).
 * @l:          the limiter.
 * @rate_per_s: > 0 and finite.
 * @burst:      >= 1.
 *
 * The waiter at the head of the queue recomputes its wait at once. Not a
 * cancellation point. Call from a task or before any task uses @l.
 * Return: 0; -EINVAL as for knit_ratelimit_init() (nothing changed).
 */
KNIT_API int knit_ratelimit_set_rate(knit_ratelimit *l, double rate_per_s,
                                     unsigned burst);

/**
 * knit_ratelimit_available() - count the whole tokens @l holds now.
 * @l: the limiter.
 *
 * While a task waits the count is below its request. Not a cancellation
 * point.
 * Return: 0 to the burst.
 */
KNIT_API unsigned knit_ratelimit_available(const knit_ratelimit *l);

/**
 * knit_ratelimit_destroy() - end @l's life; its storage may then be
 * reused. Nothing to free: this checks that no task uses @l.
 * @l: the limiter.
 *
 * Panics when a task waits on @l. Return: nothing.
 */
KNIT_API void knit_ratelimit_destroy(knit_ratelimit *l);

/* ---- keyed token buckets ----------------------------------------------- */

/*
 * One token bucket per key, for limits per host, per user, per API key.
 * A key's bucket is created full on first use with the limiter's rate and
 * burst (or an override set with knit_keyed_ratelimit_set_rate) and has
 * the semantics of knit_ratelimit, FIFO fairness included; keys are
 * independent. Keys are strings, compared exactly (normalise host names
 * before use) and copied.
 *
 * Eviction: a key unused for idle_ms whose bucket has refilled to full
 * carries no information (a new bucket would start full too), so it is
 * dropped. A key with a waiter or with an override is never dropped.
 * Memory is reclaimed by a sweep that runs at most every idle_ms during
 * acquire, try_acquire and set_rate calls. Worker-local.
 */
typedef struct knit_keyed_ratelimit knit_keyed_ratelimit;

/**
 * knit_keyed_ratelimit_new() - create a keyed limiter.
 * @rate_per_s: default rate of each key's bucket, > 0 and finite.
 * @burst:      default burst, >= 1.
 * @idle_ms:    drop a full bucket after this long unused; < 0
 *              (KNIT_FOREVER): never drop.
 *
 * Not a cancellation point; may be called outside a runtime.
 * Return: the limiter; NULL when out of memory or for a bad rate or burst
 * (as knit_ratelimit_init() would refuse).
 */
KNIT_API knit_keyed_ratelimit *
knit_keyed_ratelimit_new(double rate_per_s, unsigned burst, int64_t idle_ms);

/**
 * knit_keyed_ratelimit_acquire() - knit_ratelimit_acquire() on @key's
 * bucket, creating it when needed.
 * @k:   the limiter.
 * @key: a NUL-terminated key.
 * @n:   tokens wanted, at most the key's burst.
 *
 * Cancellation point. Call from a task.
 * Return: 0; -EINVAL for a NULL @key or @n above the key's burst;
 * -ENOMEM when a new key's bucket cannot be allocated; -ECANCELED /
 * -ETIMEDOUT when the caller's scope fired (nothing taken).
 */
KNIT_API int knit_keyed_ratelimit_acquire(knit_keyed_ratelimit *k,
                                          const char *key, unsigned n);

/**
 * knit_keyed_ratelimit_try_acquire() - knit_ratelimit_try_acquire() on
 * @key's bucket, creating it when needed.
 * @k:   the limiter.
 * @key: a NUL-terminated key.
 * @n:   tokens wanted.
 *
 * Not a cancellation point. Call from a task.
 * Return: 0; -EAGAIN when the tokens are not there or tasks wait;
 * -EINVAL for a NULL @key or @n above the key's burst; -ENOMEM when a
 * new key's bucket cannot be allocated.
 */
KNIT_API int knit_keyed_ratelimit_try_acquire(knit_keyed_ratelimit *k,
                                              const char *key, unsigned n);

/**
 * knit_keyed_ratelimit_set_rate() - give @key its own rate and burst (a
 * robots.txt Crawl-delay of 2 s is a rate of 0.5 with a burst of 1), or
 * take an override away.
 * @k:          the limiter.
 * @key:        a NUL-terminated key; created when missing.
 * @rate_per_s: > 0: the key's rate from now on; 0: back to the limiter's
 *              defaults (@burst ignored), after which the key may be
 *              evicted again.
 * @burst:      >= 1 when @rate_per_s > 0.
 *
 * The key keeps the tokens it holds, down to the new burst (see
 * knit_ratelimit_set_rate()). A key with an override is never evicted,
 * so the override is not forgotten while the key is idle. Not a
 * cancellation point. Call from a task.
 * Return: 0; -EINVAL for a NULL @key, a negative or non-finite rate, or a
 * bad burst; -ENOMEM when the key cannot be allocated.
 */
KNIT_API int knit_keyed_ratelimit_set_rate(knit_keyed_ratelimit *k,
                                           const char *key, double rate_per_s,
                                           unsigned burst);

/**
 * knit_keyed_ratelimit_size() - count the live keys: those that hold
 * state (used recently, not yet full, waited on, or overridden).
 * @k: the limiter.
 *
 * A key counts until it becomes evictable, even if the sweep has not yet
 * freed it. O(keys). Not a cancellation point.
 * Return: the number of live keys.
 */
KNIT_API size_t knit_keyed_ratelimit_size(const knit_keyed_ratelimit *k);

/**
 * knit_keyed_ratelimit_free() - free @k and every bucket.
 * @k: the limiter, or NULL.
 *
 * Panics when a task waits on one of its buckets. Return: nothing.
 */
KNIT_API void knit_keyed_ratelimit_free(knit_keyed_ratelimit *k);

#ifdef __cplusplus
}
#endif

/* The other patterns, one header each (all included here). */
#include "knit/patterns/actor.h"
#include "knit/patterns/breaker.h"
#include "knit/patterns/map.h"
#include "knit/patterns/pipeline.h"
#include "knit/patterns/pool.h"
#include "knit/patterns/priority.h"
#include "knit/patterns/shutdown.h"
#include "knit/patterns/supervisor.h"

#endif
