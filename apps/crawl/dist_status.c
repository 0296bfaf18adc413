// SPDX-License-Identifier: MIT
/*
 * knit-crawl status: the progress of a whole distributed crawl, read from
 * Redis (dist.h has the keys). One connection, one pass of reads; the
 * numbers are a snapshot, not a transaction, so they may be a page apart.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>
#include <knit/redis.h>

#include "dist.h"

/* A field of a flat [name, value, ...] reply as a number (0 if absent). */
static long long num_field(const knit_redis_reply *r, const char *name)
{
    for (size_t i = 0; r && r->type == KNIT_REDIS_ARRAY && i + 1 < r->elements;
         i += 2) {
        const knit_redis_reply *k = r->element[i], *v = r->element[i + 1];
        if (k->str && strcmp(k->str, name) == 0)
            return v->type == KNIT_REDIS_INTEGER ? v->integer
                   : v->str                      ? atoll(v->str)
                                                 : 0;
    }
    return 0;
}

static const char *str_field(const knit_redis_reply *r, const char *name)
{
    for (size_t i = 0; r && r->type == KNIT_REDIS_ARRAY && i + 1 < r->elements;
         i += 2)
        if (r->element[i]->str && strcmp(r->element[i]->str, name) == 0)
            return r->element[i + 1]->str;
    return NULL;
}

/* Run @fmt with the key kc:{@id}:@suffix; the reply or NULL. */
static knit_redis_reply *query(knit_redis *c, const char *fmt, const char *id,
                               const char *suffix)
{
    char key[160];
    knit_redis_reply *rep = NULL;
    snprintf(key, sizeof(key), "kc:{%s}:%s", id, suffix);
    if (knit_redis_command(c, &rep, fmt, key) < 0) {
        knit_redis_reply_free(rep);
        return NULL;
    }
    return rep;
}

static long long integer(const knit_redis_reply *r)
{
    return r && r->type == KNIT_REDIS_INTEGER ? r->integer : 0;
}

static void print_consumers(FILE *out, const knit_redis_reply *cons)
{
    if (!cons || cons->type != KNIT_REDIS_ARRAY || cons->elements == 0) {
        fprintf(out, "  consumers: none yet\n");
        return;
    }
    fprintf(out, "  consumers (processes):\n");
    for (size_t i = 0; i < cons->elements; i++) {
        const knit_redis_reply *c = cons->element[i];
        const char *name = str_field(c, "name");
        fprintf(out, "    %-32s holding %lld, idle %lld ms\n",
                name ? name : "?", num_field(c, "pending"),
                num_field(c, "idle"));
    }
}

int dist_status(const char *url, const char *crawl_id, FILE *out, char *err,
                size_t errlen)
{
    if (dist_check_id(crawl_id) < 0) {
        snprintf(err, errlen, "bad --crawl-id '%s'", crawl_id);
        return -EINVAL;
    }
    knit_redis *c;
    knit_scope sc;
    knit_scope_enter(&sc, knit_now() + 10000);
    int r = knit_redis_connect(url, &c);
    if (r < 0) {
        knit_scope_exit(&sc);
        snprintf(err, errlen, "redis %s: %s", url,
                 r == -EINVAL ? "not a redis://HOST[:PORT][/DB] URL"
                              : strerror(-r));
        return r;
    }
    knit_redis_reply *stats = query(c, "HGETALL %s", crawl_id, "stats");
    knit_redis_reply *meta = query(c, "HGETALL %s", crawl_id, "meta");
    knit_redis_reply *pend = query(c, "XPENDING %s crawlers", crawl_id,
                                   "frontier");
    knit_redis_reply *cons = query(c, "XINFO CONSUMERS %s crawlers", crawl_id,
                                   "frontier");
    knit_redis_reply *seen = query(c, "SCARD %s", crawl_id, "seen");
    knit_redis_reply *mem = query(c, "MEMORY USAGE %s SAMPLES 0", crawl_id,
                                  "seen");
    knit_redis_reply *plen = query(c, "XLEN %s", crawl_id, "pages");
    knit_scope_exit(&sc);
    if (!stats || !meta || stats->elements == 0) {
        snprintf(err, errlen, "redis %s: no crawl '%s' there%s", url, crawl_id,
                 stats ? "" : " (or Redis did not answer)");
        r = -ENOENT;
        goto out;
    }
    long long added = num_field(stats, "added");
    long long acked = num_field(stats, "acked");
    long long pending = pend && pend->type == KNIT_REDIS_ARRAY &&
                                pend->elements > 0
                            ? integer(pend->element[0])
                            : 0;
    long long waiting = added - acked - pending;
    long long nseen = integer(seen), bytes = integer(mem);
    fprintf(out, "crawl '%s' on %s: %s\n", crawl_id, url,
            added > 0 && added == acked ? "finished" : "running");
    fprintf(out, "  urls: %lld added, %lld done, %lld being fetched, "
                 "%lld waiting\n",
            added, acked, pending, waiting < 0 ? 0 : waiting);
    fprintf(out, "  pages: %lld stored, %lld of them twice (entries "
                 "reclaimed: %lld); %lld in the summary stream\n",
            num_field(stats, "pages"), num_field(stats, "dups"),
            num_field(stats, "reclaimed"), integer(plen));
    print_consumers(out, cons);
    fprintf(out, "  seen set: %lld URLs, %lld bytes in Redis", nseen, bytes);
    if (nseen > 0)
        fprintf(out, " (%.0f bytes per URL)", (double)bytes / (double)nseen);
    fprintf(out, "\n");
    r = 0;
out:
    knit_redis_reply_free(stats);
    knit_redis_reply_free(meta);
    knit_redis_reply_free(pend);
    knit_redis_reply_free(cons);
    knit_redis_reply_free(seen);
    knit_redis_reply_free(mem);
    knit_redis_reply_free(plen);
    knit_redis_close(c);
    return r;
}
