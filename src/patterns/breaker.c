// SPDX-License-Identifier: MIT
/*
 * The circuit breaker (knit/patterns/breaker.h): the state machine and
 * its failure counters, then the ticket API, then the call wrapper and
 * the queries.
 *
 * Every change of state bumps an epoch. A ticket carries the epoch in
 * which its call was let through, so an outcome that arrives after a
 * change (a slow call finishing once the breaker has opened) is ignored
 * instead of counting against the new state. The sliding window keeps
 * the times of the last failure_threshold failures in a ring: the
 * threshold is reached when the oldest of them is less than window_ms
 * before the newest.
 *
 * Nothing here waits, so no knit primitive is needed: the breaker is
 * counters, read and written under its spin lock `lk` (tasks of several
 * workers may share it). The user's callbacks run outside the lock:
 * is_failure before it is taken, on_change after it is released (a
 * change is noted under the lock and reported once it is dropped), so
 * both may query the breaker.
 *
 * Built only on the public API (DESIGN section 4, layering).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>
#include "patterns/misuse.h"

#define DEFAULT_FAILURES 5
#define DEFAULT_OPEN_MS 10000
#define MAX_WINDOW_FAILURES 65536
/* Marks a ticket waiting to be recorded ("knit" in ASCII). */
#define TICKET_LIVE UINT32_C(0x6b6e6974)

struct knit_breaker {
    knit_breaker_opts o;      /* the options, defaults filled in */
    knit_breaker_state state; /* now, as of the last refresh */
    uint64_t epoch;           /* bumped by every change of state */
    int64_t since;            /* knit_now() of the last change */
    int64_t open_until;       /* open: when the cool-down ends */
    unsigned consecutive;     /* closed, no window: failures in a row */
    unsigned ring_len;        /* closed, window: failure times kept */
    unsigned ring_next;       /* closed, window: the slot to write next */
    unsigned trials;          /* half-open: trials in flight */
    unsigned successes;       /* half-open: successful trials */
    unsigned in_flight;       /* tickets granted and not recorded */
    knit_breaker_stats n;     /* the cumulative counters */
    knit__pspin lk;           /* guards every field but o */
    int64_t ring[];           /* window: failure_threshold failure times */
};

/* knit_breaker_ticket's layout. */
struct ticket {
    uint64_t epoch; /* of the state the call was let through in */
    uint32_t live;  /* TICKET_LIVE until recorded */
};

_Static_assert(sizeof(knit_breaker_ticket) >= sizeof(struct ticket),
               "grow knit_breaker_ticket");

static inline struct ticket *timpl(knit_breaker_ticket *t)
{
    return (struct ticket *)(void *)t;
}

/* ---- the state machine ------------------------------------------------- */

/* A change of state made under the lock, reported after it (report). */
struct change {
    bool made;
    knit_breaker_state from, to;
};

static void report(const knit_breaker *b, const struct change *ch)
{
    if (ch->made && b->o.on_change)
        b->o.on_change(b->o.arg, ch->from, ch->to);
}

/* Called with b->lk held; @ch is reported once it is dropped. */
static void set_state(knit_breaker *b, knit_breaker_state to, int64_t now,
                      struct change *ch)
{
    knit_breaker_state from = b->state;
    b->state = to;
    b->epoch++;
    b->since = now;
    b->consecutive = 0;
    b->ring_len = 0;
    b->ring_next = 0;
    b->trials = 0;
    b->successes = 0;
    b->open_until = 0;
    if (to == KNIT_BREAKER_OPEN) {
        b->open_until = now + b->o.open_ms;
        b->n.opened++;
    }
    /* At most one change per call: a refresh that changes the state
     * bumps the epoch, so a record's ticket is then ignored. */
    *ch = (struct change){true, from, to};
}

/* Makes the timed move: open to half-open once the cool-down is over. */
static void refresh(knit_breaker *b, int64_t now, struct change *ch)
{
    if (b->state == KNIT_BREAKER_OPEN && now >= b->open_until)
        set_state(b, KNIT_BREAKER_HALF_OPEN, now, ch);
}

/* Counts a failure in the closed state; true when the threshold is
 * reached. */
static bool count_failure(knit_breaker *b, int64_t now)
{
    unsigned n = b->o.failure_threshold;
    if (b->o.window_ms <= 0)
        return ++b->consecutive >= n;
    b->ring[b->ring_next] = now;
    b->ring_next = (b->ring_next + 1) % n;
    if (b->ring_len < n)
        b->ring_len++;
    /* Full, the next slot to write holds the oldest of the last n. */
    return b->ring_len == n && now - b->ring[b->ring_next] < b->o.window_ms;
}

/* The failures that count toward the threshold now. */
static unsigned failures_now(const knit_breaker *b, int64_t now)
{
    if (b->state != KNIT_BREAKER_CLOSED)
        return 0;
    if (b->o.window_ms <= 0)
        return b->consecutive;
    unsigned n = 0;
    for (unsigned i = 0; i < b->ring_len; i++)
        n += now - b->ring[i] < b->o.window_ms;
    return n;
}

enum outcome { SUCCESS, FAILURE, IGNORED };

static enum outcome classify(const knit_breaker *b, int result)
{
    if (result >= 0)
        return SUCCESS;
    if (result == -ECANCELED)
        return IGNORED;
    if (b->o.is_failure && !b->o.is_failure(result, b->o.arg))
        return SUCCESS;
    return FAILURE;
}

/* ---- life cycle -------------------------------------------------------- */

knit_breaker *knit_breaker_new(const knit_breaker_opts *o)
{
    knit_breaker_opts d = {0};
    if (o)
        d = *o;
    if (d.failure_threshold == 0)
        d.failure_threshold = DEFAULT_FAILURES;
    if (d.open_ms <= 0)
        d.open_ms = DEFAULT_OPEN_MS;
    if (d.half_open_max == 0)
        d.half_open_max = 1;
    if (d.success_threshold == 0)
        d.success_threshold = 1;
    if (d.window_ms < 0)
        d.window_ms = 0;
    size_t ring = 0;
    if (d.window_ms > 0) {
        if (d.failure_threshold > MAX_WINDOW_FAILURES)
            return NULL;
        ring = d.failure_threshold;
    }
    knit_breaker *b = calloc(1, sizeof(*b) + ring * sizeof(b->ring[0]));
    if (!b)
        return NULL;
    b->o = d;
    b->state = KNIT_BREAKER_CLOSED;
    return b;
}

void knit_breaker_free(knit_breaker *b)
{
    if (!b)
        return;
    knit__pspin_lock(&b->lk);
    unsigned in_flight = b->in_flight;
    knit__pspin_unlock(&b->lk);
    if (in_flight)
        knit__pattern_misuse(
            "knit_breaker_free: a call let through was not recorded");
    free(b);
}

/* ---- tickets ----------------------------------------------------------- */

int knit_breaker_allow(knit_breaker *b, knit_breaker_ticket *t)
{
    if (!b || !t)
        return -EINVAL;
    struct ticket *x = timpl(t);
    x->live = 0;
    struct change ch = {0};
    int64_t now = knit_now();
    int err = 0;
    knit__pspin_lock(&b->lk);
    refresh(b, now, &ch);
    if (b->state == KNIT_BREAKER_OPEN || (b->state == KNIT_BREAKER_HALF_OPEN &&
                                          b->trials >= b->o.half_open_max)) {
        b->n.rejected++;
        err = -EBUSY;
    } else {
        if (b->state == KNIT_BREAKER_HALF_OPEN)
            b->trials++;
        b->in_flight++;
        b->n.allowed++;
        x->epoch = b->epoch;
        x->live = TICKET_LIVE;
    }
    knit__pspin_unlock(&b->lk);
    report(b, &ch);
    return err;
}

void knit_breaker_record(knit_breaker *b, knit_breaker_ticket *t, int result)
{
    struct ticket *x = t ? timpl(t) : NULL;
    if (!b || !x || x->live != TICKET_LIVE)
        knit__pattern_misuse(
            "knit_breaker_record: not a ticket of this breaker waiting "
            "to be recorded (recorded twice?)");
    /* Before the lock: is_failure is the user's. */
    enum outcome outcome = classify(b, result);
    struct change ch = {0};
    int64_t now = knit_now();
    knit__pspin_lock(&b->lk);
    if (b->in_flight == 0) {
        knit__pspin_unlock(&b->lk);
        knit__pattern_misuse(
            "knit_breaker_record: not a ticket of this breaker waiting "
            "to be recorded (recorded twice?)");
    }
    x->live = 0;
    b->in_flight--;
    refresh(b, now, &ch);
    if (x->epoch != b->epoch) {
        b->n.ignored++; /* let through before the last change */
        knit__pspin_unlock(&b->lk);
        report(b, &ch);
        return;
    }
    if (b->state == KNIT_BREAKER_HALF_OPEN)
        b->trials--;
    switch (outcome) {
    case IGNORED:
        b->n.ignored++;
        break;
    case SUCCESS:
        b->n.succeeded++;
        if (b->state == KNIT_BREAKER_CLOSED)
            b->consecutive = 0;
        else if (++b->successes >= b->o.success_threshold)
            set_state(b, KNIT_BREAKER_CLOSED, now, &ch);
        break;
    case FAILURE:
        b->n.failed++;
        if (b->state == KNIT_BREAKER_HALF_OPEN || count_failure(b, now))
            set_state(b, KNIT_BREAKER_OPEN, now, &ch);
        break;
    }
    knit__pspin_unlock(&b->lk);
    report(b, &ch);
}

int knit_breaker_call(knit_breaker *b, knit_fn fn, void *arg)
{
    if (!b || !fn)
        return -EINVAL;
    knit_breaker_ticket t;
    int err = knit_breaker_allow(b, &t);
    if (err < 0)
        return err;
    int r = fn(arg);
    knit_breaker_record(b, &t, r);
    return r;
}

/* ---- queries and switches ---------------------------------------------- */

knit_breaker_state knit_breaker_state_get(knit_breaker *b)
{
    struct change ch = {0};
    int64_t now = knit_now();
    knit__pspin_lock(&b->lk);
    refresh(b, now, &ch);
    knit_breaker_state st = b->state;
    knit__pspin_unlock(&b->lk);
    report(b, &ch);
    return st;
}

const char *knit_breaker_state_name(knit_breaker_state s)
{
    switch (s) {
    case KNIT_BREAKER_CLOSED:
        return "closed";
    case KNIT_BREAKER_OPEN:
        return "open";
    case KNIT_BREAKER_HALF_OPEN:
        return "half-open";
    }
    return "?";
}

void knit_breaker_trip(knit_breaker *b)
{
    int64_t now = knit_now();
    struct change ch = {0};
    knit__pspin_lock(&b->lk);
    if (b->state == KNIT_BREAKER_OPEN)
        b->open_until = now + b->o.open_ms;
    else
        set_state(b, KNIT_BREAKER_OPEN, now, &ch);
    knit__pspin_unlock(&b->lk);
    report(b, &ch);
}

void knit_breaker_reset(knit_breaker *b)
{
    int64_t now = knit_now();
    struct change ch = {0};
    knit__pspin_lock(&b->lk);
    if (b->state == KNIT_BREAKER_CLOSED) {
        b->consecutive = 0; /* the epoch stays: calls in flight count */
        b->ring_len = 0;
        b->ring_next = 0;
    } else {
        set_state(b, KNIT_BREAKER_CLOSED, now, &ch);
    }
    knit__pspin_unlock(&b->lk);
    report(b, &ch);
}

void knit_breaker_stats_get(knit_breaker *b, knit_breaker_stats *out)
{
    int64_t now = knit_now();
    struct change ch = {0};
    knit__pspin_lock(&b->lk);
    refresh(b, now, &ch);
    *out = b->n;
    out->state = b->state;
    out->since = b->since;
    out->open_until = b->open_until;
    out->failures = failures_now(b, now);
    out->successes = b->successes;
    out->in_flight = b->in_flight;
    knit__pspin_unlock(&b->lk);
    report(b, &ch);
}
