// SPDX-License-Identifier: MIT
/*
 * knit/http.h on libcurl's multi-socket API, built on knit's public API.
 *
 * A client is one CURLM. curl says which sockets to watch (on_socket) and
 * when to call it back (on_timer); the client keeps curl's sockets in an
 * epoll set of its own, level-triggered, and one task per client, the
 * pump, waits in knit_select for that epoll fd to become readable (through
 * knit's driver), for curl's deadline (on knit's wheel) or for a kick, then
 * hands the ready sockets to curl_multi_socket_action and wakes the tasks
 * whose transfers completed.
 *
 * Why a private epoll set rather than one knit_wait_fd per curl socket:
 * curl opens, changes and closes sockets from inside its own calls; the
 * kernel drops a closed fd from an epoll set by itself, so a socket curl
 * closes can never leave a stale registration behind, and the pump needs
 * one select case however many connections are open. The price is one
 * epoll_wait per wake-up of the pump.
 *
 * Invariant that makes this safe without locks: all of it runs on one
 * worker, and curl never calls back into anything that parks, so the pump
 * is only ever suspended in knit_select, never inside curl. A requesting
 * task may therefore add and remove its easy handle whenever it runs.
 */
#include <errno.h>
#include <stdatomic.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <curl/curl.h>

#include "knit/http.h"
#include "knit/rt.h"
#include "knit/select.h"
#include "knit/sync.h"
#include "knit/task.h"
#include "knit/time.h"
#include "knit/version.h"

enum {
    SPARE_EASY = 16,            /* reset easy handles kept for reuse */
    PUMP_STACK = 256 * 1024,    /* curl and TLS run on the pump's stack */
    EVENTS_PER_WAKE = 64,
};

struct knit_http_client {
    CURLM *multi;
    knit_task *pump;   /* NULL until the first request */
    knit_notify up_n;  /* notified (all) when the pump's start resolved */
    struct xfer *inflight; /* transfers waiting for the pump */
    knit_notify kick;  /* "look at curl again": deadline moved, handle added */
    int64_t deadline;  /* curl's timer on knit's clock, or KNIT_FOREVER */
    knit_http_client_opts o;
    char *user_agent;
    CURL *spare[SPARE_EASY];
    knit_http_stats st;
    int nspare;
    int epfd;          /* curl's sockets, level-triggered */
    _Atomic int owner; /* the worker of the first request, or -1 */
    bool pump_up;      /* the pump runs its loop */
    bool pump_dead;    /* the pump ended on an error (detach, respawn) */
    bool pump_starting; /* a request watches the pump start (pump_ready) */
};

/* One transfer, on the requesting task's stack. */
struct xfer {
    knit_http_client *c;
    CURL *easy;
    struct curl_slist *headers;
    knit_notify done_n; /* notified by the pump when @done is set */
    bool done;
    int fail;           /* set with @done when the pump ended: its error */
    struct xfer *prev, *next; /* on c->inflight */
    CURLcode code;
    char *buf; /* body so far */
    size_t len, cap, max;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void init_curl(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- curl's callbacks ---------------------------------------------------- */

/* curl wants @s watched for @what (CURL_POLL_*), or forgotten. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp,
                     void *socketp)
{
    (void)easy;
    (void)socketp;
    knit_http_client *c = userp;
    if (what == CURL_POLL_REMOVE) {
        /* Fails harmlessly when curl already closed it. */
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.data.fd = s};
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev) < 0 && errno == ENOENT)
        epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev);
    return 0;
}

/* curl wants to be called in @ms (0: at once; -1: no timer). */
static int on_timer(CURLM *multi, long ms, void *userp)
{
    (void)multi;
    knit_http_client *c = userp;
    c->deadline = ms < 0 ? KNIT_FOREVER : knit_now() + ms;
    if (c->pump)
        knit_notify_one(&c->kick);
    return 0;
}

/* Body bytes: appended to the transfer's buffer, up to its limit. */
static size_t on_body(char *p, size_t size, size_t n, void *userp)
{
    struct xfer *x = userp;
    size_t len = size * n;
    if (len > x->max - x->len) {
        x->too_big = true;
        return 0; /* CURLE_WRITE_ERROR ends the transfer */
    }
    if (x->len + len + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 16384;
        while (cap < x->len + len + 1)
            cap *= 2;
        char *nb = realloc(x->buf, cap);
        if (!nb)
            return 0;
        x->buf = nb;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, p, len);
    x->len += len;
    x->buf[x->len] = '\0';
    return len;
}

/* ---- the pump ------------------------------------------------------------ */

/* Hand every finished transfer back to its task. */
static void reap(knit_http_client *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct xfer *x = NULL;
        CURL *easy = m->easy_handle;
        CURLcode code = m->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(c->multi, easy);
        x->code = code;
        x->done = true;
        knit_notify_one(&x->done_n);
    }
}

static void timeout_action(knit_http_client *c)
{
    int running;
    c->deadline = KNIT_FOREVER; /* on_timer may set a new one */
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

static void socket_actions(knit_http_client *c)
{
    struct epoll_event ev[EVENTS_PER_WAKE];
    int n = epoll_wait(c->epfd, ev, EVENTS_PER_WAKE, 0);
    for (int i = 0; i < n; i++) {
        int flags = 0, running;
        if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
            flags |= CURL_CSELECT_IN;
        if (ev[i].events & EPOLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (ev[i].events & EPOLLERR)
            flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(c->multi, ev[i].data.fd, flags, &running);
    }
}

/* Every transfer still in flight ends with @err: the pump is gone. */
static void fail_inflight(knit_http_client *c, int err)
{
    for (struct xfer *x = c->inflight; x; x = x->next) {
        x->fail = err;
        x->done = true;
        knit_notify_one(&x->done_n);
    }
}

/* Runs until cancelled by knit_http_client_free (or the runtime's end),
 * or until its select fails (e.g. -ENOMEM registering the epoll fd): then
 * the transfers in flight fail with that error rather than wait forever,
 * and the next request starts a new pump. */
static int pump(void *arg)
{
    knit_http_client *c = arg;
    c->pump_up = true;
    knit_notify_all(&c->up_n);
    int r;
    for (;;) {
        knit_case cases[] = {
            knit_case_fd(c->epfd, POLLIN),
            knit_case_notify(&c->kick),
            knit_case_deadline(c->deadline),
        };
        r = knit_select(cases, 3);
        if (r < 0)
            break;
        if (r == 0)
            socket_actions(c);
        if (c->deadline != KNIT_FOREVER && knit_now() >= c->deadline)
            timeout_action(c);
        reap(c);
    }
    c->pump_up = false;
    c->pump_dead = true;
    fail_inflight(c, r);
    return r;
}

/*
 * Makes sure the pump runs before a request relies on it. A pump that
 * cannot get its stack ends (-ENOMEM) before its first line, so nothing
 * it would do can be waited for: the request that starts it watches for
 * either its first line (up_n) or its end (a join case), and the other
 * requests wait for that outcome and look again. The pump is pinned to
 * this worker: the client belongs to it (curl is not shared across
 * threads). Return: 0, -ENOMEM, or the caller's -ECANCELED/-ETIMEDOUT.
 */
static int pump_ready(knit_http_client *c)
{
    for (;;) {
        if (c->pump && c->pump_dead) {
            knit_detach(c->pump);
            c->pump = NULL;
        }
        if (c->pump_up)
            return 0;
        if (!c->pump) {
            knit_task_opts o = {.name = "knit-http pump",
                                .stack_size = PUMP_STACK};
            c->pump_dead = false;
            c->pump = knit_spawn_on(knit_worker_id(), &o, pump, c);
            if (!c->pump)
                return -ENOMEM;
        }
        int r;
        if (c->pump_starting) {
            r = knit_notify_wait(&c->up_n);
        } else {
            int res = 0;
            knit_case cases[] = {
                knit_case_notify(&c->up_n),
                knit_case_join(c->pump, &res),
            };
            c->pump_starting = true;
            r = knit_select(cases, 2);
            c->pump_starting = false;
            knit_notify_all(&c->up_n); /* the others look again */
            if (r == 1) {
                c->pump = NULL; /* joined: it never ran */
                return res < 0 ? res : -EIO;
            }
        }
        if (r < 0)
            return r;
    }
}

/* ---- the client ---------------------------------------------------------- */

int knit_http_init(void)
{
    pthread_once(&curl_once, init_curl);
    return curl_init_result == CURLE_OK ? 0 : -EIO;
}

knit_http_client *knit_http_client_new(const knit_http_client_opts *o)
{
    if (knit_http_init() < 0) {
        errno = EIO;
        return NULL;
    }
    knit_http_client *c = calloc(1, sizeof(*c));
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&c->owner, -1);
    if (o)
        c->o = *o;
    if (c->o.max_redirects == 0)
        c->o.max_redirects = 10;
    if (c->o.max_body == 0)
        c->o.max_body = 16u << 20;
    if (c->o.connect_timeout_ms <= 0)
        c->o.connect_timeout_ms = 10000;
    if (c->o.max_connections <= 0)
        c->o.max_connections = 64;
    c->user_agent = strdup(c->o.user_agent ? c->o.user_agent
                                           : "knit/" KNIT_VERSION_STRING);
    c->o.user_agent = c->user_agent;
    c->deadline = KNIT_FOREVER;
    knit_notify_init(&c->kick);
    knit_notify_init(&c->up_n);
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->multi = curl_multi_init();
    if (!c->user_agent || c->epfd < 0 || !c->multi) {
        int err = c->epfd < 0 ? errno : ENOMEM;
        knit_http_client_free(c);
        errno = err;
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, c->o.max_connections);
    if (c->o.max_per_host > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                          c->o.max_per_host);
    return c;
}

void knit_http_client_free(knit_http_client *c)
{
    if (!c)
        return;
    if (c->pump) {
        knit_cancel(c->pump);
        knit_join(c->pump);
        c->pump = NULL;
    }
    for (int i = 0; i < c->nspare; i++)
        curl_easy_cleanup(c->spare[i]);
    if (c->multi)
        curl_multi_cleanup(c->multi); /* closes the pooled connections */
    if (c->epfd >= 0)
        close(c->epfd);
    free(c->user_agent);
    free(c);
}

void knit_http_client_stats(const knit_http_client *c, knit_http_stats *out)
{
    *out = c->st;
}

void knit_http_response_destroy(knit_http_response *resp)
{
    free(resp->body);
    free(resp->final_url);
    free(resp->content_type);
    free(resp->location);
    memset(resp, 0, sizeof(*resp));
    resp->retry_after_ms = -1;
}

/* ---- one request --------------------------------------------------------- */

/* curl's result as a negative errno (0 for CURLE_OK). */
static int map_error(const struct xfer *x)
{
    long os_errno = 0, port = 0;
    switch (x->code) {
    case CURLE_OK:
        return 0;
    case CURLE_UNSUPPORTED_PROTOCOL:
        /* Also what a reply that is not HTTP gives (curl refuses HTTP/0.9):
         * the server's fault, not the URL's, once connected. */
        curl_easy_getinfo(x->easy, CURLINFO_PRIMARY_PORT, &port);
        return port > 0 ? -EPROTO : -EINVAL;
    case CURLE_URL_MALFORMAT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return -EINVAL;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
        return os_errno > 0 ? -(int)os_errno : -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return -ECONNRESET;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
        return -EPROTO;
    case CURLE_TOO_MANY_REDIRECTS:
        return -ELOOP;
    case CURLE_FILESIZE_EXCEEDED:
        return -EFBIG;
    case CURLE_WRITE_ERROR:
        return x->too_big ? -EFBIG : -ENOMEM;
    case CURLE_OUT_OF_MEMORY:
        /* libcurl 7.88 also says this of a response header over its
         * 100 KB limit: once connected, that is the likely cause. */
        curl_easy_getinfo(x->easy, CURLINFO_PRIMARY_PORT, &port);
        return port > 0 ? -EMSGSIZE : -ENOMEM;
    default:
        return -EIO;
    }
}

static CURL *take_easy(knit_http_client *c)
{
    if (c->nspare > 0)
        return c->spare[--c->nspare];
    return curl_easy_init();
}

static void give_easy(knit_http_client *c, CURL *easy)
{
    if (c->nspare < SPARE_EASY) {
        curl_easy_reset(easy);
        c->spare[c->nspare++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}

/* Apply @req to the transfer's easy handle. Returns 0 or -ENOMEM. */
static int configure(struct xfer *x, const knit_http_request *req)
{
    knit_http_client *c = x->c;
    CURL *e = x->easy;
    int redirects = req->max_redirects ? req->max_redirects
                                       : c->o.max_redirects;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* all curl knows */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)c->o.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max);
    curl_easy_setopt(e, CURLOPT_VERBOSE, c->o.verbose ? 1L : 0L);
    if (redirects > 0) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)redirects);
    }
    const char *method = req->method ? req->method : "GET";
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (req->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
    }
    for (const char *const *h = req->headers; h && *h; h++) {
        struct curl_slist *l = curl_slist_append(x->headers, *h);
        if (!l)
            return -ENOMEM;
        x->headers = l;
    }
    if (x->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* Copy what curl learnt about the transfer into @resp. */
static void fill(struct xfer *x, knit_http_response *resp)
{
    long status = 0, redirects = 0, connects = 0;
    char *s = NULL;
    curl_off_t retry = -1;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_COUNT, &redirects);
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &connects);
    resp->status = (int)status;
    resp->redirects = (int)redirects;
    x->c->st.connects += (uint64_t)connects;
    if (curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &s) == CURLE_OK)
        resp->final_url = dup_or_null(s);
    s = NULL;
    if (curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &s) == CURLE_OK)
        resp->content_type = dup_or_null(s);
    s = NULL;
    if (curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &s) == CURLE_OK)
        resp->location = dup_or_null(s);
    /* curl reports 0 for "no Retry-After" (and for "Retry-After: 0"). */
    if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &retry) ==
            CURLE_OK &&
        retry > 0)
        resp->retry_after_ms = (int64_t)retry * 1000;
}

int knit_http_send(knit_http_client *c, const knit_http_request *req,
                   knit_http_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->retry_after_ms = -1;
    if (!c || !req || !req->url) {
        snprintf(resp->error, sizeof(resp->error), "no client or URL");
        return -EINVAL;
    }
    int me = knit_worker_id(), owner = -1;
    if (!atomic_compare_exchange_strong(&c->owner, &owner, me) &&
        owner != me) {
        /* curl's handles are not shared across threads: refuse, rather
         * than race the pump on another worker. */
        snprintf(resp->error, sizeof(resp->error),
                 "client belongs to worker %d, called from worker %d (use "
                 "one client per worker, or knit_spawn_on)", owner, me);
        return -EXDEV;
    }
    struct xfer x = {.c = c};
    knit_notify_init(&x.done_n);
    x.max = req->max_body ? req->max_body : c->o.max_body;
    x.easy = take_easy(c);
    int err = x.easy ? configure(&x, req) : -ENOMEM;
    if (err == 0)
        err = pump_ready(c);
    if (err == 0 && curl_multi_add_handle(c->multi, x.easy) != CURLM_OK)
        err = -ENOMEM;
    if (err < 0) {
        snprintf(resp->error, sizeof(resp->error), "%s", strerror(-err));
        goto out;
    }
    c->st.requests++;
    c->st.in_flight++;
    x.next = c->inflight;
    if (x.next)
        x.next->prev = &x;
    c->inflight = &x;
    knit_notify_one(&c->kick);
    while (!x.done && err == 0)
        err = knit_notify_wait(&x.done_n);
    if (x.prev)
        x.prev->next = x.next;
    else
        c->inflight = x.next;
    if (x.next)
        x.next->prev = x.prev;
    c->st.in_flight--;
    if (!x.done || x.fail) {
        /* The scope fired, the task was cancelled or the pump failed:
         * abort the transfer. Its connection is closed rather than
         * pooled, since curl cannot know how much of the response is
         * still on the way. */
        if (x.fail)
            err = x.fail;
        curl_multi_remove_handle(c->multi, x.easy);
        c->st.aborted++;
        snprintf(resp->error, sizeof(resp->error), "aborted: %s",
                 err == -ETIMEDOUT    ? "deadline passed"
                 : err == -ECANCELED ? "cancelled"
                                     : strerror(-err));
        goto out;
    }
    fill(&x, resp);
    if (x.code == CURLE_FILESIZE_EXCEEDED)
        x.too_big = true; /* refused on its Content-Length */
    err = map_error(&x);
    if (err < 0) {
        snprintf(resp->error, sizeof(resp->error), "%s",
                 x.too_big            ? "body larger than the limit"
                 : err == -EMSGSIZE ? "response header too large"
                 : x.errbuf[0] ? x.errbuf
                               : curl_easy_strerror(x.code));
    } else if (x.buf) {
        resp->body = x.buf;
        resp->body_len = x.len;
        x.buf = NULL;
    }
out:
    free(x.buf);
    curl_slist_free_all(x.headers);
    if (x.easy)
        give_easy(c, x.easy);
    return err;
}

int knit_http_get(knit_http_client *c, const char *url,
                  knit_http_response *resp)
{
    knit_http_request req = {.url = url};
    return knit_http_send(c, &req, resp);
}
