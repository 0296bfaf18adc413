// SPDX-License-Identifier: MIT
/*
 * A cache actor (knit/patterns/actor.h), tutorial 004's Get/Set actor.
 * One task owns a key-value map; nobody else touches it, so it needs no
 * lock. Clients send commands: SET is a tell (fire and forget: it waits
 * only for room in the mailbox), GET is an ask (it waits for the answer,
 * within the client's deadline), SNAPSHOT is a slow tell that keeps the
 * cache busy for 50 ms.
 *
 * The story: a writer and a reader share the cache; a GET with a 20 ms
 * budget gives up while the cache is busy with the snapshot (the cache
 * still answers it later, and that answer is dropped safely); when the
 * last handle is dropped the cache handles what is queued, stops, and
 * frees its map in on_stop.
 *
 * Runs on the manual clock, so every printed time is exact.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>

/* ---- the actor's side ---------------------------------------------------- */

enum op { GET, SET, SNAPSHOT };

struct cmd {
    enum op op;
    char key[16];
    int value; /* SET */
};

struct answer {
    bool found; /* GET: Option<Value> */
    int value;
};

struct entry {
    struct entry *next;
    char key[16];
    int value;
};

struct cache {
    struct entry *head; /* owned by the actor alone */
    int size;
};

static long long now(void)
{
    return (long long)knit_now();
}

static struct entry *find(struct cache *c, const char *key)
{
    for (struct entry *e = c->head; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* One command at a time, in the order they were sent. */
static int handle(void *state, void *msg, void *reply)
{
    struct cache *c = state;
    struct cmd *m = msg;
    switch (m->op) {
    case SET: {
        struct entry *e = find(c, m->key);
        if (!e) {
            if (!(e = calloc(1, sizeof(*e))))
                return -ENOMEM; /* a failure stops the actor */
            memcpy(e->key, m->key, sizeof(e->key));
            e->next = c->head;
            c->head = e;
            c->size++;
        }
        e->value = m->value;
        return 0;
    }
    case GET: {
        struct answer *a = reply;
        struct entry *e = find(c, m->key);
        printf("t=%lldms cache: get %s\n", now(), m->key);
        a->found = e != NULL;
        a->value = e ? e->value : 0;
        return 0;
    }
    case SNAPSHOT: {
        int err = knit_sleep(50); /* writing it out takes a while */
        if (err < 0)
            return err;
        printf("t=%lldms cache: snapshot of %d entries written\n", now(),
               c->size);
        return 0;
    }
    }
    return -EINVAL;
}

/* The actor has ended: free what it owned. */
static void stopped(void *state, int result)
{
    struct cache *c = state;
    int n = 0;
    while (c->head) {
        struct entry *e = c->head;
        c->head = e->next;
        free(e);
        n++;
    }
    printf("t=%lldms cache: stopped (result %d), %d entries freed\n", now(),
           result, n);
}

/* ---- the clients' side --------------------------------------------------- */

static int set(knit_actor *a, const char *key, int value)
{
    struct cmd m = {.op = SET, .value = value};
    snprintf(m.key, sizeof(m.key), "%s", key);
    return knit_actor_tell(a, &m);
}

/* GET within @budget_ms; prints what came back. */
static int get(knit_actor *a, const char *who, const char *key,
               int64_t budget_ms)
{
    struct cmd m = {.op = GET};
    snprintf(m.key, sizeof(m.key), "%s", key);
    struct answer ans;
    knit_scope s;
    knit_scope_enter(&s, budget_ms < 0 ? KNIT_FOREVER : knit_now() + budget_ms);
    int err = knit_actor_ask(a, &m, &ans);
    knit_scope_exit(&s);
    if (err == -ETIMEDOUT)
        printf("t=%lldms %s: get %s -> gave up after %lldms\n", now(), who, key,
               (long long)budget_ms);
    else if (err < 0)
        printf("t=%lldms %s: get %s -> %s\n", now(), who, key, strerror(-err));
    else if (!ans.found)
        printf("t=%lldms %s: get %s -> not found\n", now(), who, key);
    else
        printf("t=%lldms %s: get %s -> %d\n", now(), who, key, ans.value);
    return err == -ETIMEDOUT ? 0 : err;
}

static int writer(void *arg)
{
    knit_actor *a = arg;
    int err = 0;
    for (int i = 1; i <= 3 && err == 0; i++) {
        char key[16];
        snprintf(key, sizeof(key), "user:%d", i);
        err = set(a, key, i * 100);
        if (err == 0)
            printf("t=%lldms writer: set %s = %d (told, not waiting)\n", now(),
                   key, i * 100);
    }
    if (err == 0 && (err = knit_sleep(5)) == 0) {
        err = knit_actor_tell(a, &(struct cmd){.op = SNAPSHOT});
        if (err == 0)
            printf("t=%lldms writer: snapshot requested\n", now());
    }
    knit_actor_unref(a); /* this client's handle */
    return err;
}

static int reader(void *arg)
{
    knit_actor *a = arg;
    int err = get(a, "reader", "user:1", KNIT_FOREVER);
    if (err == 0)
        err = get(a, "reader", "user:9", KNIT_FOREVER);
    if (err == 0 && (err = knit_sleep(10)) == 0)
        err = get(a, "reader", "user:2", 20); /* the cache is busy */
    if (err == 0)
        err = get(a, "reader", "user:3", KNIT_FOREVER);
    knit_actor_unref(a);
    return err;
}

static int run(void *arg)
{
    (void)arg;
    static struct cache cache; /* the actor's state from now on */
    knit_actor_opts o = {.name = "cache",
                         .msg_size = sizeof(struct cmd),
                         .reply_size = sizeof(struct answer),
                         .capacity = 8,
                         .on_stop = stopped};
    knit_actor *a = knit_actor_spawn(&o, handle, &cache);
    if (!a)
        return -ENOMEM;
    knit_group g;
    knit_group_init(&g, 0);
    /* Each client gets its own handle and drops it when done. */
    int err = knit_group_spawn(&g, writer, knit_actor_ref(a));
    if (err < 0)
        knit_actor_unref(a);
    else if ((err = knit_group_spawn(&g, reader, knit_actor_ref(a))) < 0)
        knit_actor_unref(a);
    /* main's handle goes too; the cache lives on while the clients hold
     * theirs, and stops once the last one is dropped and the queue is
     * drained. */
    knit_actor_unref(a);
    int gerr = knit_group_wait(&g);
    printf("t=%lldms main: clients done\n", now());
    return err < 0 ? err : gerr;
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
        fprintf(stderr, "actor_cache: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
