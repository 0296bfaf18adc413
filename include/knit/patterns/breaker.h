/* SPDX-License-Identifier: MIT */
/*
 * knit/patterns/breaker.h - a circuit breaker: stop calling a backend
 * that keeps failing, give it time to recover, then let a few trial calls
 * find out whether it has.
 *
 * Several workers: a breaker may be shared by tasks on different workers;
 * its callbacks run outside its lock, so on_change calls made by calls on
 * different workers may overlap.
 *
 *     knit_breaker_opts o = {.failure_threshold = 5, .open_ms = 10000};
 *     knit_breaker *b = knit_breaker_new(&o);
 *     ...
 *     err = knit_breaker_call(b, fetch, req);
 *     if (err == -EBUSY)
 *         return serve_stale(req);     // open: rejected without calling
 *
 * States, as in every breaker since Nygard's "Release It!":
 *
 *   closed     calls go through; failures are counted. When
 *              failure_threshold of them are reached the breaker opens.
 *              Two ways to count, chosen by window_ms:
 *                window_ms <= 0: consecutive failures (a success starts
 *                  the count again): for a backend that is either up or
 *                  down;
 *                window_ms > 0: failures within a sliding window (the
 *                  newest failure_threshold failures all happened in
 *                  less than window_ms; successes do not matter): also
 *                  trips on a backend that fails every other call.
 *   open       every call is rejected at once with -EBUSY, for open_ms
 *              (the cool-down) from the moment it opened.
 *   half-open  after the cool-down, up to half_open_max trial calls may
 *              be in flight at once; more are rejected with -EBUSY.
 *              success_threshold successful trials close the breaker; a
 *              failed trial opens it again for a new cool-down.
 *
 * Time is knit_now()'s, so the manual clock drives a breaker exactly. The
 * move from open to half-open needs no timer: it is made by the first
 * call (or state or stats query) at or after the end of the cool-down,
 * and the state-change callback runs then.
 *
 * What counts. A result >= 0 is a success. -ECANCELED is neither: the
 * caller gave up, which says nothing about the backend (a trial slot is
 * freed, nothing is counted). Any other error is a failure, unless
 * is_failure says otherwise, in which case it counts as a success (a 404
 * proves that the backend answers). A call is counted in the state in
 * which it was let through: when the breaker has changed state since
 * (it opened while the call was in flight, say), the call's outcome is
 * ignored.
 *
 * Callers that make their own calls (a call that is not one function, a
 * result to translate) use the ticket API, which knit_breaker_call() is
 * built on:
 *
 *     knit_breaker_ticket t;
 *     if ((err = knit_breaker_allow(b, &t)) < 0)
 *         return err;                      // -EBUSY: open
 *     int status = http_get(url);
 *     knit_breaker_record(b, &t, status >= 500 ? -EIO : 0);
 *
 * Every ticket knit_breaker_allow() grants must be recorded exactly once,
 * -ECANCELED for a call abandoned: an unrecorded trial holds its
 * half-open slot for good.
 *
 * Why -EBUSY and not -EAGAIN: -EAGAIN is what knit's try_ calls return
 * and what many programs make of a 503 or a 429 (see knit_retry_run), so
 * a rejection would look like the backend's own answer.
 *
 * Worker-local like the primitives of knit/sync.h: a breaker serves the
 * tasks of one runtime. No call of this header waits.
 */
#ifndef KNIT_PATTERNS_BREAKER_H
#define KNIT_PATTERNS_BREAKER_H

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The three states; see the overview. */
typedef enum knit_breaker_state {
    KNIT_BREAKER_CLOSED,    /* calls go through, failures counted */
    KNIT_BREAKER_OPEN,      /* calls rejected until the cool-down ends */
    KNIT_BREAKER_HALF_OPEN, /* a few trial calls decide */
} knit_breaker_state;

/* The thresholds and callbacks of a breaker; all-zero fields mean the
 * defaults. */
typedef struct knit_breaker_opts {
    unsigned failure_threshold; /* failures that open it; 0: 5. With a
                                   window, at most 65536 */
    int64_t window_ms;          /* > 0: count failures within this sliding
                                   window; <= 0: consecutive failures */
    int64_t open_ms;            /* the cool-down; <= 0: 10,000 */
    unsigned half_open_max;     /* trial calls in flight at once; 0: 1 */
    unsigned success_threshold; /* successful trials that close it; 0: 1 */
    /* For an error other than -ECANCELED: true counts it as a failure,
     * false as a success. NULL: every such error is a failure. */
    bool (*is_failure)(int err, void *arg);
    /* Runs after each change of state, inside the call that caused it.
     * It may query the breaker (state, stats) but not free it. NULL:
     * none. */
    void (*on_change)(void *arg, knit_breaker_state from,
                      knit_breaker_state to);
    void *arg; /* passed to is_failure and on_change */
} knit_breaker_opts;

/* Counters of a breaker (knit_breaker_stats_get()). */
typedef struct knit_breaker_stats {
    knit_breaker_state state; /* now */
    int64_t since;            /* knit_now() of the last change of state
                                 (0 if none) */
    int64_t open_until;       /* open: when the cool-down ends; else 0 */
    unsigned failures;        /* closed: failures counted toward the
                                 threshold now (consecutive, or within the
                                 window); else 0 */
    unsigned successes;       /* half-open: successful trials so far */
    unsigned in_flight;       /* tickets granted and not yet recorded */
    uint64_t allowed;         /* calls let through, trials included */
    uint64_t rejected;        /* calls refused with -EBUSY */
    uint64_t succeeded;       /* outcomes counted as successes */
    uint64_t failed;          /* outcomes counted as failures */
    uint64_t ignored;         /* -ECANCELED outcomes, and outcomes of calls
                                 let through before the last change */
    uint64_t opened;          /* changes to open (trips included) */
} knit_breaker_stats;

/* A breaker: heap-allocated, opaque. */
typedef struct knit_breaker knit_breaker;

/*
 * A call let through by knit_breaker_allow(), to be passed to
 * knit_breaker_record(). Caller-allocated, usually on the stack.
 */
KNIT_OPAQUE(knit_breaker_ticket, 16);

/**
 * knit_breaker_new() - create a closed breaker.
 * @o: thresholds and callbacks (copied), or NULL for the defaults.
 *
 * Not a cancellation point; may be called outside a runtime.
 * Return: the breaker; NULL when out of memory or when a window is asked
 * for with a failure_threshold above 65536.
 */
KNIT_API knit_breaker *knit_breaker_new(const knit_breaker_opts *o);

/**
 * knit_breaker_call() - call fn(arg) unless @b rejects it, and count its
 * result.
 * @b:   the breaker.
 * @fn:  the call; its result >= 0 is a success (see the overview).
 * @arg: its argument.
 *
 * Cancellation point through @fn only: a rejection does not wait.
 * Return: @fn's result; -EBUSY when @b is open, or half-open with
 * half_open_max trials in flight (@fn not called); -EINVAL when @b or @fn
 * is NULL.
 */
KNIT_API int knit_breaker_call(knit_breaker *b, knit_fn fn, void *arg);

/**
 * knit_breaker_allow() - ask @b whether a call may go through now.
 * @b: the breaker.
 * @t: out; on success, the ticket to record the call's outcome with.
 *
 * Moves an open breaker whose cool-down has ended to half-open first.
 * Not a cancellation point.
 * Return: 0, make the call and then knit_breaker_record(@b, @t, result);
 * -EBUSY when @b is open, or half-open with half_open_max trials in
 * flight (nothing to record); -EINVAL when @b or @t is NULL.
 */
KNIT_API int knit_breaker_allow(knit_breaker *b, knit_breaker_ticket *t);

/**
 * knit_breaker_record() - count the outcome of a call @b let through.
 * @b:      the breaker.
 * @t:      the ticket knit_breaker_allow() filled in; used up.
 * @result: the call's result: >= 0 success, -ECANCELED abandoned
 *          (not counted), another error a failure unless is_failure says
 *          no.
 *
 * May change the state (and run on_change). Not a cancellation point.
 * Panics when @t is not a ticket of @b waiting to be recorded (recorded
 * twice, or never granted).
 * Return: nothing.
 */
KNIT_API void knit_breaker_record(knit_breaker *b, knit_breaker_ticket *t,
                                  int result);

/**
 * knit_breaker_state_get() - @b's state now.
 * @b: the breaker.
 *
 * Moves an open breaker whose cool-down has ended to half-open (and runs
 * on_change), so the answer is what the next call would meet. Not a
 * cancellation point.
 * Return: the state.
 */
KNIT_API knit_breaker_state knit_breaker_state_get(knit_breaker *b);

/**
 * knit_breaker_state_name() - a state's name for logs.
 * @s: the state.
 *
 * Return: "closed", "open", "half-open", or "?" for another value.
 */
KNIT_API const char *knit_breaker_state_name(knit_breaker_state s);

/**
 * knit_breaker_trip() - open @b now, whatever its state, for a full
 * cool-down from now (an operator's switch, or a health probe that saw
 * the backend go down).
 * @b: the breaker.
 *
 * An open breaker stays open with its cool-down restarted (no on_change).
 * Calls in flight are not counted. Not a cancellation point.
 * Return: nothing.
 */
KNIT_API void knit_breaker_trip(knit_breaker *b);

/**
 * knit_breaker_reset() - close @b now and forget the failures counted.
 * @b: the breaker.
 *
 * An open or half-open breaker closes (and runs on_change); the calls in
 * flight then are not counted. A closed one only forgets its failures;
 * its calls in flight still count. Not a cancellation point.
 * Return: nothing.
 */
KNIT_API void knit_breaker_reset(knit_breaker *b);

/**
 * knit_breaker_stats_get() - copy @b's counters into @out.
 * @b:   the breaker.
 * @out: filled in.
 *
 * Moves an open breaker whose cool-down has ended to half-open first, as
 * knit_breaker_state_get() does. Not a cancellation point.
 * Return: nothing.
 */
KNIT_API void knit_breaker_stats_get(knit_breaker *b, knit_breaker_stats *out);

/**
 * knit_breaker_free() - free @b.
 * @b: the breaker, or NULL.
 *
 * Panics when a granted ticket has not been recorded (a call in flight
 * would record into freed memory).
 * Return: nothing.
 */
KNIT_API void knit_breaker_free(knit_breaker *b);

#ifdef __cplusplus
}
#endif

#endif
