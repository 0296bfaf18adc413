// SPDX-License-Identifier: MIT
/*
 * Graceful shutdown of a TCP server on Ctrl-C: stop accepting, let the
 * connections in flight finish within a grace period, cancel the rest.
 * (tokio: a `select!` between `listener.accept()` and `signal::ctrl_c()`,
 * then `timeout(grace, join_set.join_all())` and `JoinSet::shutdown`.)
 *
 * The server echoes lines; a line starting with "slow" is answered after
 * 500 ms. Three clients: A says hello and leaves; B sends a slow request
 * just before the Ctrl-C, and gets its answer within the grace period; C
 * connects and never says anything, so its connection is still open when
 * the grace period ends and is cancelled. An operator task sends the
 * process SIGINT at t=100 ms, as Ctrl-C in a terminal would.
 *
 * On the manual clock, so the times printed are exact.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

#define GRACE_MS 1000

struct server {
    int lfd;
    int served, cancelled; /* connections that ended each way */
};

struct conn {
    struct server *srv;
    int fd;
};

static long long now(void)
{
    return (long long)knit_now();
}

/* One connection: echo lines until the peer leaves. */
static int serve(void *arg)
{
    struct conn *c = arg;
    char buf[256];
    ssize_t n;
    int err = 0;
    while ((n = knit_read(c->fd, buf, sizeof(buf))) > 0) {
        if (strncmp(buf, "slow", 4) == 0 && (err = knit_sleep(500)) < 0)
            break;
        if ((err = (int)knit_write_all(c->fd, buf, (size_t)n)) < 0)
            break;
        err = 0;
    }
    if (n < 0)
        err = (int)n;
    if (err == -ECANCELED) {
        printf("t=%lldms server: connection cut short\n", now());
        c->srv->cancelled++;
    } else {
        c->srv->served++;
    }
    knit_close(c->fd);
    return 0;
}

/* Accepts until the listener is closed, then drains with a grace period. */
static int acceptor(void *arg)
{
    struct server *srv = arg;
    struct conn conns[8];
    int nconns = 0;
    knit_group g;
    knit_group_init(&g, 0);
    int fd;
    while ((fd = knit_tcp_accept(srv->lfd, NULL, NULL)) >= 0 && nconns < 8) {
        conns[nconns] = (struct conn){srv, fd};
        knit_group_spawn(&g, serve, &conns[nconns++]);
    }
    printf("t=%lldms server: not accepting; %zu connections open, %d ms to "
           "finish\n",
           now(), knit_group_len(&g) - (size_t)srv->served, GRACE_MS);
    knit_scope grace;
    knit_scope_enter(&grace, knit_now() + GRACE_MS);
    int err = knit_group_wait(&g); /* at the deadline: cancels the rest */
    knit_scope_exit(&grace);
    printf("t=%lldms server: %s; %d connections served, %d cut short\n",
           now(), err == -ETIMEDOUT ? "grace period over" : "all done",
           srv->served, srv->cancelled);
    return 0;
}

/* Connects, sends @msg (unless NULL) at @at ms, prints the answer. */
struct client {
    int port;
    const char *name, *msg;
    int64_t at;
};

static int client(void *arg)
{
    struct client *cl = arg;
    int fd = knit_tcp_connect("127.0.0.1", cl->port);
    if (fd < 0)
        return fd;
    char buf[256];
    ssize_t n = 0;
    if (cl->msg) {
        knit_sleep_until(cl->at);
        knit_write_all(fd, cl->msg, strlen(cl->msg));
        printf("t=%lldms client %s: sent \"%s\"\n", now(), cl->name, cl->msg);
    }
    n = knit_read(fd, buf, sizeof(buf) - 1);
    if (n > 0) {
        buf[n] = '\0';
        printf("t=%lldms client %s: got \"%s\"\n", now(), cl->name, buf);
    } else {
        printf("t=%lldms client %s: the server closed the connection\n",
               now(), cl->name);
    }
    knit_close(fd);
    return 0;
}

/* Presses Ctrl-C at t=100 ms. */
static int operator(void *arg)
{
    (void)arg;
    knit_sleep_until(100);
    printf("t=%lldms operator: Ctrl-C\n", now());
    raise(SIGINT);
    return 0;
}

static int run(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    knit_signal_watch(&set); /* an early Ctrl-C is kept, not fatal */
    struct server srv = {.lfd = knit_tcp_listen("127.0.0.1", 0, 16)};
    if (srv.lfd < 0)
        return srv.lfd;
    int port = knit_local_port(srv.lfd);
    knit_task *acc = knit_spawn(acceptor, &srv);
    struct client a = {port, "A", "hello", 0};
    struct client b = {port, "B", "slow request", 90};
    struct client c = {port, "C", NULL, 0};
    knit_task *ta = knit_spawn(client, &a);
    knit_join(ta); /* A is done before anything else happens */
    knit_task *tb = knit_spawn(client, &b);
    knit_task *tc = knit_spawn(client, &c);
    knit_task *op = knit_spawn(operator, NULL);

    knit_ctrl_c();
    printf("t=%lldms server: SIGINT, closing the listener\n", now());
    knit_close(srv.lfd); /* wakes the acceptor with -EBADF */
    knit_join(acc);
    knit_join(tb);
    knit_join(tc);
    knit_join(op);
    return 0;
}

int main(void)
{
    knit_config cfg;
    knit_config_default(&cfg);
    cfg.clock = KNIT_CLOCK_MANUAL;
    cfg.workers = 1;
    return knit_run(&cfg, run, NULL);
}
