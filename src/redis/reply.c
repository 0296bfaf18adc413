// SPDX-License-Identifier: MIT
/*
 * knit/redis.h: parsing redis:// URLs, and replies copied out of hiredis
 * (whose async API frees its reply as soon as the callback returns, while
 * the task that wants it runs later).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "redis/reply.h"

/* A decimal in [lo, hi] spanning [s, end); returns -1 when it is not. */
static long decimal(const char *s, const char *end, long lo, long hi)
{
    long v = 0;
    if (s == end || end - s > 9)
        return -1;
    for (const char *p = s; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v < lo || v > hi ? -1 : v;
}

int knit__redis_url_parse(const char *url, struct knit__redis_url *out)
{
    static const char scheme[] = "redis://";
    if (!url || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return -EINVAL;
    const char *h = url + sizeof(scheme) - 1, *hend, *p;
    if (*h == '[') { /* [IPv6] */
        hend = strchr(h, ']');
        if (!hend)
            return -EINVAL;
        h++;
        p = hend + 1;
    } else {
        hend = h + strcspn(h, ":/");
        p = hend;
    }
    size_t hlen = (size_t)(hend - h);
    if (hlen == 0 || hlen >= sizeof(out->host) || memchr(h, '@', hlen))
        return -EINVAL;
    memcpy(out->host, h, hlen);
    out->host[hlen] = '\0';
    out->port = 6379;
    out->db = 0;
    if (*p == ':') {
        const char *pend = p + 1 + strcspn(p + 1, "/");
        long port = decimal(p + 1, pend, 1, 65535);
        if (port < 0)
            return -EINVAL;
        out->port = (int)port;
        p = pend;
    }
    if (*p == '/' && p[1] != '\0') {
        long db = decimal(p + 1, p + strlen(p), 0, 1000000);
        if (db < 0)
            return -EINVAL;
        out->db = (int)db;
    } else if (*p != '\0' && strcmp(p, "/") != 0) {
        return -EINVAL;
    }
    return 0;
}

knit_redis_reply *knit__redis_reply_copy(const redisReply *r)
{
    knit_redis_reply *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    switch (r->type) {
    case REDIS_REPLY_STRING: c->type = KNIT_REDIS_STRING; break;
    case REDIS_REPLY_ARRAY: c->type = KNIT_REDIS_ARRAY; break;
    case REDIS_REPLY_INTEGER: c->type = KNIT_REDIS_INTEGER; break;
    case REDIS_REPLY_STATUS: c->type = KNIT_REDIS_STATUS; break;
    case REDIS_REPLY_ERROR: c->type = KNIT_REDIS_ERROR; break;
    default: c->type = KNIT_REDIS_NIL; break;
    }
    c->integer = r->integer;
    if (r->str && c->type != KNIT_REDIS_NIL) {
        if (!(c->str = malloc(r->len + 1)))
            goto out_free;
        memcpy(c->str, r->str, r->len);
        c->str[r->len] = '\0';
        c->len = r->len;
    }
    if (c->type == KNIT_REDIS_ARRAY && r->elements > 0) {
        c->element = calloc(r->elements, sizeof(*c->element));
        if (!c->element)
            goto out_free;
        for (size_t i = 0; i < r->elements; i++, c->elements++)
            if (!(c->element[i] = knit__redis_reply_copy(r->element[i])))
                goto out_free;
    }
    return c;
out_free:
    knit_redis_reply_free(c);
    return NULL;
}

void knit_redis_reply_free(knit_redis_reply *rep)
{
    if (!rep)
        return;
    for (size_t i = 0; i < rep->elements; i++)
        knit_redis_reply_free(rep->element[i]);
    free(rep->element);
    free(rep->str);
    free(rep);
}
