// SPDX-License-Identifier: MIT
/*
 * UDP echo: a server task answers each datagram with its text in capitals
 * (knit_recvfrom / knit_sendto, so it can answer anyone), and a client on a
 * connected socket (knit_udp_connect, then plain knit_write / knit_read)
 * sends requests. UDP may lose datagrams, so every wait for an answer is
 * bounded by a scope, and a lost answer is retried once: the server drops
 * the first "flaky" request it sees to show it. Both run in one program
 * on 127.0.0.1, port 0.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <knit.h>

#define REPLY_MS 200

static int server(void *arg)
{
    int fd = (int)(intptr_t)arg;
    bool dropped = false;
    for (;;) {
        char buf[512];
        struct sockaddr_storage from;
        socklen_t len;
        ssize_t n = knit_recvfrom(fd, buf, sizeof(buf), &from, &len);
        if (n == -ECANCELED)
            return 0;
        if (n < 0)
            continue; /* e.g. an ICMP error from an earlier answer */
        if (n == 5 && memcmp(buf, "flaky", 5) == 0 && !dropped) {
            dropped = true; /* play a lossy network once */
            continue;
        }
        for (ssize_t i = 0; i < n; i++)
            buf[i] = (char)toupper((unsigned char)buf[i]);
        knit_sendto(fd, buf, (size_t)n, (struct sockaddr *)&from, len);
    }
}

/* Sends @req and waits up to REPLY_MS for the answer; 0 or -errno. */
static int request(int fd, const char *req, char *ans, size_t cap)
{
    if (knit_write(fd, req, strlen(req)) < 0)
        return -EIO;
    knit_scope s;
    knit_scope_enter(&s, knit_now() + REPLY_MS);
    ssize_t n = knit_read(fd, ans, cap - 1);
    knit_scope_exit(&s);
    if (n < 0)
        return (int)n;
    ans[n] = '\0';
    return 0;
}

static int run(void *arg)
{
    (void)arg;
    int sfd = knit_udp_bind("127.0.0.1", 0);
    if (sfd < 0)
        return sfd;
    knit_task *srv = knit_spawn(server, (void *)(intptr_t)sfd);
    int cfd = knit_udp_connect("127.0.0.1", knit_local_port(sfd));
    if (cfd < 0)
        return cfd;
    const char *reqs[] = {"hello", "flaky", "datagrams"};
    int failed = 0;
    for (int i = 0; i < 3; i++) {
        char ans[512];
        int err = request(cfd, reqs[i], ans, sizeof(ans));
        if (err == -ETIMEDOUT) {
            printf("%-9s -> no answer within %d ms, retrying\n", reqs[i],
                   REPLY_MS);
            err = request(cfd, reqs[i], ans, sizeof(ans));
        }
        if (err)
            failed++;
        printf("%-9s -> %s\n", reqs[i], err ? strerror(-err) : ans);
    }
    knit_close(cfd);
    knit_cancel(srv);
    knit_join(srv);
    knit_close(sfd);
    return failed ? -EPROTO : 0;
}

int main(void)
{
    int err = knit_run(NULL, run, NULL);
    if (err < 0)
        fprintf(stderr, "udp_echo: %s\n", strerror(-err));
    return err < 0;
}
