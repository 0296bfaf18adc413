/* SPDX-License-Identifier: MIT */
/*
 * knit/http.h - an HTTP client for tasks, on libcurl's multi-socket API.
 *
 *     knit_http_client *c = knit_http_client_new(NULL);
 *     knit_http_response r;
 *     knit_scope s;
 *     knit_scope_enter(&s, knit_now() + 5000);     // 5 s for the request
 *     int err = knit_http_get(c, "http://127.0.0.1:8080/", &r);
 *     knit_scope_exit(&s);
 *     if (err == 0)
 *         printf("%d, %zu bytes from %s\n", r.status, r.body_len, r.final_url);
 *     knit_http_response_destroy(&r);
 *     knit_http_client_free(c);
 *
 * One call per request, in a task: the task parks while the transfer runs
 * and any number of tasks may have requests in flight on one client. The
 * client owns a libcurl multi handle, so connections are pooled and reused
 * (keep-alive), redirects are followed, compressed bodies are decoded and
 * https works as libcurl does. curl's sockets are watched through knit's
 * I/O driver and its timers run on knit's clock, by one internal task per
 * client (the pump) that starts with the first request.
 *
 * Deadlines and cancellation come from knit_scope like everywhere else:
 * when the caller's scope fires or its task is cancelled, the transfer is
 * aborted at once (its connection is closed, not returned to the pool) and
 * the call returns -ETIMEDOUT / -ECANCELED.
 *
 * A client belongs to the worker of the task that first uses it: use it
 * from that worker's tasks only (with several workers, one client per
 * worker, or spawn the requesting tasks with knit_spawn_on(knit_worker_id(),
 * ...) so that they cannot be stolen). A call from another worker fails
 * with -EXDEV. Link with knit_http (CMake: knit::knit_http) and libcurl.
 */
#ifndef KNIT_HTTP_H
#define KNIT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "knit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct knit_http_client knit_http_client;

/* Client options; zero fields take the defaults shown. */
typedef struct knit_http_client_opts {
    const char *user_agent;     /* "knit/<version>" */
    int max_redirects;          /* 10; -1 = never follow redirects */
    size_t max_body;            /* 16 MiB; longer bodies fail with -EFBIG */
    int64_t connect_timeout_ms; /* 10,000 */
    long max_connections;       /* connection cache size, 64 */
    long max_per_host;          /* connections to one host at once, 0 = any */
    bool verbose;               /* libcurl's verbose trace on stderr */
} knit_http_client_opts;

/* One request; only @url is required. */
typedef struct knit_http_request {
    const char *method;          /* "GET" (NULL); "HEAD" sends no body back */
    const char *url;             /* absolute http:// or https:// URL */
    const char *const *headers;  /* NULL-terminated "Name: value" lines */
    const void *body;            /* request body (for POST, PUT) or NULL */
    size_t body_len;
    size_t max_body;             /* 0: the client's */
    int max_redirects;           /* 0: the client's; -1: do not follow */
} knit_http_request;

/*
 * A response, filled by a call that returned 0 (an HTTP response arrived,
 * whatever its status) and partly by one that failed (@error says why).
 * Strings are NUL-terminated and owned by the response; @body is too
 * (with a NUL after @body_len bytes, which need not be text).
 */
typedef struct knit_http_response {
    int status;             /* 200, 404, ...; 0 when no response came */
    char *body;             /* NULL when empty */
    size_t body_len;
    char *final_url;        /* the URL after redirects */
    char *content_type;     /* "text/html; charset=utf-8", or NULL */
    char *location;         /* a redirect not followed: its target, or NULL */
    int64_t retry_after_ms; /* Retry-After in ms; -1 when absent or 0 */
    int redirects;          /* redirects followed */
    char error[256];        /* why the call failed, "" on success */
} knit_http_response;

/**
 * knit_http_init() - initialise libcurl (and its TLS library) now.
 *
 * Optional: the first knit_http_client_new() does it otherwise, but that
 * can take tens of milliseconds (OpenSSL loads its configuration), which
 * a task should not spend holding its worker. Call it from main() before
 * knit_run(). Idempotent and thread-safe.
 * Return: 0, or -EIO when libcurl cannot be initialised.
 */
KNIT_API int knit_http_init(void);

/**
 * knit_http_client_new() - create a client.
 * @o: options, or NULL for the defaults.
 *
 * May be called anywhere; the requests must come from tasks.
 * Return: the client, or NULL with errno ENOMEM (or EIO when libcurl
 * cannot be initialised).
 */
KNIT_API knit_http_client *knit_http_client_new(const knit_http_client_opts *o);

/**
 * knit_http_client_free() - close every pooled connection and free @c.
 * Call from a task of @c's worker once no request is in flight on @c (or
 * outside any runtime if @c never ran a request). NULL is a no-op.
 */
KNIT_API void knit_http_client_free(knit_http_client *c);

/**
 * knit_http_send() - perform @req and wait for its response.
 * @c:    the client.
 * @req:  the request.
 * @resp: filled in (any previous contents are overwritten, not freed);
 *        release it with knit_http_response_destroy() whatever the result.
 *
 * Cancellation point; call from a task.
 * Return: 0 when a response arrived (check resp->status), or a negative
 * errno: -EINVAL bad URL or request, -ECONNREFUSED, -ECONNRESET (the
 * server closed or reset the connection, or sent nothing), -EHOSTUNREACH
 * (name not resolved or host unreachable), -EPROTO (not HTTP), -ELOOP (too
 * many redirects), -EFBIG (body over the limit), -EMSGSIZE (a response
 * header over libcurl's 100 KB limit), -ETIMEDOUT (connect
 * timeout or the scope's deadline), -ECANCELED, -ENOMEM, -EXDEV (called
 * from a worker other than the client's: see the top), -EIO (other
 * libcurl errors; see resp->error).
 */
KNIT_API int knit_http_send(knit_http_client *c, const knit_http_request *req,
                            knit_http_response *resp);

/* knit_http_send() of a GET of @url with the client's defaults. */
KNIT_API int knit_http_get(knit_http_client *c, const char *url,
                           knit_http_response *resp);

/* Free what @resp owns and reset it to empty. Safe to call twice. */
KNIT_API void knit_http_response_destroy(knit_http_response *resp);

/* Counters of a client, for tests and progress displays. */
typedef struct knit_http_stats {
    uint64_t requests;       /* knit_http_send calls that reached libcurl */
    uint64_t in_flight;      /* requests now running */
    uint64_t connects;       /* new connections opened */
    uint64_t aborted;        /* requests ended by a scope or cancellation */
} knit_http_stats;

/* Copy @c's counters into @out. */
KNIT_API void knit_http_client_stats(const knit_http_client *c,
                                     knit_http_stats *out);

#ifdef __cplusplus
}
#endif

#endif
