/* SPDX-License-Identifier: MIT */
/*
 * knit/redis.h - a Redis client for tasks, on hiredis's async API.
 *
 *     knit_redis *r;
 *     knit_redis_reply *rep;
 *     knit_scope s;
 *     knit_scope_enter(&s, knit_now() + 2000);     // 2 s for both calls
 *     int err = knit_redis_connect("redis://127.0.0.1:6379/0", &r);
 *     if (err == 0)
 *         err = knit_redis_command(r, &rep, "INCR %s", "visits");
 *     knit_scope_exit(&s);
 *     if (err == 0)
 *         printf("visit %lld\n", rep->integer);
 *     knit_redis_reply_free(rep);
 *     knit_redis_close(r);
 *
 * One call per command, in a task: the task parks until the reply comes.
 * Any number of tasks may have commands in flight on one connection at
 * once; they are pipelined and replies are matched in order (FIFO), as
 * Redis answers them. hiredis's socket is watched through knit's I/O
 * driver by one internal task per connection (the pump).
 *
 * Deadlines and cancellation come from knit_scope: when the caller's scope
 * fires, the call returns -ETIMEDOUT / -ECANCELED at once. The command may
 * still run on the server; its reply, when it comes, is dropped. A blocking
 * command (BLPOP, XREADGROUP BLOCK) holds the connection's pipeline up
 * until it returns, so give it a connection of its own.
 *
 * Reconnection: a lost connection fails the commands in flight with
 * -ECONNRESET. The next command reconnects, waiting first for the backoff
 * delay (exponential, 50 ms doubling up to 2 s, reset by a success); a
 * connection attempt that fails returns -ECONNREFUSED (or -ETIMEDOUT when
 * the server does not answer within 5 s). So a caller that retries on
 * those errors (with its own scope deadline) rides over a Redis restart.
 *
 * A connection belongs to the worker of the task that opened it: use it
 * from that worker's tasks only. Link with knit_redis (CMake:
 * knit::knit_redis) and hiredis.
 */
#ifndef KNIT_REDIS_H
#define KNIT_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct knit_redis knit_redis;

/* The kinds of reply (RESP2). */
typedef enum knit_redis_type {
    KNIT_REDIS_STRING = 1, /* bulk string: str, len (binary-safe) */
    KNIT_REDIS_ARRAY,      /* elements, element[] */
    KNIT_REDIS_INTEGER,    /* integer */
    KNIT_REDIS_NIL,        /* a null bulk string or array */
    KNIT_REDIS_STATUS,     /* "OK", "QUEUED": str, len */
    KNIT_REDIS_ERROR,      /* "ERR ...", "NOSCRIPT ...": str, len */
} knit_redis_type;

/*
 * A reply, owned by the caller (a deep copy: it outlives the connection).
 * @str is NUL-terminated after @len bytes whenever it is set.
 */
typedef struct knit_redis_reply {
    knit_redis_type type;
    long long integer;
    char *str;
    size_t len;
    size_t elements;
    struct knit_redis_reply **element;
} knit_redis_reply;

/**
 * knit_redis_connect() - parse @url and connect to the server it names.
 * @url: redis://HOST[:PORT][/DB]; HOST is an IPv4 address, [IPv6] or a
 *       name (resolved with knit_resolve); PORT 6379, DB 0 by default.
 * @out: the connection on success, NULL otherwise (required).
 *
 * Cancellation point; call from a task. The scope's deadline bounds the
 * connection attempt (and it gives up after 5 s in any case).
 * Return: 0; -EINVAL for a malformed URL; -EHOSTUNREACH when HOST does not
 * resolve; -ECONNREFUSED when the server cannot be reached; -EPROTO when
 * SELECT DB fails; -ENOMEM; -ETIMEDOUT / -ECANCELED from the scope.
 */
KNIT_API int knit_redis_connect(const char *url, knit_redis **out);

/**
 * knit_redis_command() - send one command and wait for its reply.
 * @r:   the connection.
 * @out: the reply (free it with knit_redis_reply_free), set on 0 and on
 *       -EPROTO (then an error reply: @out->str is Redis's message);
 *       NULL otherwise. May be NULL when the reply is not wanted.
 * @fmt: a command in hiredis's format: %s a C string, %b a pointer and a
 *       size_t length (binary-safe), %d %lld ... integers, %% a percent.
 *       Arguments are separated by spaces in @fmt.
 *
 * Cancellation point; call from a task of @r's worker.
 * Return: 0; -EPROTO Redis answered with an error; -ECONNRESET the
 * connection was lost before the reply; -ECONNREFUSED / -ETIMEDOUT a
 * reconnection failed; -EINVAL a bad @fmt; -ENOMEM; -ETIMEDOUT /
 * -ECANCELED from the scope (the reply, if it comes, is dropped).
 */
KNIT_API int knit_redis_command(knit_redis *r, knit_redis_reply **out,
                                const char *fmt, ...);

/**
 * knit_redis_command_argv() - knit_redis_command() with @argc arguments
 * given as @argv (with lengths @argvlen, or NULL for C strings).
 * Same context and return values.
 */
KNIT_API int knit_redis_command_argv(knit_redis *r, knit_redis_reply **out,
                                     int argc, const char *const *argv,
                                     const size_t *argvlen);

/* Free @rep and everything it holds. NULL is a no-op. */
KNIT_API void knit_redis_reply_free(knit_redis_reply *rep);

/**
 * knit_redis_close() - close the connection and free @r.
 * Call from a task of @r's worker once no command of @r is in flight
 * (calls abandoned by their scope are fine). NULL is a no-op.
 */
KNIT_API void knit_redis_close(knit_redis *r);

/* Counters of a connection, for tests and status displays. */
typedef struct knit_redis_stats {
    uint64_t commands;  /* commands sent */
    uint64_t in_flight; /* commands waiting for their reply now */
    uint64_t connects;  /* connections established (1 + reconnections) */
    uint64_t abandoned; /* calls ended by their scope before the reply */
} knit_redis_stats;

/* Copy @r's counters into @out. */
KNIT_API void knit_redis_stats_get(const knit_redis *r,
                                   knit_redis_stats *out);

#ifdef __cplusplus
}
#endif

#endif
