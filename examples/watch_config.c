// SPDX-License-Identifier: MIT
/*
 * Configuration reload with a watch channel (tokio's sync::watch).
 *
 * The watch starts with config v1; a reloader task publishes v2, v3 and v4
 * with knit_watch_send, then closes the watch. Two readers wait with
 * knit_watch_changed and take the value with knit_watch_borrow. Reader "fast"
 * sees every version. Reader "busy" spends 150 ms applying each config;
 * versions published meanwhile replace one another, and when it looks again it
 * sees only the latest (v4, never v3). A watch keeps a value, not a queue: it
 * is for state where only the newest counts. Once closed, knit_watch_changed
 * returns -EPIPE.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

struct config {
    int rate;
    char name[16];
};

struct reader {
    const char *name;
    int64_t apply_ms;   /* time spent applying each config */
    knit_watch_rx *rx;  /* subscribed by main */
    int seen;           /* out: configs it borrowed */
    struct config last; /* out: the last one */
};

/* When the reloader publishes, and what. */
static const struct {
    int64_t at;
    struct config cfg;
} updates[] = {{100, {20, "v2"}}, {200, {30, "v3"}}, {210, {40, "v4"}}};
enum { NUPDATES = sizeof(updates) / sizeof(updates[0]) };

static long long now(void)
{
    return (long long)knit_now();
}

static int reloader(void *arg)
{
    knit_watch *w = arg;
    int err = 0;
    for (int i = 0; i < NUPDATES && err == 0; i++) {
        if ((err = knit_sleep_until(updates[i].at)) < 0)
            break;
        printf("t=%lldms reloader: publish %s\n", now(), updates[i].cfg.name);
        err = knit_watch_send(w, &updates[i].cfg);
    }
    knit_watch_close(w); /* readers get -EPIPE once they have seen it all */
    return err;
}

static int read_config(void *arg)
{
    struct reader *r = arg;
    int err;
    knit_watch_borrow(r->rx, &r->last); /* the value at subscription */
    do {
        r->seen++;
        printf("t=%lldms %s: rate=%d name=%s\n", now(), r->name, r->last.rate,
               r->last.name);
        if ((err = knit_sleep(r->apply_ms)) < 0) /* apply it */
            return err;
        if ((err = knit_watch_changed(r->rx)) == 0)
            knit_watch_borrow(r->rx, &r->last); /* the newest, marked seen */
    } while (err == 0);
    if (err != -EPIPE)
        return err;
    printf("t=%lldms %s: watch closed\n", now(), r->name);
    return 0;
}

/* Runs both readers and the reloader in a group until all have ended. */
static int run_all(knit_watch *w, struct reader *rs, int n)
{
    knit_group g;
    knit_group_init(&g, 0);
    int err = 0;
    for (int i = 0; i < n && err == 0; i++)
        err = knit_group_spawn(&g, read_config, &rs[i]);
    if (err == 0)
        err = knit_group_spawn(&g, reloader, w);
    if (err < 0)
        knit_group_cancel(&g);
    int gerr = knit_group_wait(&g);
    return err < 0 ? err : gerr;
}

static int run(void *arg)
{
    (void)arg;
    struct config initial = {10, "v1"};
    struct reader rs[] = {{"fast", 0, NULL, 0, {0, ""}},
                          {"busy", 150, NULL, 0, {0, ""}}};
    knit_watch *w = knit_watch_new(sizeof(struct config), &initial);
    if (!w)
        return -ENOMEM;
    int err = 0;
    for (int i = 0; i < 2 && err == 0; i++)
        if (!(rs[i].rx = knit_watch_subscribe(w)))
            err = -ENOMEM;
    if (err == 0 && (err = run_all(w, rs, 2)) == 0) {
        printf("fast saw %d configs, busy saw %d\n", rs[0].seen, rs[1].seen);
        if (rs[0].seen != 4 || rs[1].seen != 3 || rs[1].last.rate != 40)
            err = -EPROTO;
    }
    for (int i = 0; i < 2; i++)
        if (rs[i].rx)
            knit_watch_rx_free(rs[i].rx); /* every receiver first */
    knit_watch_free(w);
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
        fprintf(stderr, "watch_config: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
