// SPDX-License-Identifier: MIT
/*
 * Backpressure with a bounded channel (tokio's mpsc::channel(BUFFER_SIZE)).
 *
 * A fast producer sends ten numbers into a channel that buffers five; a
 * slow consumer takes one every 100 ms. The producer fills the buffer at
 * once, then knit_chan_send parks it until the consumer frees a slot, so
 * it runs at the consumer's pace: the "sent" times show it held back. The
 * producer is registered with knit_chan_sender_add; its
 * knit_chan_sender_done closes the channel, and the consumer drains what is
 * buffered before knit_chan_recv returns -EPIPE and its loop ends.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

#define BUFFER_SIZE 5
#define ITEMS 10
#define CONSUME_MS 100 /* the consumer's time per item */

static long long now(void)
{
    return (long long)knit_now();
}

static int produce(void *arg)
{
    knit_chan *c = arg;
    int err = 0;
    for (int i = 0; i < ITEMS; i++) {
        err = knit_chan_send(c, &i);
        if (err < 0) { /* -EPIPE: the consumer closed; i was not sent */
            printf("t=%lldms producer: send %d: %s\n", now(), i,
                   strerror(-err));
            break;
        }
        printf("t=%lldms producer: sent %d (%zu buffered)\n", now(), i,
               knit_chan_len(c));
    }
    knit_chan_sender_done(c); /* the last producer closes the channel */
    return err;
}

/* Receives until the channel is closed and drained; -EPROTO on a gap. */
static int consume(knit_chan *c)
{
    int want = 0;
    int v;
    int err;
    while ((err = knit_chan_recv(c, &v)) == 0) {
        printf("t=%lldms consumer: received %d\n", now(), v);
        if (v != want++) {
            fprintf(stderr, "producer_consumer: got %d, expected %d\n", v,
                    want - 1);
            return -EPROTO;
        }
        if ((err = knit_sleep(CONSUME_MS)) < 0) /* slow work */
            return err;
    }
    if (err != -EPIPE)
        return err;
    printf("t=%lldms consumer: closed and drained after %d items\n", now(),
           want);
    return want == ITEMS ? 0 : -EPROTO;
}

static int run(void *arg)
{
    (void)arg;
    knit_chan *c = knit_chan_new(sizeof(int), BUFFER_SIZE);
    if (!c) {
        fprintf(stderr, "producer_consumer: knit_chan_new: out of memory\n");
        return -ENOMEM;
    }
    /* Register before spawning, so the count cannot reach 0 early. */
    knit_chan_sender_add(c);
    knit_task *p = knit_spawn(produce, c);
    if (!p) {
        fprintf(stderr, "producer_consumer: knit_spawn: out of memory\n");
        knit_chan_sender_done(c);
        knit_chan_unref(c);
        return -ENOMEM;
    }
    int err = consume(c);
    if (err < 0) {
        fprintf(stderr, "producer_consumer: consume: %s\n", strerror(-err));
        knit_chan_close(c); /* unblock the producer: its send gets -EPIPE */
    }
    int perr = knit_join(p);
    if (perr < 0 && err == 0) {
        fprintf(stderr, "producer_consumer: producer: %s\n", strerror(-perr));
        err = perr;
    }
    knit_chan_unref(c);
    return err;
}

int main(void)
{
    knit_config cfg;
    knit_config_default(&cfg);
    cfg.clock = KNIT_CLOCK_MANUAL; /* sleeps are instant and exact */
    cfg.workers = 1;
    cfg.seed = 1;
    int err = knit_run(&cfg, run, NULL);
    if (err < 0) {
        fprintf(stderr, "producer_consumer: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
