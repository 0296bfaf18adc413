// SPDX-License-Identifier: MIT
/*
 * A connection state machine: Disconnected -> Connecting -> Connected, or
 * Failed once the retries are used up; every transition is printed. Each
 * attempt is a simulated dial under knit_timeout: the first is refused, the
 * second hangs until its timeout, the third succeeds (connection A) unless
 * the tries are used up first (B). Between attempts the task sleeps,
 * doubling the delay. A caller arriving while A is Connecting gets
 * -EALREADY instead of starting a second dial; Failed keeps its error.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

enum conn_state { DISCONNECTED, CONNECTING, CONNECTED, FAILED };
static const char *const state_names[] = {"Disconnected", "Connecting",
                                          "Connected", "Failed"};

struct conn {
    const char *name;      /* printed */
    enum conn_state state; /* where it is */
    int err;               /* why it failed, when FAILED */
    int attempts;          /* dials made */
    int max_attempts;      /* give up after this many */
};

static long long now(void)
{
    return (long long)knit_now();
}

/* The errno names this program prints. */
static const char *errname(int err)
{
    return err == 0               ? "0"
           : err == -ECONNREFUSED ? "-ECONNREFUSED"
           : err == -ETIMEDOUT    ? "-ETIMEDOUT"
           : err == -EALREADY     ? "-EALREADY"
                                  : strerror(-err);
}

static void set_state(struct conn *c, enum conn_state s)
{
    printf("t=%lldms %s: %s -> %s\n", now(), c->name, state_names[c->state],
           state_names[s]);
    c->state = s;
}

/* The simulated network: dial 1 is refused, dial 2 hangs, 3 works. */
static int dial(void *arg)
{
    const struct conn *c = arg;
    if (c->attempts >= 3)
        return knit_sleep(30); /* the handshake */
    if (c->attempts == 1) {
        int err = knit_sleep(20);
        return err < 0 ? err : -ECONNREFUSED;
    }
    return knit_sleep(1000); /* no answer: the timeout cuts it short */
}

/* Connects @arg (a struct conn); also usable as a task body. */
static int conn_connect(void *arg)
{
    struct conn *c = arg;
    switch (c->state) {
    case CONNECTED:
        return 0;
    case CONNECTING:
        return -EALREADY;
    case FAILED:
        return c->err;
    case DISCONNECTED:
        break;
    }
    set_state(c, CONNECTING);
    for (int64_t backoff = 100;; backoff *= 2) {
        c->attempts++;
        int err = knit_timeout(100, dial, c);
        printf("t=%lldms %s: dial %d -> %s\n", now(), c->name, c->attempts,
               errname(err));
        if (err == 0) {
            set_state(c, CONNECTED);
            return 0;
        }
        /* Cancelled (or out of tries): stop; else wait and try again. */
        if (err == -ECANCELED || c->attempts == c->max_attempts ||
            (err = knit_sleep(backoff)) < 0) {
            c->err = err;
            set_state(c, FAILED);
            return err;
        }
    }
}

static int run(void *arg)
{
    (void)arg;
    struct conn a = {"A", DISCONNECTED, 0, 0, 4};
    struct conn b = {"B", DISCONNECTED, 0, 0, 2};

    knit_task *t = knit_spawn(conn_connect, &a);
    if (!t)
        return -ENOMEM;
    int err = knit_sleep(50); /* A's first dial is under way */
    if (err < 0)
        return err;
    int busy = conn_connect(&a);
    printf("t=%lldms main: connect(A) while Connecting -> %s\n", now(),
           errname(busy));
    int ra = knit_join(t);
    int again = conn_connect(&a);
    printf("t=%lldms main: A connected (%s), connect(A) again -> %s\n", now(),
           errname(ra), errname(again));
    set_state(&a, DISCONNECTED); /* a real one would close its socket */

    int rb = conn_connect(&b);
    int rb2 = conn_connect(&b);
    printf("t=%lldms main: connect(B) -> %s, again -> %s\n", now(), errname(rb),
           errname(rb2));

    if (busy != -EALREADY || ra || again || rb != -ETIMEDOUT || rb2 != rb) {
        fprintf(stderr, "conn_state_machine: unexpected result\n");
        return -EPROTO;
    }
    return 0;
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
        fprintf(stderr, "conn_state_machine: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
