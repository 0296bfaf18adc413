// SPDX-License-Identifier: MIT
/*
 * Echo server: the tutorial accept loop. One task accepts connections and
 * spawns a task per connection, which reads and writes back until the
 * client leaves. Every call that waits (accept, read, write) is plain
 * sequential code that parks only its own task, and a slow client is
 * bounded by one scope around the read (an idle timeout). A client in the
 * same program sends lines and checks the echoes, then three clients run
 * at once. The server listens on 127.0.0.1, port 0 (the kernel picks one).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

#define IDLE_MS 5000

/* One connection: echo until end of file, an error or IDLE_MS of silence. */
static int serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[1024];
    for (;;) {
        knit_scope idle;
        knit_scope_enter(&idle, knit_now() + IDLE_MS);
        ssize_t n = knit_read(fd, buf, sizeof(buf));
        knit_scope_exit(&idle);
        if (n <= 0 || knit_write_all(fd, buf, (size_t)n) < 0)
            break;
    }
    knit_close(fd);
    return 0;
}

/* The accept loop: a task per connection, until cancelled. */
static int accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = knit_tcp_accept(lfd, NULL, NULL);
        if (fd < 0)
            return fd == -ECANCELED ? 0 : fd;
        knit_task *t = knit_spawn(serve_conn, (void *)(intptr_t)fd);
        if (!t) {
            knit_close(fd); /* out of memory: drop this one, keep serving */
            continue;
        }
        knit_detach(t);
    }
}

/* Sends @line and reads the echo into @echo; 0 or -errno. */
static int echo_once(int fd, const char *line, char *echo)
{
    size_t n = strlen(line);
    ssize_t r = knit_write_all(fd, line, n);
    if (r >= 0)
        r = knit_read_exact(fd, echo, n);
    echo[r >= 0 ? n : 0] = '\0';
    return r < 0 ? (int)r : 0;
}

struct load {
    int port;        /* the server's */
    atomic_int good; /* lines echoed correctly; the clients may run on
                      * different workers (one per core), hence atomic */
};

/* A busy client: 100 numbered lines, each checked. */
static int busy_client(void *arg)
{
    struct load *ld = arg;
    int fd = knit_tcp_connect("127.0.0.1", ld->port);
    if (fd < 0)
        return fd;
    for (int i = 0; i < 100; i++) {
        char line[32], echo[32];
        snprintf(line, sizeof(line), "line %d\n", i);
        if (echo_once(fd, line, echo) == 0 && strcmp(line, echo) == 0)
            atomic_fetch_add(&ld->good, 1);
    }
    knit_close(fd);
    return 0;
}

static int run(void *arg)
{
    (void)arg;
    int lfd = knit_tcp_listen("127.0.0.1", 0, 128);
    if (lfd < 0)
        return lfd;
    int port = knit_local_port(lfd);
    printf("echo server listening on 127.0.0.1\n");
    knit_task *server = knit_spawn(accept_loop, (void *)(intptr_t)lfd);

    /* One client, three lines. */
    int fd = knit_tcp_connect("127.0.0.1", port);
    if (fd < 0)
        return fd;
    const char *lines[] = {"hello\n", "knit reads like blocking code\n",
                           "bye\n"};
    int err = 0;
    for (int i = 0; i < 3 && !err; i++) {
        char echo[64];
        err = echo_once(fd, lines[i], echo);
        printf("client sent %-32.*s echo %s", (int)strlen(lines[i]) - 1,
               lines[i], echo);
    }
    knit_close(fd);

    /* Three clients at once, each served by its own task. */
    struct load ld = {.port = port};
    knit_task *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = knit_spawn(busy_client, &ld);
    for (int i = 0; i < 3; i++)
        if (knit_join(c[i]) < 0)
            err = -EPROTO;
    int good = atomic_load(&ld.good);
    printf("3 clients x 100 lines: %d echoed correctly\n", good);

    knit_cancel(server);
    knit_join(server);
    knit_close(lfd);
    printf("server stopped\n");
    return err ? err : (good == 300 ? 0 : -EPROTO);
}

int main(void)
{
    int err = knit_run(NULL, run, NULL);
    if (err < 0) {
        fprintf(stderr, "echo_server: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
