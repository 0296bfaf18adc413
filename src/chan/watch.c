// SPDX-License-Identifier: MIT
/*
 * Watch channels (knit/chan.h): one value and a version number that
 * counts its replacements. A receiver remembers the version it last
 * borrowed; knit_watch_changed waits on one knit_waiter list until the
 * version moves past it.
 *
 * Threading: the public operations run under the runtime lock (core/
 * sched.h; a no-op with one worker).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/sched.h"
#include "knit/chan.h"

struct knit_watch {
    size_t elem_size;       /* bytes of the value */
    void *value;            /* the latest value */
    uint64_t version;       /* replacements so far */
    struct knit_list waitq; /* receivers waiting for a change */
    size_t nrx;             /* live receivers */
    bool closed;
};

struct knit_watch_rx {
    knit_watch *w;
    uint64_t seen; /* version of the value last borrowed */
};

knit_watch *knit_watch_new(size_t elem_size, const void *initial)
{
    if (!elem_size)
        return NULL;
    knit_watch *w = knit__calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->value = knit__malloc(elem_size);
    if (!w->value) {
        free(w);
        return NULL;
    }
    memcpy(w->value, initial, elem_size);
    w->elem_size = elem_size;
    knit_list_init(&w->waitq);
    return w;
}

void knit_watch_free(knit_watch *w)
{
    /* Locked: the last rx_free may have run on another worker. */
    size_t nrx = KNIT_LOCKED(w->nrx);
    if (nrx)
        knit__panic("knit_watch_free with %zu receivers alive", nrx);
    free(w->value);
    free(w);
}

static int watch_send(knit_watch *w, const void *elem)
{
    if (w->closed)
        return -EPIPE;
    memcpy(w->value, elem, w->elem_size);
    w->version++;
    knit__wq_wake_all(&w->waitq, 0);
    return 0;
}

int knit_watch_send(knit_watch *w, const void *elem)
{
    return KNIT_LOCKED(watch_send(w, elem));
}

static void watch_close(knit_watch *w)
{
    w->closed = true;
    knit__wq_wake_all(&w->waitq, 0);
}

void knit_watch_close(knit_watch *w)
{
    KNIT_LOCKED_VOID(watch_close(w));
}

static void subscribe(knit_watch *w, knit_watch_rx *rx)
{
    rx->w = w;
    rx->seen = w->version;
    w->nrx++;
}

knit_watch_rx *knit_watch_subscribe(knit_watch *w)
{
    knit_watch_rx *rx = knit__malloc(sizeof(*rx));
    if (!rx)
        return NULL;
    KNIT_LOCKED_VOID(subscribe(w, rx));
    return rx;
}

void knit_watch_rx_free(knit_watch_rx *rx)
{
    KNIT_LOCKED_VOID(rx->w->nrx--);
    free(rx);
}

static void borrow(knit_watch_rx *rx, void *elem)
{
    memcpy(elem, rx->w->value, rx->w->elem_size);
    rx->seen = rx->w->version;
}

void knit_watch_borrow(knit_watch_rx *rx, void *elem)
{
    KNIT_LOCKED_VOID(borrow(rx, elem));
}

static int watch_changed(knit_watch_rx *rx)
{
    knit_watch *w = rx->w;
    struct knit_task *t = knit__task();
    if (!t)
        knit__panic("knit_watch_changed called outside a task");
    for (;;) {
        int err = knit__scope_err(t);
        if (err)
            return err;
        if (rx->seen != w->version)
            return 0;
        if (w->closed)
            return -EPIPE;
        struct knit_waiter wt;
        knit__waiter_init(&wt, "watch changed", w, knit__waiter_unlink);
        knit_list_push_back(&w->waitq, &wt.link);
        err = knit__wait(&wt);
        if (err)
            return err;
    }
}

int knit_watch_changed(knit_watch_rx *rx)
{
    return KNIT_LOCKED(watch_changed(rx));
}
