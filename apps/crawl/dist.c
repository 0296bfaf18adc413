// SPDX-License-Identifier: MIT
/*
 * The distributed crawl's side of Redis (dist.h): joining a crawl, adding
 * URLs, taking entries (new and reclaimed), acking them, the shared rate
 * limit, the finished test and the heartbeat that keeps this process's
 * entries from being reclaimed while it works on them.
 *
 * Two connections: one for XREADGROUP BLOCK, which holds its connection's
 * pipeline while it waits, and one shared by every other call (fetch
 * tasks pipeline their commands on it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <knit.h>
#include <knit/patterns.h>
#include <knit/redis.h>

#include "dist.h"
#include "dist_lua.h"
#include "strmap.h"

enum {
    ATTEMPT_MS = 10000,  /* one command, before it counts as a failure */
    GIVE_UP_MS = 60000,  /* Redis unreachable this long: the call fails */
    BLOCK_MS = 300,      /* XREADGROUP's wait for new entries */
    KEY_MAX = 128,
    ID_MAX = 48,         /* "ms-seq": 20 + 1 + 20 digits */
};

#define GROUP "crawlers"

struct dist {
    struct dist_opts o;
    char consumer[128];
    knit_redis *cmd;          /* everything but XREADGROUP BLOCK */
    knit_redis *blk;          /* XREADGROUP BLOCK */
    char frontier[KEY_MAX], seen[KEY_MAX], stats[KEY_MAX], pages[KEY_MAX];
    char meta[KEY_MAX], rate_prefix[KEY_MAX];
    char cursor[ID_MAX];      /* XAUTOCLAIM's, "0-0" to start over */
    int64_t next_reclaim;     /* no XAUTOCLAIM before */
    struct strmap held;       /* ids taken: (void *)1 while held, NULL once
                                 acked */
    knit_task *heart;         /* dist_heartbeat's task */
    uint64_t reclaimed;
    bool down;                /* Redis reported unreachable */
};

static const knit_backoff_policy retry_policy = {
    .initial_ms = 100, .max_ms = 2000, .jitter = KNIT_JITTER_DECORRELATED};

int dist_check_id(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > 64)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!(id[i] >= 'a' && id[i] <= 'z') && !(id[i] >= 'A' && id[i] <= 'Z') &&
            !(id[i] >= '0' && id[i] <= '9') && !strchr("._-", id[i]))
            return -EINVAL;
    return 0;
}

/* The keys of crawl @id (dist.h); {id} is the cluster hash tag. */
static void make_keys(struct dist *d, const char *id)
{
    snprintf(d->frontier, KEY_MAX, "kc:{%s}:frontier", id);
    snprintf(d->seen, KEY_MAX, "kc:{%s}:seen", id);
    snprintf(d->stats, KEY_MAX, "kc:{%s}:stats", id);
    snprintf(d->pages, KEY_MAX, "kc:{%s}:pages", id);
    snprintf(d->meta, KEY_MAX, "kc:{%s}:meta", id);
    snprintf(d->rate_prefix, KEY_MAX, "kc:{%s}:rate:", id);
}

/*
 * Run one command on @conn, retrying over a lost connection (and over a
 * command that takes ATTEMPT_MS) until it works, the caller's scope ends,
 * or Redis stays unreachable for GIVE_UP_MS. Redis errors are returned
 * (-EPROTO, with the reply in *@out when @out is not NULL).
 */
static int call(struct dist *d, knit_redis *conn, knit_redis_reply **out,
                int argc, const char *const *argv)
{
    knit_backoff b;
    knit_backoff_init(&b, &retry_policy);
    int64_t give_up = knit_now() + GIVE_UP_MS;
    for (;;) {
        knit_redis_reply *rep = NULL;
        knit_scope sc;
        knit_scope_enter(&sc, knit_now() + ATTEMPT_MS);
        int err = knit_redis_command_argv(conn, &rep, argc, argv, NULL);
        int fired = knit_scope_exit(&sc);
        /* A restarted Redis answers LOADING until its data is back. */
        bool loading = err == -EPROTO && rep && rep->str &&
                       strncmp(rep->str, "LOADING", 7) == 0;
        bool transient = err == -ECONNRESET || err == -ECONNREFUSED ||
                         loading || (err == -ETIMEDOUT && fired == -ETIMEDOUT);
        if (out)
            *out = transient ? NULL : rep;
        if (!out || transient)
            knit_redis_reply_free(rep);
        if (!transient) {
            if (err == 0 && d->down) {
                fprintf(d->o.log, "knit-crawl: redis: connected again\n");
                d->down = false;
            }
            return err;
        }
        if (!d->down)
            fprintf(d->o.log, "knit-crawl: redis: %s; retrying\n",
                    loading ? "loading its data" : strerror(-err));
        d->down = true;
        if (knit_now() >= give_up)
            return err;
        if (knit_sleep(knit_backoff_next(&b, 0)) < 0)
            return -ECANCELED;
    }
}

/* EVAL @script with @nkeys keys then arguments (argv[0..n) after EVAL,
 * script and numkeys); the integer result, or a negative errno. */
static long long eval(struct dist *d, const char *script, int nkeys,
                      const char *const *args, int nargs)
{
    const char **argv = malloc(sizeof(char *) * (size_t)(nargs + 3));
    char nk[16];
    if (!argv)
        return -ENOMEM;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[0] = "EVAL";
    argv[1] = script;
    argv[2] = nk;
    memcpy(argv + 3, args, sizeof(char *) * (size_t)nargs);
    knit_redis_reply *rep = NULL;
    int err = call(d, d->cmd, &rep, nargs + 3, argv);
    free(argv);
    long long v = err;
    if (err == -EPROTO)
        fprintf(d->o.log, "knit-crawl: redis: %s\n", rep ? rep->str : "error");
    else if (err == 0)
        v = rep->type == KNIT_REDIS_INTEGER ? rep->integer : -EPROTO;
    knit_redis_reply_free(rep);
    return v;
}

/* ---- the heartbeat ------------------------------------------------------- */

struct ids {
    const char **v;
    int n, cap;
};

static void collect_held(void *ctx, const char *key, void *val)
{
    struct ids *ids = ctx;
    if (!val)
        return;
    if (ids->n == ids->cap) {
        int cap = ids->cap ? ids->cap * 2 : 64;
        const char **v = realloc(ids->v, sizeof(*v) * (size_t)cap);
        if (!v)
            return;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = key;
}

/* Keeps this process's entries fresh: every reclaim_ms / 3, claims again
 * those it holds (one script per 500, to keep each call short). */
static int heartbeat(void *arg)
{
    struct dist *d = arg;
    for (;;) {
        if (knit_sleep(d->o.reclaim_ms / 3) < 0)
            return 0;
        struct ids ids = {0};
        strmap_each(&d->held, collect_held, &ids);
        for (int i = 0; i < ids.n; i += 500) {
            int n = ids.n - i < 500 ? ids.n - i : 500;
            const char *args[3 + 500] = {d->frontier, GROUP, d->consumer};
            memcpy(args + 3, ids.v + i, sizeof(char *) * (size_t)n);
            if (eval(d, dist_lua_heartbeat, 1, args, n + 3) == -ECANCELED)
                break;
        }
        free(ids.v);
    }
}

/* ---- joining ------------------------------------------------------------- */

int dist_open(const struct dist_opts *o, struct dist **out, char *err,
              size_t errlen)
{
    *out = NULL;
    if (dist_check_id(o->crawl_id) < 0) {
        snprintf(err, errlen, "bad --crawl-id '%s': use 1 to 64 letters, "
                              "digits, '.', '_' or '-'", o->crawl_id);
        return -EINVAL;
    }
    struct dist *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    d->o = *o;
    if (o->consumer) {
        snprintf(d->consumer, sizeof(d->consumer), "%s", o->consumer);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof(host) - 1);
        snprintf(d->consumer, sizeof(d->consumer), "%s-%ld", host,
                 (long)getpid());
    }
    make_keys(d, o->crawl_id);
    snprintf(d->cursor, sizeof(d->cursor), "0-0");
    int r = knit_redis_connect(o->url, &d->cmd);
    if (r == 0)
        r = knit_redis_connect(o->url, &d->blk);
    if (r < 0) {
        snprintf(err, errlen, "redis %s: %s", o->url,
                 r == -EINVAL ? "not a redis://HOST[:PORT][/DB] URL"
                              : strerror(-r));
        goto out_fail;
    }
    /* The group reads the stream from its start: entries added before it
     * existed are delivered too. */
    knit_redis_reply *rep = NULL;
    const char *create[] = {"XGROUP", "CREATE", d->frontier, GROUP, "0",
                            "MKSTREAM"};
    r = call(d, d->cmd, &rep, 6, create);
    if (r == -EPROTO && rep && strncmp(rep->str, "BUSYGROUP", 9) == 0)
        r = 0;
    if (r < 0)
        snprintf(err, errlen, "redis %s: creating the consumer group: %s",
                 o->url, rep && rep->str ? rep->str : strerror(-r));
    knit_redis_reply_free(rep);
    if (r < 0)
        goto out_fail;
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
    const char *meta[] = {"HSETNX", d->meta, "created", now};
    call(d, d->cmd, NULL, 4, meta);
    knit_task_opts to = {.name = "redis heartbeat"};
    if (!(d->heart = knit_spawn_with(&to, heartbeat, d))) {
        r = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out_fail;
    }
    *out = d;
    return 0;
out_fail:
    dist_close(d);
    return r;
}

void dist_close(struct dist *d)
{
    if (!d)
        return;
    if (d->heart) {
        knit_cancel(d->heart);
        knit_join(d->heart);
    }
    knit_redis_close(d->cmd);
    knit_redis_close(d->blk);
    strmap_free(&d->held);
    free(d);
}

/* ---- the frontier -------------------------------------------------------- */

int dist_add(struct dist *d, char *const *urls, int n, int depth, int hops)
{
    if (n <= 0)
        return 0;
    const char **args = malloc(sizeof(char *) * (size_t)(n + 5));
    if (!args)
        return -ENOMEM;
    char dep[16], hop[16];
    snprintf(dep, sizeof(dep), "%d", depth);
    snprintf(hop, sizeof(hop), "%d", hops);
    args[0] = d->seen;
    args[1] = d->frontier;
    args[2] = d->stats;
    args[3] = dep;
    args[4] = hop;
    memcpy(args + 5, urls, sizeof(char *) * (size_t)n);
    long long r = eval(d, dist_lua_add, 3, args, n + 5);
    free(args);
    return (int)r;
}

/* The value of field @name in a stream entry's field list, or NULL. */
static const char *field(const knit_redis_reply *f, const char *name)
{
    for (size_t i = 0; f->type == KNIT_REDIS_ARRAY && i + 1 < f->elements;
         i += 2)
        if (f->element[i]->str && strcmp(f->element[i]->str, name) == 0)
            return f->element[i + 1]->str;
    return NULL;
}

/* Hand each entry of @list (an array of [id, fields]) not held already to
 * on_entry; returns how many went. */
static int deliver(struct dist *d, const knit_redis_reply *list,
                   void (*on_entry)(void *, const char *, const char *, int,
                                    int),
                   void *ctx)
{
    int n = 0;
    for (size_t i = 0; list->type == KNIT_REDIS_ARRAY && i < list->elements;
         i++) {
        const knit_redis_reply *e = list->element[i];
        if (e->type != KNIT_REDIS_ARRAY || e->elements < 2 ||
            !e->element[0]->str)
            continue; /* deleted meanwhile */
        const char *id = e->element[0]->str;
        const char *url = field(e->element[1], "url");
        const char *depth = field(e->element[1], "depth");
        const char *hops = field(e->element[1], "hops");
        if (!url || strmap_get(&d->held, id))
            continue; /* ours already (the heartbeat was late) */
        if (strmap_put(&d->held, id, (void *)1) < 0)
            continue; /* no memory: reclaimed later */
        on_entry(ctx, id, url, depth ? atoi(depth) : 0, hops ? atoi(hops) : 0);
        n++;
    }
    return n;
}

/* Claim up to @max entries idle past the reclaim time. */
static int reclaim(struct dist *d, int max,
                   void (*on_entry)(void *, const char *, const char *, int,
                                    int),
                   void *ctx)
{
    char idle[24], count[16];
    snprintf(idle, sizeof(idle), "%lld", (long long)d->o.reclaim_ms);
    snprintf(count, sizeof(count), "%d", max);
    const char *argv[] = {"XAUTOCLAIM", d->frontier, GROUP, d->consumer,
                          idle, d->cursor, "COUNT", count};
    knit_redis_reply *rep = NULL;
    int r = call(d, d->cmd, &rep, 8, argv);
    if (r == 0 && rep->type == KNIT_REDIS_ARRAY && rep->elements >= 2) {
        snprintf(d->cursor, sizeof(d->cursor), "%s",
                 rep->element[0]->str ? rep->element[0]->str : "0-0");
        r = deliver(d, rep->element[1], on_entry, ctx);
        if (r > 0) {
            d->reclaimed += (uint64_t)r;
            char n[16];
            snprintf(n, sizeof(n), "%d", r);
            const char *incr[] = {"HINCRBY", d->stats, "reclaimed", n};
            call(d, d->cmd, NULL, 4, incr);
            fprintf(d->o.log, "knit-crawl: reclaimed %d entries idle for "
                              "over %lld ms\n", r,
                    (long long)d->o.reclaim_ms);
        }
    }
    /* A whole pass done: the next one after half the reclaim time. */
    if (strcmp(d->cursor, "0-0") == 0)
        d->next_reclaim = knit_now() + d->o.reclaim_ms / 2;
    knit_redis_reply_free(rep);
    return r;
}

int dist_take(struct dist *d, int max,
              void (*on_entry)(void *ctx, const char *id, const char *url,
                               int depth, int hops),
              void *ctx)
{
    int n = 0;
    if (max <= 0)
        return 0;
    if (knit_now() >= d->next_reclaim) {
        n = reclaim(d, max, on_entry, ctx);
        if (n != 0)
            return n;
    }
    char count[16], block[16];
    snprintf(count, sizeof(count), "%d", max);
    snprintf(block, sizeof(block), "%d", BLOCK_MS);
    const char *argv[] = {"XREADGROUP", "GROUP", GROUP, d->consumer, "COUNT",
                          count, "BLOCK", block, "STREAMS", d->frontier, ">"};
    knit_redis_reply *rep = NULL;
    int r = call(d, d->blk, &rep, 11, argv);
    if (r == 0 && rep->type == KNIT_REDIS_ARRAY && rep->elements > 0 &&
        rep->element[0]->type == KNIT_REDIS_ARRAY &&
        rep->element[0]->elements == 2)
        r = deliver(d, rep->element[0]->element[1], on_entry, ctx);
    else if (r == -EPROTO)
        fprintf(d->o.log, "knit-crawl: redis: %s\n",
                rep && rep->str ? rep->str : "XREADGROUP failed");
    knit_redis_reply_free(rep);
    return r;
}

int dist_ack(struct dist *d, const char *id, const char *url, int status,
             int64_t bytes)
{
    char st[16], by[24];
    snprintf(st, sizeof(st), "%d", status);
    snprintf(by, sizeof(by), "%lld", (long long)bytes);
    const char *args[] = {d->frontier, d->stats, d->pages, GROUP, id,
                          url, st, by, d->consumer};
    long long r = eval(d, dist_lua_ack, 3, args, 9);
    dist_release(d, id);
    return r < 0 ? (int)r : 0;
}

void dist_release(struct dist *d, const char *id)
{
    if (strmap_get(&d->held, id))
        strmap_put(&d->held, id, NULL);
}

int dist_rate_acquire(struct dist *d, const char *host, double rate)
{
    char key[KEY_MAX + 300], r[32];
    snprintf(key, sizeof(key), "%s%s", d->rate_prefix, host);
    snprintf(r, sizeof(r), "%.6g", rate);
    const char *args[] = {key, r};
    for (;;) {
        long long wait = eval(d, dist_lua_rate, 1, args, 2);
        if (wait <= 0)
            return (int)wait;
        int err = knit_sleep(wait);
        if (err < 0)
            return err;
    }
}

int dist_finished(struct dist *d)
{
    const char *argv[] = {"HMGET", d->stats, "added", "acked"};
    knit_redis_reply *rep = NULL;
    int r = call(d, d->cmd, &rep, 4, argv);
    if (r == 0) {
        long long added = rep->elements == 2 && rep->element[0]->str
                              ? atoll(rep->element[0]->str)
                              : 0;
        long long acked = rep->elements == 2 && rep->element[1]->str
                              ? atoll(rep->element[1]->str)
                              : 0;
        r = added > 0 && added == acked;
    }
    knit_redis_reply_free(rep);
    return r;
}

uint64_t dist_reclaimed(const struct dist *d)
{
    return d->reclaimed;
}
