// SPDX-License-Identifier: MIT
/*
 * knit/redis.h on hiredis's async API, built on knit's public API.
 *
 * A connection is one redisAsyncContext at a time (a new one after each
 * reconnection). hiredis says when it wants its socket read or written
 * (the ev.addRead/delRead/addWrite/delWrite hooks); the connection keeps
 * that socket in an epoll set of its own, level-triggered, and one task,
 * the pump, waits for that epoll fd to become readable through knit's
 * driver and hands the socket to redisAsyncHandleRead/Write. hiredis 0.14
 * has no timer hook: the only timeouts are the callers' scope deadlines
 * and the connect timeout, both kept in the calling tasks.
 *
 * Ownership of a request: hiredis's reply callback may run after the task
 * that sent the command is gone (its scope fired), so the request lives on
 * the heap. Whoever finishes second frees it: the callback frees a request
 * its task abandoned, the task frees one the callback completed. Every
 * request gets exactly one callback, with NULL when the connection is lost
 * or freed, so none leaks.
 *
 * As in http.c, everything runs on one worker and hiredis never calls
 * anything that parks, so no lock is needed: the pump is only ever
 * suspended in knit_wait_fd, never inside hiredis.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "knit/net.h"
#include "knit/patterns.h"
#include "knit/redis.h"
#include "knit/select.h"
#include "knit/sync.h"
#include "knit/task.h"
#include "knit/time.h"
#include "redis/reply.h"

enum {
    CONNECT_MS = 5000,       /* a connection attempt's own limit */
    PUMP_STACK = 64 * 1024,
    EVENTS_PER_WAKE = 4,     /* one socket: read/write at most */
};

struct knit_redis {
    struct knit__redis_url url;
    redisAsyncContext *ac; /* the current connection, or NULL */
    bool connected;        /* ac is up (and its SELECT done) */
    int epfd;              /* ac's socket, level-triggered */
    unsigned want;         /* EPOLLIN/EPOLLOUT hiredis asked for */
    bool registered;       /* ac's socket is in epfd */
    knit_task *pump;       /* NULL until the first connection */
    knit_notify state;     /* connection up or attempt failed (all) */
    int last_err;          /* why the last attempt or connection ended */
    int select_err;        /* SELECT failed: the next disconnect's error */
    int64_t connect_deadline;
    int64_t next_attempt;  /* no reconnection before this (backoff) */
    knit_backoff backoff;
    knit_redis_stats st;
};

/* One command in flight; see "Ownership of a request" above. */
struct req {
    knit_redis *r;
    knit_notify done_n; /* notified when @done is set */
    bool done;
    bool abandoned;     /* the caller left: the callback frees */
    int err;
    knit_redis_reply *reply;
};

static const knit_backoff_policy reconnect_policy = {
    .initial_ms = 50, .max_ms = 2000, .jitter = KNIT_JITTER_DECORRELATED};

/* ---- hiredis's event hooks ----------------------------------------------- */

static void ev_apply(knit_redis *r)
{
    if (!r->ac || r->ac->c.fd < 0)
        return;
    struct epoll_event ev = {.events = r->want, .data.fd = r->ac->c.fd};
    if (r->want == 0) {
        if (r->registered)
            epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->ac->c.fd, NULL);
        r->registered = false;
        return;
    }
    if (epoll_ctl(r->epfd, r->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
                  r->ac->c.fd, &ev) == 0)
        r->registered = true;
}

/* hiredis wants @bit (EPOLLIN or EPOLLOUT) watched, or not. */
static void ev_want(void *p, unsigned bit, bool on)
{
    knit_redis *r = p;
    r->want = on ? r->want | bit : r->want & ~bit;
    ev_apply(r);
}

static void ev_add_read(void *p) { ev_want(p, EPOLLIN, true); }
static void ev_del_read(void *p) { ev_want(p, EPOLLIN, false); }
static void ev_add_write(void *p) { ev_want(p, EPOLLOUT, true); }
static void ev_del_write(void *p) { ev_want(p, EPOLLOUT, false); }

/* The context is being freed; its socket is still open. */
static void ev_cleanup(void *p)
{
    knit_redis *r = p;
    r->want = 0;
    ev_apply(r);
}

/* ---- connection state ---------------------------------------------------- */

/* The current connection or attempt ended with @err: the next attempt
 * waits for the backoff, and the waiters hear of it. */
static void connection_ended(knit_redis *r, int err)
{
    r->ac = NULL;
    r->connected = false;
    r->want = 0;
    r->registered = false;
    r->last_err = err;
    int64_t d = knit_backoff_next(&r->backoff, 0);
    r->next_attempt = knit_now() + (d > 0 ? d : 0);
    knit_notify_all(&r->state);
}

static void connection_up(knit_redis *r)
{
    r->connected = true;
    r->st.connects++;
    knit_backoff_init(&r->backoff, &reconnect_policy);
    knit_notify_all(&r->state);
}

static void on_select(redisAsyncContext *ac, void *reply, void *priv)
{
    knit_redis *r = priv;
    const redisReply *rep = reply;
    if (!rep || r->ac != ac)
        return; /* the connection went; on_disconnect said so */
    if (rep->type == REDIS_REPLY_ERROR) {
        r->select_err = -EPROTO;
        redisAsyncDisconnect(ac); /* deferred by hiredis: in a callback */
        return;
    }
    connection_up(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    knit_redis *r = ac->data;
    if (status != REDIS_OK) {
        connection_ended(r, -ECONNREFUSED); /* hiredis frees ac next */
        return;
    }
    if (r->url.db == 0) {
        connection_up(r);
        return;
    }
    /* Sent before any caller's command (they wait for connected). */
    if (redisAsyncCommand(r->ac, on_select, r, "SELECT %d", r->url.db) !=
        REDIS_OK)
        r->select_err = -ENOMEM;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    knit_redis *r = ac->data;
    int err = r->select_err ? r->select_err : -ECONNRESET;
    r->select_err = 0;
    connection_ended(r, err);
}

/* Runs until cancelled by knit_redis_close. */
static int pump(void *arg)
{
    knit_redis *r = arg;
    for (;;) {
        int err = knit_wait_fd(r->epfd, POLLIN);
        if (err < 0)
            return err;
        struct epoll_event ev[EVENTS_PER_WAKE];
        int n = epoll_wait(r->epfd, ev, EVENTS_PER_WAKE, 0);
        for (int i = 0; i < n && r->ac; i++) {
            if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                redisAsyncHandleRead(r->ac);
            /* Reading may have freed the context (EOF, error). */
            if (r->ac && (ev[i].events & EPOLLOUT))
                redisAsyncHandleWrite(r->ac);
        }
    }
}

/* The numeric address of @r's host (resolved now: names may move). */
static int numeric_host(knit_redis *r, char *ip, size_t len)
{
    struct addrinfo *ai;
    int err = knit_resolve(r->url.host, r->url.port, SOCK_STREAM, &ai);
    if (err < 0)
        return err;
    err = getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, (socklen_t)len, NULL,
                      0, NI_NUMERICHOST) == 0
              ? 0
              : -EHOSTUNREACH;
    freeaddrinfo(ai);
    return err;
}

/* Start a connection attempt; on success r->ac is connecting. */
static int start_connect(knit_redis *r)
{
    char ip[NI_MAXHOST];
    int err = numeric_host(r, ip, sizeof(ip));
    if (err < 0)
        return err;
    if (!r->pump) {
        knit_task_opts o = {.name = "knit-redis pump", .stack_size = PUMP_STACK};
        if (!(r->pump = knit_spawn_with(&o, pump, r)))
            return -ENOMEM;
    }
    redisAsyncContext *ac = redisAsyncConnect(ip, r->url.port);
    if (!ac)
        return -ENOMEM;
    if (ac->err) {
        err = ac->err == REDIS_ERR_OOM ? -ENOMEM : -ECONNREFUSED;
        redisAsyncFree(ac);
        return err;
    }
    r->ac = ac;
    r->connected = false;
    r->select_err = 0;
    ac->data = r;
    ac->ev.data = r;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* Asks for writability: that is how the connect's end shows. */
    redisAsyncSetConnectCallback(ac, on_connect);
    r->connect_deadline = knit_now() + CONNECT_MS;
    return 0;
}

/* Give up the attempt in progress (it took too long). */
static void abort_connect(knit_redis *r)
{
    redisAsyncContext *ac = r->ac;
    connection_ended(r, -ETIMEDOUT);
    redisAsyncFree(ac); /* not connected: no callback but the cleanup */
}

/*
 * Make sure @r is connected, making at most one attempt of its own (after
 * the backoff delay). Returns 0 or the attempt's error.
 */
static int ensure_connected(knit_redis *r)
{
    bool tried = false;
    for (;;) {
        if (r->ac && r->connected)
            return 0;
        if (!r->ac) {
            if (tried)
                return r->last_err;
            if (knit_now() < r->next_attempt) {
                int err = knit_sleep_until(r->next_attempt);
                if (err < 0)
                    return err;
                continue;
            }
            tried = true;
            int err = start_connect(r);
            if (err < 0) {
                connection_ended(r, err);
                return err;
            }
        }
        knit_case cases[] = {
            knit_case_notify(&r->state),
            knit_case_deadline(r->connect_deadline),
        };
        int w = knit_select(cases, 2);
        if (w < 0)
            return w;
        if (w == 1 && r->ac && !r->connected && knit_now() >=
                                                    r->connect_deadline) {
            abort_connect(r);
            return -ETIMEDOUT;
        }
    }
}

/* ---- commands ------------------------------------------------------------ */

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    struct req *q = priv;
    q->r->st.in_flight--;
    if (q->abandoned) {
        free(q);
        return;
    }
    if (!reply) {
        q->err = -ECONNRESET;
    } else if (!(q->reply = knit__redis_reply_copy(reply))) {
        q->err = -ENOMEM;
    } else if (q->reply->type == KNIT_REDIS_ERROR) {
        q->err = -EPROTO;
    }
    q->done = true;
    knit_notify_one(&q->done_n);
}

/* The common part: @send queues the command on r->ac with on_reply. */
static int run(knit_redis *r, knit_redis_reply **out,
               int (*send)(knit_redis *r, struct req *q, void *ctx), void *ctx)
{
    if (out)
        *out = NULL;
    if (!r)
        return -EINVAL;
    int err = ensure_connected(r);
    if (err < 0)
        return err;
    struct req *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->r = r;
    knit_notify_init(&q->done_n);
    if (send(r, q, ctx) != REDIS_OK) {
        int flags = r->ac->c.flags;
        free(q);
        return flags & (REDIS_DISCONNECTING | REDIS_FREEING) ? -ECONNRESET
                                                             : -EINVAL;
    }
    r->st.commands++;
    r->st.in_flight++;
    while (!q->done && err == 0)
        err = knit_notify_wait(&q->done_n);
    if (!q->done) {
        q->abandoned = true; /* on_reply frees it */
        r->st.abandoned++;
        return err;
    }
    err = q->err;
    if (out && (err == 0 || err == -EPROTO))
        *out = q->reply;
    else
        knit_redis_reply_free(q->reply);
    free(q);
    return err;
}

struct fmt_args {
    const char *fmt;
    va_list *ap;
};

static int send_fmt(knit_redis *r, struct req *q, void *ctx)
{
    struct fmt_args *a = ctx;
    return redisvAsyncCommand(r->ac, on_reply, q, a->fmt, *a->ap);
}

int knit_redis_command(knit_redis *r, knit_redis_reply **out, const char *fmt,
                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct fmt_args a = {fmt, &ap};
    int err = run(r, out, send_fmt, &a);
    va_end(ap);
    return err;
}

struct argv_args {
    int argc;
    const char *const *argv;
    const size_t *argvlen;
};

static int send_argv(knit_redis *r, struct req *q, void *ctx)
{
    struct argv_args *a = ctx;
    return redisAsyncCommandArgv(r->ac, on_reply, q, a->argc,
                                 (const char **)a->argv, a->argvlen);
}

int knit_redis_command_argv(knit_redis *r, knit_redis_reply **out, int argc,
                            const char *const *argv, const size_t *argvlen)
{
    if (argc < 1 || !argv) {
        if (out)
            *out = NULL;
        return -EINVAL;
    }
    struct argv_args a = {argc, argv, argvlen};
    return run(r, out, send_argv, &a);
}

/* ---- the connection ------------------------------------------------------ */

int knit_redis_connect(const char *url, knit_redis **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    struct knit__redis_url u;
    if (knit__redis_url_parse(url, &u) < 0)
        return -EINVAL;
    knit_redis *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->url = u;
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    knit_notify_init(&r->state);
    knit_backoff_init(&r->backoff, &reconnect_policy);
    if (r->epfd < 0) {
        int err = -errno;
        free(r);
        return err;
    }
    int err = ensure_connected(r);
    if (err < 0) {
        knit_redis_close(r);
        return err;
    }
    *out = r;
    return 0;
}

void knit_redis_close(knit_redis *r)
{
    if (!r)
        return;
    if (r->pump) {
        knit_cancel(r->pump);
        knit_join(r->pump);
        r->pump = NULL;
    }
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        /* Runs every pending callback with NULL (freeing abandoned
         * requests) and on_disconnect, which clears r->ac. */
        redisAsyncFree(ac);
        r->ac = NULL;
    }
    close(r->epfd);
    free(r);
}

void knit_redis_stats_get(const knit_redis *r, knit_redis_stats *out)
{
    *out = r->st;
}
