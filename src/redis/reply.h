/* SPDX-License-Identifier: MIT */
/*
 * Private helpers of knit/redis.h: the URL parser and the reply copy.
 */
#ifndef KNIT_REDIS_REPLY_H
#define KNIT_REDIS_REPLY_H

#include <hiredis/hiredis.h>

#include "knit/redis.h"

/* What a redis:// URL names. */
struct knit__redis_url {
    char host[256]; /* without the brackets of an IPv6 literal */
    int port;       /* 1..65535 */
    int db;         /* >= 0 */
};

/* Parse redis://HOST[:PORT][/DB]. Returns 0 or -EINVAL. */
int knit__redis_url_parse(const char *url, struct knit__redis_url *out);

/* A deep copy of hiredis's @r (which hiredis frees after the callback),
 * or NULL when memory runs out. */
knit_redis_reply *knit__redis_reply_copy(const redisReply *r);

#endif
