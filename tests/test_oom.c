// SPDX-License-Identifier: MIT
/*
 * The OOM loop: each scenario (a small program on the public API) runs
 * again and again with the runtime's 1st, 2nd, 3rd ... allocation failing
 * (core/alloc.h's seam), until it runs through without meeting the
 * failure. Every run must end cleanly: knit_run returns 0 (a documented
 * fallback absorbed the failure) or -ENOMEM (the scenario passed the
 * error up), never a crash, a hang or another error; LeakSanitizer checks
 * that nothing leaked. Each run is a forked child, so a crash is reported
 * as this test's failure with the allocation number that caused it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <knit.h>
#include <knit/http.h>

#include "core/alloc.h"

/* ---- scenarios: 0 on success, -ENOMEM when a call ran out ------------- */

static int child_task(void *arg)
{
    return (int)(intptr_t)arg;
}

static int sc_spawn_join(void *arg)
{
    (void)arg;
    knit_task *t[4];
    int n = 0, err = 0;
    for (; n < 4; n++) {
        knit_task_opts o = {.name = "child"};
        if (!(t[n] = knit_spawn_with(&o, child_task, (void *)(intptr_t)n))) {
            err = -ENOMEM;
            break;
        }
    }
    for (int i = 0; i < n; i++)
        if (knit_join(t[i]) != i)
            return -EIO;
    return err;
}

static int sc_channels(void *arg)
{
    (void)arg;
    int err = 0;
    knit_chan *b = knit_chan_new(sizeof(int), 4);
    knit_chan *u = knit_chan_new(sizeof(int), 0);
    knit_bcast *bc = knit_bcast_new(sizeof(int), 8);
    knit_bcast_rx *rx = bc ? knit_bcast_subscribe(bc) : NULL;
    if (!b || !u || !bc || !rx) {
        err = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < 100 && !err; i++) {
        int v;
        err = knit_chan_send(u, &i); /* unbounded: grows its buffer */
        if (!err && (err = knit_chan_send(b, &i)) == 0 &&
            (err = knit_chan_recv(b, &v)) == 0 && v != i)
            err = -EIO;
    }
    for (int i = 0; i < 100 && !err; i++) {
        int v;
        if ((err = knit_chan_recv(u, &v)) == 0 && v != i)
            err = -EIO;
    }
    if (!err) {
        int v = 7, w;
        err = knit_bcast_send(bc, &v);
        if (!err && (err = knit_bcast_recv(rx, &w)) == 0 && w != 7)
            err = -EIO;
    }
out:
    if (rx)
        knit_bcast_rx_free(rx);
    if (bc)
        knit_bcast_free(bc);
    if (u)
        knit_chan_unref(u);
    if (b)
        knit_chan_unref(b);
    return err;
}

static int sender(void *arg)
{
    int v = 42;
    return knit_chan_send(arg, &v);
}

static int sc_select_group(void *arg)
{
    (void)arg;
    knit_chan *c[3] = {0};
    int err = 0;
    for (int i = 0; i < 3; i++)
        if (!(c[i] = knit_chan_new(sizeof(int), 1)))
            err = -ENOMEM;
    knit_group g;
    knit_group_init(&g, 0);
    if (!err)
        err = knit_group_spawn(&g, sender, c[1]);
    if (!err) {
        int v = 0;
        knit_case cases[] = {
            knit_case_recv(c[0], &v),
            knit_case_recv(c[1], &v),
            knit_case_recv(c[2], &v),
            knit_case_deadline(knit_now() + 1000),
        };
        int r = knit_select(cases, 4);
        if (r != 1 || v != 42)
            err = r < 0 ? r : -EIO;
    }
    int gerr = knit_group_wait(&g);
    if (!err && gerr)
        err = gerr;
    for (int i = 0; i < 3; i++)
        if (c[i])
            knit_chan_unref(c[i]);
    return err;
}

static int job(void *arg)
{
    return (int)(intptr_t)arg * 2;
}

static int sc_blocking(void *arg)
{
    (void)arg;
    knit_task *t = knit_spawn_blocking(job, (void *)(intptr_t)21);
    if (!t)
        return -ENOMEM;
    return knit_join(t) == 42 ? 0 : -EIO;
}

static int sc_tcp(void *arg)
{
    (void)arg;
    int l = knit_tcp_listen("127.0.0.1", 0, 8);
    if (l < 0)
        return l;
    int err = 0, c = -1, a = -1;
    c = knit_tcp_connect("127.0.0.1", knit_local_port(l));
    if (c < 0)
        err = c;
    if (!err && (a = knit_tcp_accept(l, NULL, NULL)) < 0)
        err = a;
    char buf[5];
    if (!err && knit_write_all(c, "hello", 5) != 5)
        err = -EIO;
    if (!err) {
        ssize_t n = knit_read_exact(a, buf, 5);
        if (n < 0)
            err = (int)n;
        else if (memcmp(buf, "hello", 5) != 0)
            err = -EIO;
    }
    if (a >= 0)
        knit_close(a);
    if (c >= 0)
        knit_close(c);
    knit_close(l);
    return err;
}

/* The HTTP scenario's server: one response per connection. A failing
 * accept (e.g. -ENOMEM for the uring fd slot) is counted and retried, so
 * the client's connection waiting in the backlog is still served. */
struct http_srv {
    int lfd;
    int enomem; /* -ENOMEM results the server saw (and survived) */
};

static int http_serve_one(int fd)
{
    char req[1024];
    size_t got = 0;
    while (got < sizeof(req) - 1) {
        ssize_t n = knit_read(fd, req + got, sizeof(req) - 1 - got);
        if (n <= 0)
            return n < 0 ? (int)n : -EPIPE;
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                               "Connection: close\r\n\r\nhello";
    ssize_t w = knit_write_all(fd, resp, sizeof(resp) - 1);
    return w < 0 ? (int)w : 0;
}

static int http_server(void *arg)
{
    struct http_srv *s = arg;
    for (;;) {
        int fd = knit_tcp_accept(s->lfd, NULL, NULL);
        if (fd == -ENOMEM) {
            s->enomem++;
            continue;
        }
        if (fd < 0)
            return fd == -ECANCELED ? 0 : fd;
        if (http_serve_one(fd) == -ENOMEM)
            s->enomem++;
        knit_close(fd);
    }
}

/* A GET through knit_http (libcurl) against a knit server in the same
 * runtime. Only knit's own allocations fail (libcurl's are its own), so
 * the failure surfaces as -ENOMEM from the client call, or on the
 * server's side, where the connection is closed and the client sees it
 * end early: that run counts as -ENOMEM reported, by the server. A
 * deadline bounds the request: a lost connection must not hang. */
static int sc_http(void *arg)
{
    (void)arg;
    struct http_srv srv = {.lfd = knit_tcp_listen("127.0.0.1", 0, 8)};
    if (srv.lfd < 0)
        return srv.lfd;
    knit_http_client *c = knit_http_client_new(NULL);
    knit_task *st = c ? knit_spawn(http_server, &srv) : NULL;
    int err = !c ? -errno : !st ? -ENOMEM : 0;
    knit_http_response r;
    memset(&r, 0, sizeof(r));
    if (!err) {
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/x",
                 knit_local_port(srv.lfd));
        knit_scope sc;
        knit_scope_enter(&sc, knit_now() + 10000);
        err = knit_http_get(c, url, &r);
        knit_scope_exit(&sc);
        if (!err && (r.status != 200 || r.body_len != 5 ||
                     memcmp(r.body, "hello", 5) != 0))
            err = -EIO;
    }
    knit_http_response_destroy(&r);
    if (st) {
        knit_cancel(st);
        int sr = knit_join(st); /* -ENOMEM: it never got a stack */
        if (sr == -ENOMEM)
            srv.enomem++;
        else if (!err && sr != 0)
            err = sr;
    }
    if (err && err != -ENOMEM && srv.enomem > 0)
        err = -ENOMEM;
    knit_http_client_free(c);
    knit_close(srv.lfd);
    return err;
}

/* ---- the loop ------------------------------------------------------------ */

enum { MAX_FAULTS = 400 };

/* Runs @fn with the @n-th allocation failing, in a child. Returns the
 * child's wait status; *@pending says the failure never came. */
static int run_once(knit_fn fn, long n, int *result, bool *pending)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        alarm(60); /* a hang is a failure (SIGALRM), not a stuck suite */
        knit_config cfg;
        knit_config_default(&cfg);
        cfg.workers = 1;
        cfg.clock = KNIT_CLOCK_MANUAL;
        cfg.seed = 1;
        knit__alloc_fail_after(n);
        int out[2];
        out[0] = knit_run(&cfg, fn, NULL);
        out[1] = knit__alloc_fault_pending();
        knit__alloc_fail_after(0);
        if (write(pfd[1], out, sizeof(out)) != sizeof(out))
            _exit(3);
        close(pfd[1]);
        exit(0); /* exit, not _exit: LeakSanitizer runs at exit */
    }
    close(pfd[1]);
    int out[2] = {-1, -1};
    ssize_t got = read(pfd[0], out, sizeof(out));
    close(pfd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *result = got == sizeof(out) ? out[0] : -9999;
    *pending = got == sizeof(out) && out[1];
    return status;
}

static void oom_loop(const char *name, knit_fn fn)
{
    long n;
    int enomem = 0, absorbed = 0;
    for (n = 1; n <= MAX_FAULTS; n++) {
        int r;
        bool pending;
        int status = run_once(fn, n, &r, &pending);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("%s: allocation %ld failing: child %s %d (crash, leak "
                     "or, killed by 14, a hang)",
                     name, n, WIFEXITED(status) ? "exited" : "killed by",
                     WIFEXITED(status) ? WEXITSTATUS(status)
                                       : WTERMSIG(status));
        if (r != 0 && r != -ENOMEM)
            fail_msg("%s: allocation %ld failing: knit_run returned %d", name,
                     n, r);
        if (pending) {
            /* It ran through before the n-th allocation: all covered. */
            assert_int_equal(r, 0);
            break;
        }
        if (r == -ENOMEM)
            enomem++;
        else
            absorbed++;
    }
    assert_true(n <= MAX_FAULTS);
    printf("%s: %ld allocations, %d failures reported -ENOMEM, %d absorbed\n",
           name, n - 1, enomem, absorbed);
    /* The scenario allocates, or the loop proved nothing. */
    assert_true(n > 1);
}

static void spawn_and_join(void **state)
{
    (void)state;
    oom_loop("spawn_join", sc_spawn_join);
}

static void channels_and_broadcast(void **state)
{
    (void)state;
    oom_loop("channels", sc_channels);
}

static void select_and_group(void **state)
{
    (void)state;
    oom_loop("select_group", sc_select_group);
}

static void blocking_job(void **state)
{
    (void)state;
    oom_loop("blocking", sc_blocking);
}

static void tcp_connect_accept(void **state)
{
    (void)state;
    oom_loop("tcp", sc_tcp);
}

static void http_get(void **state)
{
    (void)state;
    oom_loop("http", sc_http);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spawn_and_join),
        cmocka_unit_test(channels_and_broadcast),
        cmocka_unit_test(select_and_group),
        cmocka_unit_test(blocking_job),
        cmocka_unit_test(tcp_connect_accept),
        cmocka_unit_test(http_get),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
