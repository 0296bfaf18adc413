// SPDX-License-Identifier: MIT
/*
 * knit/redis.h against a real redis-server that the test starts itself on
 * 127.0.0.1 (a free port from 32600 up, no persistence) and kills by its
 * PID at the end: commands and every kind of reply, pipelining from many
 * tasks on one connection, an error reply, a scope deadline and a cancel
 * while the reply is outstanding (the late reply must be dropped safely,
 * which ASan checks), the server killed (-ECONNRESET, then -ECONNREFUSED)
 * and restarted (the next command reconnects), SELECT of a database, and
 * bad URLs. On the monotonic clock: the server is another process, so the
 * manual clock would jump deadlines while it works. Skipped when
 * redis-server is not installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <cmocka.h>

#include <knit/redis.h>

#include "kt.h"

/* ---- the server ---------------------------------------------------------- */

static pid_t server_pid = -1;
static int server_port;
static char url[64];

/* Whether something accepts connections on @port (plain blocking I/O). */
static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* Start redis-server on server_port; false when it did not come up. */
static bool server_start(void)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", server_port);
    server_pid = fork();
    if (server_pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execlp("redis-server", "redis-server", "--port", port, "--bind",
               "127.0.0.1", "--save", "", "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        if (port_open(server_port))
            return true;
        int st;
        if (waitpid(server_pid, &st, WNOHANG) == server_pid) {
            server_pid = -1;
            return false;
        }
        usleep(20000);
    }
    return false;
}

static void server_kill(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
    server_pid = -1;
}

static int setup(void **state)
{
    (void)state;
    /* A port nobody listens on, in 32600..32759: below Linux's range for
     * client sockets (so none holds it when the server restarts) and
     * above the ranges of tests/crawl/redis_e2e.sh, whose servers could
     * otherwise take it while ours restarts. Moved by our PID. */
    for (int i = 0; i < 50; i++) {
        server_port = 32600 + (int)((getpid() * 7 + i * 13) % 160);
        if (!port_open(server_port) && server_start())
            break;
        server_kill();
    }
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", server_port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    server_kill();
    return 0;
}

/* A cmocka test @name running @body as main, skipped without a server. */
#define SERVER_TEST(name, body)                                                \
    static void name(void **state)                                             \
    {                                                                          \
        (void)state;                                                           \
        if (server_pid <= 0)                                                   \
            skip();                                                            \
        assert_int_equal(run_real(body, NULL), 0);                             \
    }

/* Runs fn as main on the monotonic clock. */
static int run_real(knit_fn fn, void *arg)
{
    knit_config cfg;
    kt_config(&cfg);
    cfg.clock = KNIT_CLOCK_MONOTONIC;
    return kt_run_cfg(&cfg, fn, arg);
}

static knit_redis *connect_ok(const char *u)
{
    knit_redis *r = NULL;
    assert_int_equal(knit_redis_connect(u, &r), 0);
    assert_non_null(r);
    return r;
}

/* ---- commands ------------------------------------------------------------ */

static int basic_body(void *arg)
{
    (void)arg;
    knit_redis *r = connect_ok(url);
    knit_redis_reply *rep;
    assert_int_equal(knit_redis_command(r, &rep, "SET %s %s", "k", "v1"), 0);
    assert_int_equal(rep->type, KNIT_REDIS_STATUS);
    assert_string_equal(rep->str, "OK");
    knit_redis_reply_free(rep);
    assert_int_equal(knit_redis_command(r, &rep, "GET k"), 0);
    assert_int_equal(rep->type, KNIT_REDIS_STRING);
    assert_string_equal(rep->str, "v1");
    knit_redis_reply_free(rep);
    assert_int_equal(knit_redis_command(r, &rep, "GET nothing-here"), 0);
    assert_int_equal(rep->type, KNIT_REDIS_NIL);
    knit_redis_reply_free(rep);
    /* Binary-safe arguments through the argv variant. */
    const char *argv[] = {"RPUSH", "l", "a\0b", "c"};
    size_t lens[] = {5, 1, 3, 1};
    assert_int_equal(knit_redis_command_argv(r, &rep, 4, argv, lens), 0);
    assert_int_equal(rep->type, KNIT_REDIS_INTEGER);
    assert_int_equal(rep->integer, 2);
    knit_redis_reply_free(rep);
    assert_int_equal(knit_redis_command(r, &rep, "LRANGE l 0 -1"), 0);
    assert_int_equal(rep->type, KNIT_REDIS_ARRAY);
    assert_int_equal(rep->elements, 2);
    assert_int_equal(rep->element[0]->len, 3);
    assert_memory_equal(rep->element[0]->str, "a\0b", 3);
    assert_string_equal(rep->element[1]->str, "c");
    knit_redis_reply_free(rep);
    assert_int_equal(knit_redis_command(r, NULL, "DEL k l"), 0);
    assert_int_equal(knit_redis_command_argv(r, NULL, 0, argv, NULL),
                     -EINVAL);
    knit_redis_close(r);
    return 0;
}

SERVER_TEST(redis_commands_return_each_kind_of_reply, basic_body)

/* ---- pipelining ---------------------------------------------------------- */

enum { PIPE_TASKS = 100, PIPE_EACH = 20 };

struct pipe_ctx {
    knit_redis *r;
    int seen_max; /* most replies outstanding at once */
};

static int incr_task(void *arg)
{
    struct pipe_ctx *p = arg;
    for (int i = 0; i < PIPE_EACH; i++) {
        knit_redis_reply *rep;
        int err = knit_redis_command(p->r, &rep, "INCR counter");
        if (err)
            return err;
        knit_redis_stats st;
        knit_redis_stats_get(p->r, &st);
        if ((int)st.in_flight > p->seen_max)
            p->seen_max = (int)st.in_flight;
        knit_redis_reply_free(rep);
    }
    return 0;
}

static int pipeline_body(void *arg)
{
    (void)arg;
    struct pipe_ctx p = {.r = connect_ok(url)};
    knit_redis_command(p.r, NULL, "DEL counter");
    knit_group g;
    knit_group_init(&g, 0);
    for (int i = 0; i < PIPE_TASKS; i++)
        assert_int_equal(knit_group_spawn(&g, incr_task, &p), 0);
    assert_int_equal(knit_group_wait(&g), 0);
    knit_redis_reply *rep;
    assert_int_equal(knit_redis_command(p.r, &rep, "GET counter"), 0);
    assert_int_equal(atoi(rep->str), PIPE_TASKS * PIPE_EACH);
    knit_redis_reply_free(rep);
    knit_redis_stats st;
    knit_redis_stats_get(p.r, &st);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.in_flight, 0);
    assert_true(p.seen_max > 1); /* really pipelined */
    knit_redis_close(p.r);
    return 0;
}

SERVER_TEST(redis_many_tasks_pipeline_on_one_connection, pipeline_body)

/* ---- errors -------------------------------------------------------------- */

static int error_body(void *arg)
{
    (void)arg;
    knit_redis *r = connect_ok(url);
    knit_redis_reply *rep;
    assert_int_equal(knit_redis_command(r, NULL, "SET s notanumber"), 0);
    assert_int_equal(knit_redis_command(r, &rep, "INCR s"), -EPROTO);
    assert_non_null(rep);
    assert_int_equal(rep->type, KNIT_REDIS_ERROR);
    kt_expect_in(rep->str, "not an integer");
    knit_redis_reply_free(rep);
    assert_int_equal(knit_redis_command(r, &rep, "NOSUCHCOMMAND"), -EPROTO);
    knit_redis_reply_free(rep);
    /* The connection is still good. */
    assert_int_equal(knit_redis_command(r, NULL, "PING"), 0);
    knit_redis_close(r);
    return 0;
}

SERVER_TEST(redis_error_reply_is_eproto_with_message, error_body)

static int select_body(void *arg)
{
    (void)arg;
    char u3[80];
    snprintf(u3, sizeof(u3), "%s/3", url);
    knit_redis *r3 = connect_ok(u3), *r0 = connect_ok(url);
    knit_redis_reply *rep;
    assert_int_equal(knit_redis_command(r3, NULL, "SET only-in-3 x"), 0);
    assert_int_equal(knit_redis_command(r0, &rep, "EXISTS only-in-3"), 0);
    assert_int_equal(rep->integer, 0);
    knit_redis_reply_free(rep);
    assert_int_equal(knit_redis_command(r3, &rep, "EXISTS only-in-3"), 0);
    assert_int_equal(rep->integer, 1);
    knit_redis_reply_free(rep);
    knit_redis_close(r3);
    knit_redis_close(r0);
    /* The server has 16 databases. */
    snprintf(u3, sizeof(u3), "%s/999", url);
    knit_redis *bad = NULL;
    assert_int_equal(knit_redis_connect(u3, &bad), -EPROTO);
    assert_null(bad);
    return 0;
}

SERVER_TEST(redis_url_selects_the_database, select_body)

static int bad_url_body(void *arg)
{
    (void)arg;
    static const char *const bad[] = {
        "http://127.0.0.1:6379", "redis://", "redis://:6379",
        "redis://127.0.0.1:0", "redis://127.0.0.1:70000",
        "redis://127.0.0.1:12x", "redis://127.0.0.1:6379/x",
        "redis://[::1", "redis://user@127.0.0.1", NULL,
    };
    for (int i = 0; bad[i]; i++) {
        knit_redis *r = (knit_redis *)1;
        assert_int_equal(knit_redis_connect(bad[i], &r), -EINVAL);
        assert_null(r);
    }
    knit_redis *r = (knit_redis *)1;
    assert_int_equal(knit_redis_connect(NULL, &r), -EINVAL);
    /* Nothing listens on port 1. */
    assert_int_equal(knit_redis_connect("redis://127.0.0.1:1", &r),
                     -ECONNREFUSED);
    assert_null(r);
    return 0;
}

static void redis_bad_url_is_einval(void **state)
{
    (void)state;
    assert_int_equal(run_real(bad_url_body, NULL), 0);
}

/* ---- deadlines and cancellation ------------------------------------------ */

static int timeout_body(void *arg)
{
    (void)arg;
    knit_redis *r = connect_ok(url);
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 100);
    int64_t t0 = knit_now();
    int err = knit_redis_command(r, NULL, "BLPOP never-pushed 1");
    knit_scope_exit(&s);
    assert_int_equal(err, -ETIMEDOUT);
    assert_true(knit_now() - t0 < 900);
    knit_redis_stats st;
    knit_redis_stats_get(r, &st);
    assert_int_equal(st.abandoned, 1);
    /* Queued behind the BLPOP: its late reply is dropped first. */
    knit_redis_reply *rep;
    assert_int_equal(knit_redis_command(r, &rep, "PING"), 0);
    assert_string_equal(rep->str, "PONG");
    knit_redis_reply_free(rep);
    knit_redis_stats_get(r, &st);
    assert_int_equal(st.in_flight, 0);
    /* Abandoned again, then closed while the reply is outstanding. */
    knit_scope_enter(&s, knit_now() + 50);
    assert_int_equal(knit_redis_command(r, NULL, "BLPOP never-pushed 1"),
                     -ETIMEDOUT);
    knit_scope_exit(&s);
    knit_redis_close(r);
    return 0;
}

SERVER_TEST(redis_scope_deadline_times_out_and_drops_late_reply, timeout_body)

static int blpop_task(void *arg)
{
    return knit_redis_command(arg, NULL, "BLPOP never-pushed 1");
}

static int cancel_body(void *arg)
{
    (void)arg;
    knit_redis *r = connect_ok(url);
    knit_task *t = knit_spawn(blpop_task, r);
    assert_int_equal(knit_sleep(50), 0);
    knit_cancel(t);
    assert_int_equal(knit_join(t), -ECANCELED);
    assert_int_equal(knit_redis_command(r, NULL, "PING"), 0);
    knit_redis_close(r);
    return 0;
}

SERVER_TEST(redis_cancel_while_waiting_is_ecanceled, cancel_body)

/* ---- the server goes away and comes back --------------------------------- */

static int restart_body(void *arg)
{
    (void)arg;
    knit_redis *r = connect_ok(url);
    assert_int_equal(knit_redis_command(r, NULL, "PING"), 0);
    server_kill();
    int err = knit_redis_command(r, NULL, "PING");
    assert_true(err == -ECONNRESET || err == -ECONNREFUSED);
    err = knit_redis_command(r, NULL, "PING");
    assert_true(err == -ECONNRESET || err == -ECONNREFUSED);
    assert_true(server_start());
    /* A caller that retries rides over the restart. */
    knit_scope s;
    knit_scope_enter(&s, knit_now() + 5000);
    while ((err = knit_redis_command(r, NULL, "PING")) == -ECONNREFUSED ||
           err == -ECONNRESET)
        ;
    knit_scope_exit(&s);
    assert_int_equal(err, 0);
    knit_redis_stats st;
    knit_redis_stats_get(r, &st);
    assert_int_equal(st.connects, 2);
    knit_redis_close(r);
    return 0;
}

SERVER_TEST(redis_server_killed_then_restarted_reconnects, restart_body)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(redis_bad_url_is_einval),
        cmocka_unit_test(redis_commands_return_each_kind_of_reply),
        cmocka_unit_test(redis_many_tasks_pipeline_on_one_connection),
        cmocka_unit_test(redis_error_reply_is_eproto_with_message),
        cmocka_unit_test(redis_url_selects_the_database),
        cmocka_unit_test(redis_scope_deadline_times_out_and_drops_late_reply),
        cmocka_unit_test(redis_cancel_while_waiting_is_ecanceled),
        cmocka_unit_test(redis_server_killed_then_restarted_reconnects),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
