// SPDX-License-Identifier: MIT
/*
 * One-shot channels (knit/chan.h): a capacity-1 knit_chan with two
 * references, one per side. Whichever side drops its reference first ends
 * the conversation by closing the channel: a receiver still waiting then
 * gets -EPIPE (the sender gave up), a later send gets -EPIPE (nobody will
 * read it), and a value sent before the sender left is still delivered.
 * Each operation runs whole under the runtime lock, as the channel's own.
 */
#include <errno.h>

#include "chan/chan_impl.h"
#include "core/sched.h"

struct knit_oneshot {
    struct knit_chan c; /* the whole state */
};

static inline knit_chan *chan(knit_oneshot *o)
{
    return &o->c;
}

knit_oneshot *knit_oneshot_new(size_t elem_size)
{
    knit_chan *c = knit__chan_alloc(elem_size, 1);
    if (!c)
        return NULL;
    atomic_store(&c->refs, 2);
    return (knit_oneshot *)(void *)c;
}

void knit_oneshot_unref(knit_oneshot *o)
{
    KNIT_LOCKED_VOID(knit__chan_close(chan(o)));
    knit_chan_unref(chan(o));
}

static int oneshot_send(knit_chan *c, const void *elem)
{
    if (c->oneshot_sent)
        return -EALREADY;
    int err = knit__chan_try_send(c, elem);
    if (err)
        return err; /* -EPIPE: the receiver is gone */
    c->oneshot_sent = true;
    return 0;
}

int knit_oneshot_send(knit_oneshot *o, const void *elem)
{
    return KNIT_LOCKED(oneshot_send(chan(o), elem));
}

static int oneshot_recv(knit_chan *c, void *elem)
{
    int err = knit__chan_recv(c, elem);
    if (err == 0)
        knit__chan_close(c); /* there is never a second value */
    return err;
}

int knit_oneshot_recv(knit_oneshot *o, void *elem)
{
    return KNIT_LOCKED(oneshot_recv(chan(o), elem));
}
