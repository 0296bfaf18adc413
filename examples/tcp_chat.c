// SPDX-License-Identifier: MIT
/*
 * Chat server: a line-based TCP chat where every line a client sends goes
 * to all the others through one broadcast channel (knit_bcast). Each
 * connection has two tasks: the reader turns lines into messages on the
 * channel; the writer subscribes and copies the other people's messages
 * to its socket, so a slow client only slows its own writer (and learns,
 * through -EOVERFLOW, that it missed messages). Three scripted clients in
 * the same program join, talk and leave; the script reads each client's
 * socket in a fixed order, so the output does not depend on scheduling.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <knit.h>

struct msg {
    const void *from; /* the sender's connection */
    char text[120];   /* one line, with its '\n' */
};

struct server {
    int lfd;             /* the listener */
    knit_bcast *room;    /* every message, to every connection */
    knit_waitgroup live; /* connections still open */
};

struct conn {
    struct server *srv;
    int fd;            /* this connection */
    knit_bcast_rx *rx; /* its subscription to the room */
};

/* Reads one line (kept with its '\n') a byte at a time; 0 at EOF. */
static ssize_t read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = knit_read(fd, buf + n, 1);
        if (r <= 0)
            return r;
        if (buf[n++] == '\n')
            break;
    }
    buf[n] = '\0';
    return (ssize_t)n;
}

/* Posts "@a@b@c" from @conn to the room. */
static void say(struct conn *conn, const char *a, const char *b, const char *c)
{
    struct msg m = {.from = conn};
    snprintf(m.text, sizeof(m.text), "%s%s%s", a, b, c);
    knit_bcast_send(conn->srv->room, &m);
}

/* Copies the other connections' messages to this one. */
static int writer(void *arg)
{
    struct conn *c = arg;
    struct msg m;
    for (;;) {
        int err = knit_bcast_recv(c->rx, &m);
        if (err == -EOVERFLOW)
            snprintf(m.text, sizeof(m.text), "* you missed %llu lines\n",
                     (unsigned long long)knit_bcast_rx_missed(c->rx));
        else if (err < 0)
            return 0;
        else if (m.from == c)
            continue;
        if (knit_write_all(c->fd, m.text, strlen(m.text)) < 0)
            return 0;
    }
}

/* One connection: a name first, then one message per line until EOF. */
static int connection(void *arg)
{
    struct conn *c = arg;
    char name[32], line[80];
    ssize_t n = read_line(c->fd, name, sizeof(name));
    c->rx = n > 1 ? knit_bcast_subscribe(c->srv->room) : NULL;
    knit_task *w = c->rx ? knit_spawn(writer, c) : NULL;
    if (w) {
        name[n - 1] = '\0';
        knit_write_all(c->fd, "welcome\n", 8);
        say(c, "* ", name, " joined\n");
        while (read_line(c->fd, line, sizeof(line)) > 0)
            say(c, name, ": ", line);
        say(c, "* ", name, " left\n");
        knit_cancel(w);
        knit_join(w);
    }
    if (c->rx)
        knit_bcast_rx_free(c->rx);
    knit_close(c->fd);
    knit_waitgroup_done(&c->srv->live);
    free(c);
    return 0;
}

static int accept_loop(void *arg)
{
    struct server *s = arg;
    for (;;) {
        int fd = knit_tcp_accept(s->lfd, NULL, NULL);
        if (fd < 0)
            return fd == -ECANCELED ? 0 : fd;
        struct conn *c = calloc(1, sizeof(*c));
        if (c)
            *c = (struct conn){.srv = s, .fd = fd};
        knit_task *t = c ? knit_spawn(connection, c) : NULL;
        if (!t) { /* out of memory: drop this client, keep serving */
            free(c);
            knit_close(fd);
            continue;
        }
        knit_waitgroup_add(&s->live, 1);
        knit_detach(t);
    }
}

/* ---- the scripted clients ---------------------------------------------- */

/* Client @who connects if it has not yet, then sends @line (NULL: it
 * leaves); then each client in @readers reads one line, in that order. */
static const struct step {
    int who;
    const char *line;
    const char *readers;
} script[] = {
    {0, "alice\n", "0"},   {1, "bob\n", "10"},      {2, "carol\n", "201"},
    {0, "hi all\n", "12"}, {1, "hi alice\n", "02"}, {2, NULL, "01"},
};

static int run(void *arg)
{
    (void)arg;
    static const char *names[3] = {"alice", "bob", "carol"};
    int fds[3] = {-1, -1, -1};
    struct server s = {.room = knit_bcast_new(sizeof(struct msg), 64)};
    s.lfd = knit_tcp_listen("127.0.0.1", 0, 16);
    if (!s.room || s.lfd < 0)
        return -ENOMEM;
    knit_task *acc = knit_spawn(accept_loop, &s);
    int err = 0;
    for (size_t i = 0; i < sizeof(script) / sizeof(script[0]) && !err; i++) {
        const struct step *st = &script[i];
        if (fds[st->who] < 0)
            fds[st->who] =
                knit_tcp_connect("127.0.0.1", knit_local_port(s.lfd));
        if (st->line) {
            knit_write_all(fds[st->who], st->line, strlen(st->line));
        } else {
            knit_close(fds[st->who]);
            fds[st->who] = -1;
        }
        for (const char *r = st->readers; *r && !err; r++) {
            char line[128];
            if (read_line(fds[*r - '0'], line, sizeof(line)) <= 0)
                err = -EPROTO;
            printf("%-5s <- %s", names[*r - '0'], err ? "(nothing)\n" : line);
        }
    }
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            knit_close(fds[i]);
    knit_waitgroup_wait(&s.live); /* every subscriber is gone */
    knit_cancel(acc);
    knit_join(acc);
    knit_close(s.lfd);
    knit_bcast_free(s.room);
    printf("chat closed\n");
    return err;
}

int main(void)
{
    int err = knit_run(NULL, run, NULL);
    if (err < 0)
        fprintf(stderr, "tcp_chat: %s\n", strerror(-err));
    return err < 0;
}
