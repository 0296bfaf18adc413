// SPDX-License-Identifier: MIT
/*
 * The demo site's server (demo_server.h). Each connection task reads into
 * a fixed buffer, parses a request head in place, discards any request
 * body, asks site_respond() and writes the whole answer with one write
 * (head and body assembled, so no Nagle/delayed-ACK stall between them).
 * Connections close after 15 s idle, after a request that asks to, and
 * after any malformed request (answered first with its 4xx/5xx status).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <knit.h>

#include "demo_server.h"
#include "http_proto.h"

enum {
    CONN_BUF = 16384,       /* request head + what follows it */
    IDLE_MS = 15000,        /* keep-alive idle limit */
    CONN_STACK = 128 * 1024,
};

struct listener {
    struct demo_server *d;
    int h;  /* host index */
    int fd;
    knit_task *acceptor;
    char origin[64];
};

struct demo_server {
    struct site *site;
    int hosts;
    struct listener *ls;
    knit_token stop;       /* cancels acceptors and connections */
    knit_waitgroup conns;  /* connection tasks alive */
    uint64_t requests;
};

struct conn {
    struct listener *l;
    int fd;
    char buf[CONN_BUF];
    size_t len; /* bytes in buf */
};

/* ---- writing answers ----------------------------------------------------- */

/* Send @status with a short text body; used for errors. */
static int send_simple(int fd, int status, const char *extra, bool keep)
{
    char body[128], out[512];
    int blen = snprintf(body, sizeof(body), "%d %s\n", status,
                        crawl_http_reason(status));
    char hdrs[256];
    snprintf(hdrs, sizeof(hdrs), "Content-Type: text/plain\r\n%s",
             extra ? extra : "");
    int n = crawl_http_format_head(out, sizeof(out) - (size_t)blen, status,
                                   hdrs, blen, keep);
    if (n < 0)
        return n;
    memcpy(out + n, body, (size_t)blen);
    return knit_write_all(fd, out, (size_t)n + (size_t)blen) < 0 ? -EIO : 0;
}

/* Send a site response: one buffer, chunked when the site says so. */
static int send_response(int fd, const struct site_response *r, bool head,
                         bool keep)
{
    char extra[768] = "";
    size_t e = 0;
    e += (size_t)snprintf(extra + e, sizeof(extra) - e,
                          "Content-Type: %s\r\n", r->content_type);
    if (r->location[0])
        e += (size_t)snprintf(extra + e, sizeof(extra) - e,
                              "Location: %s\r\n", r->location);
    if (r->retry_after_s > 0)
        snprintf(extra + e, sizeof(extra) - e, "Retry-After: %d\r\n",
                 r->retry_after_s);
    size_t blen = head ? 0 : r->body_len;
    /* Chunked: 1 KiB chunks, each with up to 12 bytes of framing. */
    size_t cap = 1024 + blen + (r->chunked ? (blen / 1024 + 2) * 16 : 0);
    char *out = malloc(cap);
    if (!out)
        return -ENOMEM;
    int n = crawl_http_format_head(out, 1024, r->status, extra,
                                   r->chunked ? -1 : (int64_t)r->body_len,
                                   keep);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (n >= 0 && r->chunked && !head) {
        for (size_t off = 0; off < blen; off += 1024) {
            size_t c = blen - off < 1024 ? blen - off : 1024;
            len += (size_t)crawl_http_chunk_head(out + len, cap - len, c);
            memcpy(out + len, r->body + off, c);
            len += c;
            memcpy(out + len, "\r\n", 2);
            len += 2;
        }
        len += (size_t)crawl_http_chunk_head(out + len, cap - len, 0);
    } else if (n >= 0) {
        memcpy(out + len, r->body, blen);
        len += blen;
    }
    int err = n < 0 ? n : knit_write_all(fd, out, len) < 0 ? -EIO : 0;
    free(out);
    return err;
}

/* ---- reading requests ---------------------------------------------------- */

/* Read more into the buffer; 0 on EOF or error (close). */
static ssize_t fill(struct conn *c)
{
    if (c->len == CONN_BUF)
        return 0;
    knit_scope idle;
    knit_scope_enter(&idle, knit_now() + IDLE_MS);
    ssize_t n = knit_read(c->fd, c->buf + c->len, CONN_BUF - c->len);
    knit_scope_exit(&idle);
    if (n > 0)
        c->len += (size_t)n;
    return n > 0 ? n : 0;
}

/* Drop the first @n bytes of the buffer. */
static void consume(struct conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Read and drop the request's body; false when the connection must end. */
static bool skip_body(struct conn *c, const struct crawl_http_request *req)
{
    if (req->chunked) {
        struct crawl_http_chunked d;
        crawl_http_chunked_init(&d);
        char scratch[4096];
        while (!d.done) {
            size_t out = sizeof(scratch);
            ssize_t used = crawl_http_chunked_decode(&d, c->buf, c->len,
                                                     scratch, &out);
            if (used < 0) {
                send_simple(c->fd, 400, NULL, false);
                return false;
            }
            consume(c, (size_t)used);
            if (!d.done && used == 0 && out == 0 && fill(c) == 0)
                return false;
        }
        return true;
    }
    int64_t left = req->content_length > 0 ? req->content_length : 0;
    while (left > 0) {
        if (c->len == 0 && fill(c) == 0)
            return false;
        size_t n = (size_t)left < c->len ? (size_t)left : c->len;
        consume(c, n);
        left -= (int64_t)n;
    }
    return true;
}

/* Close with an RST instead of a FIN: what a crashing server looks like. */
static void reset_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* Serve one request; false when the connection must end. */
static bool serve_one(struct conn *c, const struct crawl_http_request *req,
                      size_t head_len)
{
    struct demo_server *d = c->l->d;
    char target[CRAWL_HTTP_DEFAULT_MAX_TARGET + 1];
    bool get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
    bool head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    bool keep = req->keep_alive;
    size_t tlen = req->target_len < sizeof(target) - 1 ? req->target_len
                                                       : sizeof(target) - 1;
    memcpy(target, req->target, tlen);
    target[tlen] = '\0';
    if (req->expect_continue)
        knit_write_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    consume(c, head_len);
    if (!skip_body(c, req))
        return false;
    d->requests++;
    if (!get && !head)
        return send_simple(c->fd, 405, "Allow: GET, HEAD\r\n", keep) == 0 &&
               keep;
    struct site_response r;
    if (site_respond(d->site, c->l->h, target, &r) < 0) {
        site_response_free(&r);
        send_simple(c->fd, 500, NULL, false);
        return false;
    }
    bool ok = true;
    if (r.delay_ms > 0 && knit_sleep(r.delay_ms) < 0)
        ok = false;
    if (ok && r.reset) {
        reset_close(c->fd);
        ok = false;
    }
    if (ok)
        ok = send_response(c->fd, &r, head, keep) == 0 && keep;
    site_response_free(&r);
    return ok;
}

static int conn_task(void *arg)
{
    struct conn *c = arg;
    struct demo_server *d = c->l->d;
    knit_scope sc;
    knit_scope_enter(&sc, KNIT_FOREVER);
    knit_scope_link_token(&sc, &d->stop);
    struct crawl_http_limits lim = {0};
    for (;;) {
        struct crawl_http_request req;
        int r = crawl_http_parse_request(c->buf, c->len, &lim, &req);
        if (r == 0) {
            if (c->len == CONN_BUF) {
                send_simple(c->fd, 431, NULL, false);
                break;
            }
            if (fill(c) == 0)
                break;
            continue;
        }
        if (r < 0) {
            send_simple(c->fd, -r, NULL, false);
            break;
        }
        if (!serve_one(c, &req, (size_t)r))
            break;
    }
    knit_scope_exit(&sc);
    knit_close(c->fd);
    free(c);
    knit_waitgroup_done(&d->conns);
    return 0;
}

static int accept_loop(void *arg)
{
    struct listener *l = arg;
    struct demo_server *d = l->d;
    knit_scope sc;
    knit_scope_enter(&sc, KNIT_FOREVER);
    knit_scope_link_token(&sc, &d->stop);
    for (;;) {
        int fd = knit_tcp_accept(l->fd, NULL, NULL);
        if (fd < 0)
            break;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = malloc(sizeof(*c));
        knit_task_opts o = {.name = "demo conn", .stack_size = CONN_STACK};
        knit_task *t = NULL;
        if (c) {
            c->l = l;
            c->fd = fd;
            c->len = 0;
            knit_waitgroup_add(&d->conns, 1);
            t = knit_spawn_with(&o, conn_task, c);
        }
        if (!t) {
            if (c)
                knit_waitgroup_done(&d->conns);
            free(c);
            knit_close(fd);
            continue;
        }
        knit_detach(t);
    }
    knit_scope_exit(&sc);
    return 0;
}

/* ---- the server ---------------------------------------------------------- */

int demo_server_start(const struct site_config *cfg, int base_port,
                      struct demo_server **out, char *err, size_t errlen)
{
    struct demo_server *d = calloc(1, sizeof(*d));
    const char *origins[SITE_MAX_HOSTS];
    if (!d || cfg->hosts < 1 || cfg->hosts > SITE_MAX_HOSTS) {
        snprintf(err, errlen, d ? "hosts must be 1..%d" : "out of memory",
                 SITE_MAX_HOSTS);
        free(d);
        return d ? -EINVAL : -ENOMEM;
    }
    d->hosts = cfg->hosts;
    knit_token_init(&d->stop, NULL);
    knit_waitgroup_init(&d->conns);
    d->ls = calloc((size_t)cfg->hosts, sizeof(*d->ls));
    int r = d->ls ? 0 : -ENOMEM;
    for (int h = 0; h < d->hosts; h++)
        if (d->ls)
            d->ls[h].fd = -1;
    for (int h = 0; h < d->hosts && r == 0; h++) {
        struct listener *l = &d->ls[h];
        int port = base_port ? base_port + h : 0;
        l->d = d;
        l->h = h;
        l->fd = knit_tcp_listen("127.0.0.1", port, 512);
        if (l->fd < 0) {
            r = l->fd;
            snprintf(err, errlen, "cannot listen on 127.0.0.1:%d: %s", port,
                     strerror(-r));
            break;
        }
        snprintf(l->origin, sizeof(l->origin), "http://127.0.0.1:%d",
                 knit_local_port(l->fd));
        origins[h] = l->origin;
    }
    if (r == 0 && !(d->site = site_new(cfg, origins))) {
        r = -errno;
        snprintf(err, errlen, "bad site configuration: %s", strerror(errno));
    }
    for (int h = 0; h < d->hosts && r == 0; h++) {
        knit_task_opts o = {.name = "demo accept"};
        if (!(d->ls[h].acceptor = knit_spawn_with(&o, accept_loop, &d->ls[h])))
            r = -ENOMEM;
    }
    if (r < 0) {
        demo_server_stop(d);
        return r;
    }
    *out = d;
    return 0;
}

const char *demo_server_origin(const struct demo_server *d, int h)
{
    return d->ls[h].origin;
}

struct site *demo_server_site(const struct demo_server *d)
{
    return d->site;
}

uint64_t demo_server_requests(const struct demo_server *d)
{
    return d->requests;
}

void demo_server_stop(struct demo_server *d)
{
    if (!d)
        return;
    knit_token_cancel(&d->stop);
    knit_scope shield;
    knit_scope_enter_shielded(&shield, KNIT_FOREVER);
    for (int h = 0; d->ls && h < d->hosts; h++)
        if (d->ls[h].acceptor)
            knit_join(d->ls[h].acceptor);
    knit_waitgroup_wait(&d->conns);
    knit_scope_exit(&shield);
    for (int h = 0; d->ls && h < d->hosts; h++)
        if (d->ls[h].fd >= 0)
            knit_close(d->ls[h].fd);
    free(d->ls);
    site_free(d->site);
    knit_token_destroy(&d->stop);
    free(d);
}
