// SPDX-License-Identifier: MIT
/*
 * knit/http.h: the libcurl client against a small HTTP server written in
 * the test on knit's sockets, in the same runtime. Checks responses
 * (status, body, content type, final URL after redirects, Retry-After),
 * connection reuse (one accepted connection for sequential requests),
 * many requests in flight at once, every error the API documents
 * (refused, reset, not HTTP, redirect loop, body over the limit, bad URL),
 * and that a scope deadline or a cancel aborts a transfer the server never
 * answers: the call returns -ETIMEDOUT / -ECANCELED and the server sees
 * its connection closed. On the manual clock, so deadlines are instant.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <knit/http.h>

#include "kt.h"

/* ---- the test server ----------------------------------------------------- */

struct server {
    int lfd;
    int port;
    knit_task *acceptor;
    int accepted;    /* connections accepted */
    int live;        /* connections not yet closed */
    int closed_hung; /* /hang connections the client closed */
    char base[64];   /* "http://127.0.0.1:PORT" */
};

struct conn {
    struct server *s;
    int fd;
};

static int send_str(int fd, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return knit_write_all(fd, buf, (size_t)n) == n ? 0 : -1;
}

/* Reads one request head (and a Content-Length body) into buf. Returns
 * the body length, or -1 when the peer closed or sent too much. */
static int read_request(int fd, char *buf, size_t cap, char **body)
{
    size_t len = 0;
    char *end;
    while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
        if (len == cap)
            return -1;
        ssize_t n = knit_read(fd, buf + len, cap - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
    *end = '\0';
    *body = end + 4;
    const char *cl = strcasestr(buf, "content-length:");
    size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
    size_t have = len - (size_t)(*body - buf);
    if (want > cap - (size_t)(*body - buf))
        return -1;
    if (want > have &&
        knit_read_exact(fd, *body + have, want - have) != (ssize_t)(want - have))
        return -1;
    return (int)want;
}

static int serve(void *arg)
{
    struct conn *c = arg;
    char buf[8192], path[256], method[16];
    char *body;
    int blen;
    while ((blen = read_request(c->fd, buf, sizeof(buf), &body)) >= 0) {
        if (sscanf(buf, "%15s %255s", method, path) != 2)
            break;
        if (strcmp(path, "/hello") == 0) {
            send_str(c->fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                            "Content-Length: 5\r\n\r\n%s",
                     strcmp(method, "HEAD") == 0 ? "" : "hello");
        } else if (strcmp(path, "/redirect") == 0) {
            send_str(c->fd, "HTTP/1.1 302 Found\r\nLocation: /hello\r\n"
                            "Content-Length: 0\r\n\r\n");
        } else if (strcmp(path, "/loop") == 0) {
            send_str(c->fd, "HTTP/1.1 302 Found\r\nLocation: /loop\r\n"
                            "Content-Length: 0\r\n\r\n");
        } else if (strcmp(path, "/busy") == 0) {
            send_str(c->fd, "HTTP/1.1 503 Busy\r\nRetry-After: 7\r\n"
                            "Content-Length: 4\r\n\r\nbusy");
        } else if (strcmp(path, "/big") == 0) {
            static char big[100000];
            memset(big, 'x', sizeof(big));
            send_str(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                     sizeof(big));
            knit_write_all(c->fd, big, sizeof(big));
        } else if (strcmp(path, "/chunked-big") == 0) {
            /* No length up front: the limit must stop the stream. */
            send_str(c->fd, "HTTP/1.1 200 OK\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n");
            char chunk[1024 + 16];
            int n = snprintf(chunk, sizeof(chunk), "400\r\n");
            memset(chunk + n, 'y', 1024);
            memcpy(chunk + n + 1024, "\r\n", 2);
            for (int i = 0; i < 64; i++)
                if (knit_write_all(c->fd, chunk, (size_t)n + 1026) < 0)
                    break;
            break;
        } else if (strcmp(path, "/echo") == 0) {
            send_str(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
                     blen);
            knit_write_all(c->fd, body, (size_t)blen);
        } else if (strcmp(path, "/hugeheader") == 0) {
            /* One header line of 300 KB: more than libcurl accepts. */
            static char line[300000];
            memset(line, 'h', sizeof(line));
            send_str(c->fd, "HTTP/1.1 200 OK\r\nX-Big: ");
            if (knit_write_all(c->fd, line, sizeof(line)) < 0)
                break;
            send_str(c->fd, "\r\nContent-Length: 2\r\n\r\nok");
            break;
        } else if (strcmp(path, "/reset") == 0) {
            break; /* close without a word */
        } else if (strcmp(path, "/garbage") == 0) {
            send_str(c->fd, "SMTP ready\r\n\r\n");
            break;
        } else if (strcmp(path, "/hang") == 0) {
            /* Never answer; wait for the client to give up. */
            if (knit_read(c->fd, buf, sizeof(buf)) == 0)
                c->s->closed_hung++;
            break;
        } else {
            send_str(c->fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
    knit_close(c->fd);
    c->s->live--;
    free(c);
    return 0;
}

static int accept_loop(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int fd = knit_tcp_accept(s->lfd, NULL, NULL);
        if (fd < 0)
            return fd;
        s->accepted++;
        s->live++;
        struct conn *c = malloc(sizeof(*c));
        *c = (struct conn){s, fd};
        knit_detach(knit_spawn_on(knit_worker_id(), NULL, serve, c));
    }
}

/* The server's tasks are pinned to the test's worker like the client's:
 * its counters are plain ints, and the checks count yields. */
static void server_start(struct server *s)
{
    memset(s, 0, sizeof(*s));
    s->lfd = knit_tcp_listen("127.0.0.1", 0, 64);
    assert_true(s->lfd >= 0);
    s->port = knit_local_port(s->lfd);
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
    s->acceptor = knit_spawn_on(knit_worker_id(), NULL, accept_loop, s);
}

static void server_stop(struct server *s)
{
    knit_cancel(s->acceptor);
    knit_join(s->acceptor);
    knit_close(s->lfd);
    /* The client closed its connections: wait for the server's side. */
    while (s->live > 0)
        knit_sleep(1);
}

/* GET base+path into r with client c. */
static int get(knit_http_client *c, struct server *s, const char *path,
               knit_http_response *r)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", s->base, path);
    return knit_http_get(c, url, r);
}

/* ---- tests --------------------------------------------------------------- */

static int t_basics(void *arg)
{
    (void)arg;
    struct server s;
    server_start(&s);
    knit_http_client *c = knit_http_client_new(NULL);
    assert_non_null(c);
    knit_http_response r;

    assert_int_equal(get(c, &s, "/hello", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 5);
    assert_string_equal(r.body, "hello");
    assert_string_equal(r.content_type, "text/plain");
    assert_int_equal(r.retry_after_ms, -1);
    assert_string_equal(r.error, "");
    knit_http_response_destroy(&r);

    assert_int_equal(get(c, &s, "/redirect", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.redirects, 1);
    char want[128];
    snprintf(want, sizeof(want), "%s/hello", s.base);
    assert_string_equal(r.final_url, want);
    knit_http_response_destroy(&r);

    assert_int_equal(get(c, &s, "/busy", &r), 0);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.retry_after_ms, 7000);
    assert_string_equal(r.body, "busy");
    knit_http_response_destroy(&r);

    assert_int_equal(get(c, &s, "/nothing-here", &r), 0);
    assert_int_equal(r.status, 404);
    assert_null(r.body);
    knit_http_response_destroy(&r);

    /* HEAD: status and headers, no body. */
    char url[128];
    snprintf(url, sizeof(url), "%s/hello", s.base);
    knit_http_request head = {.method = "HEAD", .url = url};
    assert_int_equal(knit_http_send(c, &head, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    knit_http_response_destroy(&r);

    /* POST with a body and a header. */
    snprintf(url, sizeof(url), "%s/echo", s.base);
    const char *hdrs[] = {"X-Test: 1", NULL};
    knit_http_request post = {.method = "POST", .url = url, .headers = hdrs,
                              .body = "ping-pong", .body_len = 9};
    assert_int_equal(knit_http_send(c, &post, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 9);
    assert_memory_equal(r.body, "ping-pong", 9);
    knit_http_response_destroy(&r);

    /* Everything above went over one kept-alive connection. */
    assert_int_equal(s.accepted, 1);
    knit_http_stats st;
    knit_http_client_stats(c, &st);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.requests, 6);
    assert_int_equal(st.in_flight, 0);

    knit_http_client_free(c);
    server_stop(&s);
    return 0;
}

static void responses_redirects_and_keep_alive(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_basics, NULL), 0);
}

static int t_errors(void *arg)
{
    (void)arg;
    struct server s;
    server_start(&s);
    knit_http_client_opts o = {.max_body = 1000, .max_redirects = 5};
    knit_http_client *c = knit_http_client_new(&o);
    knit_http_response r;

    assert_int_equal(get(c, &s, "/big", &r), -EFBIG);
    assert_int_equal(r.status, 200);
    assert_null(r.body);
    kt_expect_in(r.error, "limit");
    knit_http_response_destroy(&r);

    assert_int_equal(get(c, &s, "/chunked-big", &r), -EFBIG);
    knit_http_response_destroy(&r);

    assert_int_equal(get(c, &s, "/loop", &r), -ELOOP);
    assert_int_equal(r.redirects, 5);
    knit_http_response_destroy(&r);

    assert_int_equal(get(c, &s, "/reset", &r), -ECONNRESET);
    assert_int_equal(r.status, 0);
    assert_true(r.error[0] != '\0');
    knit_http_response_destroy(&r);

    assert_int_equal(get(c, &s, "/garbage", &r), -EPROTO);
    knit_http_response_destroy(&r);

    /* A header too large for libcurl: an error with a reason, no body. */
    assert_int_equal(get(c, &s, "/hugeheader", &r), -EMSGSIZE);
    assert_null(r.body);
    assert_string_equal(r.error, "response header too large");
    knit_http_response_destroy(&r);

    /* A request's own limit overrides the client's. */
    char url[128];
    snprintf(url, sizeof(url), "%s/big", s.base);
    knit_http_request big = {.url = url, .max_body = 200000};
    assert_int_equal(knit_http_send(c, &big, &r), 0);
    assert_int_equal(r.body_len, 100000);
    knit_http_response_destroy(&r);

    /* A request may refuse to follow redirects and see the Location. */
    snprintf(url, sizeof(url), "%s/redirect", s.base);
    knit_http_request nofollow = {.url = url, .max_redirects = -1};
    assert_int_equal(knit_http_send(c, &nofollow, &r), 0);
    assert_int_equal(r.status, 302);
    char want[128];
    snprintf(want, sizeof(want), "%s/hello", s.base);
    assert_string_equal(r.location, want);
    knit_http_response_destroy(&r);

    assert_int_equal(knit_http_get(c, "htp:/nonsense", &r), -EINVAL);
    knit_http_response_destroy(&r);
    assert_int_equal(knit_http_get(c, "ftp://127.0.0.1/x", &r), -EINVAL);
    knit_http_response_destroy(&r);
    assert_int_equal(knit_http_get(c, NULL, &r), -EINVAL);
    knit_http_response_destroy(&r);
    assert_int_equal(knit_http_send(NULL, &big, &r), -EINVAL);
    knit_http_response_destroy(&r);

    knit_http_client_free(c);
    server_stop(&s);

    /* Nobody listens on the closed listener's port any more. */
    c = knit_http_client_new(NULL);
    assert_int_equal(get(c, &s, "/hello", &r), -ECONNREFUSED);
    knit_http_response_destroy(&r);
    knit_http_client_free(c);
    return 0;
}

static void every_documented_error(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_errors, NULL), 0);
}

struct fetch {
    knit_http_client *c;
    struct server *s;
    const char *path;
    int64_t deadline; /* of the request's scope, or KNIT_FOREVER */
    int result;
    int status;
};

static int fetch_task(void *arg)
{
    struct fetch *f = arg;
    knit_scope sc;
    knit_http_response r;
    knit_scope_enter(&sc, f->deadline);
    f->result = get(f->c, f->s, f->path, &r);
    knit_scope_exit(&sc);
    f->status = r.status;
    knit_http_response_destroy(&r);
    return 0;
}

static int t_many(void *arg)
{
    (void)arg;
    struct server s;
    server_start(&s);
    knit_http_client *c = knit_http_client_new(NULL);
    enum { N = 40 };
    struct fetch f[N];
    knit_task *t[N];
    for (int i = 0; i < N; i++) {
        f[i] = (struct fetch){c, &s, i % 2 ? "/hello" : "/redirect",
                              KNIT_FOREVER, 99, 0};
        /* Pinned: the client belongs to this worker. */
        t[i] = knit_spawn_on(knit_worker_id(), NULL, fetch_task, &f[i]);
    }
    for (int i = 0; i < N; i++) {
        knit_join(t[i]);
        assert_int_equal(f[i].result, 0);
        assert_int_equal(f[i].status, 200);
    }
    /* Up to one connection per request, and all of them kept alive. */
    assert_true(s.accepted >= 1 && s.accepted <= N);
    knit_http_client_free(c);
    server_stop(&s);
    return 0;
}

static void forty_requests_in_flight_at_once(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_many, NULL), 0);
}

static int t_other_worker(void *arg)
{
    (void)arg;
    struct server s;
    server_start(&s);
    knit_http_client *c = knit_http_client_new(NULL);
    struct fetch here = {c, &s, "/hello", KNIT_FOREVER, 99, 0};
    struct fetch there = {c, &s, "/hello", KNIT_FOREVER, 99, 0};
    fetch_task(&here); /* the client now belongs to this worker */
    assert_int_equal(here.result, 0);
    assert_int_equal(here.status, 200);
    knit_task *t = knit_spawn_on(1, NULL, fetch_task, &there);
    assert_non_null(t);
    knit_join(t);
    assert_int_equal(there.result, -EXDEV);
    /* The client still serves its own worker. */
    here.result = 99;
    fetch_task(&here);
    assert_int_equal(here.result, 0);
    knit_http_client_free(c);
    server_stop(&s);
    return 0;
}

static void a_call_from_another_worker_is_refused(void **state)
{
    (void)state;
    if (kt_workers() < 2)
        skip(); /* runs in test_http_w2 / _w4 */
    assert_int_equal(kt_run(t_other_worker, NULL), 0);
}

static int t_abort(void *arg)
{
    (void)arg;
    struct server s;
    server_start(&s);
    knit_http_client *c = knit_http_client_new(NULL);

    /* The scope's deadline aborts a request the server never answers. */
    int64_t t0 = knit_now();
    struct fetch a = {c, &s, "/hang", t0 + 5000, 99, -1};
    knit_task *ta = knit_spawn_on(knit_worker_id(), NULL, fetch_task, &a);
    knit_join(ta);
    assert_int_equal(a.result, -ETIMEDOUT);
    assert_int_equal(knit_now(), t0 + 5000);
    assert_int_equal(a.status, 0);

    /* So does cancelling the task. */
    struct fetch b = {c, &s, "/hang", KNIT_FOREVER, 99, -1};
    knit_task *tb = knit_spawn_on(knit_worker_id(), NULL, fetch_task, &b);
    knit_sleep(100);
    knit_cancel(tb);
    knit_join(tb);
    assert_int_equal(b.result, -ECANCELED);

    knit_http_stats st;
    knit_http_client_stats(c, &st);
    assert_int_equal(st.aborted, 2);
    assert_int_equal(st.in_flight, 0);

    /* The aborted connections were closed, not pooled: the server sees
     * both peers gone, and the client still works on a new one. */
    knit_http_response r;
    assert_int_equal(get(c, &s, "/hello", &r), 0);
    assert_int_equal(r.status, 200);
    knit_http_response_destroy(&r);
    for (int i = 0; i < 100 && s.closed_hung < 2; i++)
        knit_yield();
    assert_int_equal(s.closed_hung, 2);

    knit_http_client_free(c);
    server_stop(&s);
    return 0;
}

static void deadline_and_cancel_abort_the_transfer(void **state)
{
    (void)state;
    assert_int_equal(kt_run(t_abort, NULL), 0);
}

int main(void)
{
    assert_int_equal(knit_http_init(), 0); /* before any runtime */
    assert_int_equal(knit_http_init(), 0); /* idempotent */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(responses_redirects_and_keep_alive),
        cmocka_unit_test(every_documented_error),
        cmocka_unit_test(forty_requests_in_flight_at_once),
        cmocka_unit_test(a_call_from_another_worker_is_refused),
        cmocka_unit_test(deadline_and_cancel_abort_the_transfer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
